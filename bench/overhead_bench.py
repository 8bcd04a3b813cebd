"""Fake-quantization overhead on the CPU: qrecipe against ModelOpt, measured in the same run.

For the real all-MiniLM-L6-v2 and a tiny Llama built from a config (random weights), and for
each recipe (FP8, INT8 per channel, INT4 blocks, NVFP4), both runtimes quantize copies of the
same model with the same flat recipe and the same calibration batches; then:

* quantize time: ``qrecipe.runtime.apply`` and ``mtq.quantize``, calibration included;
* forward overhead: forward time of the quantized model over the unquantized one, the median of
  interleaved repeats (unquantized, qrecipe, ModelOpt, unquantized, ...), ``--threads`` threads;
* peak memory: the most tensor memory allocated at once while quantizing a fresh copy and
  running two forward passes (quantized weights kept between passes included), above the
  model's own weights; for the unquantized model, two forward passes;
* the outputs of the two quantized models must be bit-identical (the run fails otherwise).

ModelOpt's NVFP4 needs CUDA: NVFP4 rows compare qrecipe with the unquantized model only.
Prints a table and writes ``bench/results/overhead.json``.

    python bench/overhead_bench.py              # the full run (a few minutes)
    python bench/overhead_bench.py --quick      # small inputs, few repeats (the test runs it)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory import tensor_memory_peak

RESULTS = Path(__file__).parent / "results"

# (model, recipe): MiniLM is a BERT encoder, so its FP8 row uses the BERT adaptation.
CASES = [
    ("llama", "general/ptq/fp8_default-kv_fp8"),
    ("llama", "general/ptq/int8_per_channel-kv_fp8"),
    ("llama", "general/ptq/int4_blockwise_weight_only"),
    ("llama", "general/ptq/nvfp4_default-kv_fp8"),
    ("minilm", "huggingface/bert/ptq/fp8_default"),
    ("minilm", "general/ptq/int8_per_channel-kv_fp8"),
    ("minilm", "general/ptq/int4_blockwise_weight_only"),
    ("minilm", "general/ptq/nvfp4_default-kv_fp8"),
]
QUICK_CASES = [
    ("llama", "general/ptq/fp8_default-kv_fp8"),
    ("llama", "general/ptq/nvfp4_default-kv_fp8"),
    ("minilm", "general/ptq/int8_per_channel-kv_fp8"),
]
# ModelOpt 0.47 fake-quantizes NVFP4 (and MX) only with its CUDA kernels.
MODELOPT_NEEDS_CUDA = ("nvfp4", "mxfp", "mxint")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, few repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed forwards per model")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--only", default=None, help="measure only the cases whose model or recipe contains this"
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 20
    return args


# -- memory -------------------------------------------------------------------------------------


def tensor_megabytes_peak(work: Callable[[], Any]) -> float:
    """MB: the most tensor memory allocated at once while ``work`` runs, above what was before."""
    return tensor_memory_peak(work)[0] / 2**20


# -- models -------------------------------------------------------------------------------------


@dataclass
class Workload:
    """A model with its calibration and measurement inputs."""

    name: str
    description: str
    model: Any
    calibration: list[dict[str, Any]]
    batch: dict[str, Any]
    output: Callable[[Any], Any] = field(repr=False)


def llama(quick: bool) -> Workload:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    if quick:
        dims = {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2}
        heads, vocab, batch, tokens = 4, 256, 2, 32
    else:
        dims = {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4}
        heads, vocab, batch, tokens = 8, 2048, 8, 128
    config = LlamaConfig(
        num_attention_heads=heads,
        num_key_value_heads=heads // 2,
        vocab_size=vocab,
        max_position_embeddings=512,
        **dims,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    generator = torch.Generator().manual_seed(1)
    calibration = [
        {"input_ids": torch.randint(0, vocab, (batch, tokens), generator=generator)}
        for _ in range(2)
    ]
    ids = torch.randint(0, vocab, (batch, tokens), generator=generator)
    shape = f"{dims['num_hidden_layers']}-layer Llama (h{dims['hidden_size']})"
    return Workload(
        "llama",
        f"{shape}, {batch}x{tokens} tokens",
        model,
        calibration,
        {"input_ids": ids},
        lambda out: out.logits,
    )


def minilm(quick: bool) -> Workload:
    from transformers import AutoModel, AutoTokenizer

    from qrecipe.demo import CALIBRATION_SENTENCES, EVALUATION_SENTENCES, minilm_dir

    directory = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory).eval()
    batch, tokens = (4, 16) if quick else (16, 64)
    sentences = (EVALUATION_SENTENCES * batch)[:batch]

    def encode(texts: list[str]) -> dict[str, Any]:
        return dict(
            tokenizer(
                texts, padding="max_length", truncation=True, max_length=tokens, return_tensors="pt"
            )
        )

    calibration = [encode(CALIBRATION_SENTENCES[:4]), encode(CALIBRATION_SENTENCES[4:])]
    return Workload(
        "minilm",
        f"all-MiniLM-L6-v2, {batch}x{tokens} tokens",
        model,
        calibration,
        encode(sentences),
        lambda out: out.last_hidden_state,
    )


# -- the two runtimes ---------------------------------------------------------------------------


def modelopt_section(flat: dict[str, Any]) -> dict[str, Any]:
    """The flat quantize section as ``mtq.quantize`` takes it (block-size keys as ints)."""

    def convert(value: Any) -> Any:
        if isinstance(value, list):
            return [convert(item) for item in value]
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "block_sizes" and isinstance(item, dict):
                    item = {(int(k) if k.lstrip("-").isdigit() else k): v for k, v in item.items()}
                out[key] = convert(item)
            return out
        return value

    return convert(copy.deepcopy(flat["quantize"]))


def quantize_qrecipe(model: Any, flat: dict[str, Any], loop: Callable[[Any], None]) -> None:
    from qrecipe.runtime import apply

    apply(model, flat, forward_loop=loop, progress=False)


def quantize_qrecipe_cached(model: Any, flat: dict[str, Any], loop: Callable[[Any], None]) -> None:
    from qrecipe.runtime import apply

    apply(model, flat, forward_loop=loop, progress=False, cache_weights=True)


def quantize_modelopt(model: Any, flat: dict[str, Any], loop: Callable[[Any], None]) -> None:
    import modelopt.torch.quantization as mtq

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mtq.quantize(model, modelopt_section(flat), forward_loop=loop)


def modelopt_runs_on_cpu(recipe: str) -> bool:
    return not any(marker in recipe for marker in MODELOPT_NEEDS_CUDA)


# -- measurement --------------------------------------------------------------------------------


def measure_case(workload: Workload, recipe: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import qrecipe

    flat = qrecipe.resolve(recipe)

    def run(model: Any) -> Any:
        with torch.no_grad():
            return workload.output(model(**workload.batch))

    def calibrate(model: Any) -> None:
        for batch in workload.calibration:
            model(**batch)

    runtimes: dict[str, Callable[[Any, dict[str, Any], Callable[[Any], None]], None]] = {
        "qrecipe": quantize_qrecipe,
        "qrecipe_cached": quantize_qrecipe_cached,
    }
    if modelopt_runs_on_cpu(recipe):
        runtimes["modelopt"] = quantize_modelopt

    def quantize_and_run(quantize: Callable[..., None], model: Any) -> Callable[[], None]:
        def work() -> None:
            quantize(model, flat, calibrate)
            run(model)
            run(model)

        return work

    # The memory runs come first: they also warm both runtimes up (imports, first calls).
    def run_twice() -> None:
        run(workload.model)
        run(workload.model)

    peaks = {"unquantized": tensor_megabytes_peak(run_twice)}
    for name, quantize in runtimes.items():
        scratch = copy.deepcopy(workload.model)
        peaks[name] = tensor_megabytes_peak(quantize_and_run(quantize, scratch))
        del scratch

    quantize_s: dict[str, float] = {}
    models: dict[str, Any] = {"unquantized": workload.model}
    outputs: dict[str, Any] = {"unquantized": run(workload.model)}
    for name, quantize in runtimes.items():
        model = copy.deepcopy(workload.model)
        began = time.perf_counter()
        quantize(model, flat, calibrate)
        quantize_s[name] = time.perf_counter() - began
        outputs[name] = run(model)
        models[name] = model
    identical = None
    if "modelopt" in outputs:
        identical = bool(torch.equal(outputs["qrecipe"], outputs["modelopt"]))
        assert identical, f"{workload.name} {recipe}: qrecipe and ModelOpt outputs differ"
    assert torch.equal(outputs["qrecipe"], outputs["qrecipe_cached"])
    assert not torch.equal(outputs["qrecipe"], outputs["unquantized"]), "nothing was quantized"

    # Interleaved: every repeat runs each model once, so that a slow moment of the machine
    # hits all of them; the overhead is the median of the per-repeat ratios.
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            began = time.perf_counter()
            run(model)
            times[name].append(time.perf_counter() - began)
    plain = times["unquantized"]
    row: dict[str, Any] = {
        "model": workload.description,
        "recipe": recipe,
        "identical_outputs": identical,
        "unquantized_ms": statistics.median(plain) * 1e3,
        "peak_mb": peaks,
        "runtimes": {},
    }
    for name in runtimes:
        ratios = [t / p for t, p in zip(times[name], plain, strict=True)]
        row["runtimes"][name] = {
            "quantize_s": quantize_s[name],
            "forward_ms": statistics.median(times[name]) * 1e3,
            "overhead": statistics.median(ratios),
            "overhead_of_fastest": min(times[name]) / min(plain),
        }
    return row


RUNTIME_COLUMNS = ("qrecipe", "qrecipe_cached", "modelopt")


def print_table(rows: list[dict[str, Any]]) -> None:
    def cells(row: dict[str, Any], value: Callable[[dict[str, Any]], str]) -> str:
        entries = [row["runtimes"].get(name) for name in RUNTIME_COLUMNS]
        return " / ".join("-" if entry is None else value(entry) for entry in entries)

    def megabytes(row: dict[str, Any]) -> str:
        names = (*RUNTIME_COLUMNS, "unquantized")
        values = [row["peak_mb"].get(name) for name in names]
        return " / ".join("-" if value is None else f"{value:.0f}" for value in values)

    header = (
        f"{'model':38} {'recipe':40} {'forward / unquantized':>24} {'quantize s':>18} "
        f"{'peak MB (+ unquantized)':>24} identical"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        forward = cells(row, lambda entry: f"{entry['overhead']:.2f}")
        quantize = cells(row, lambda entry: f"{entry['quantize_s']:.2f}")
        same = {True: "yes", False: "NO", None: "-"}[row["identical_outputs"]]
        print(
            f"{row['model']:38} {row['recipe']:40} {forward:>24} {quantize:>18} "
            f"{megabytes(row):>24} {same}"
        )
    print(
        "columns: qrecipe (default) / qrecipe (cache_weights=True) / ModelOpt "
        "(- where ModelOpt needs CUDA); peak memory also for the unquantized model"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # the profiler's notes on old tensors
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()

    torch.set_num_threads(args.threads)
    cases = QUICK_CASES if args.quick else CASES
    if args.only:
        cases = [case for case in cases if any(args.only in part for part in case)]
    builders = {"llama": llama, "minilm": minilm}
    rows = []
    for model_name in dict.fromkeys(name for name, _ in cases):
        workload = builders[model_name](args.quick)
        for name, recipe in cases:
            if name == model_name:
                rows.append(measure_case(workload, recipe, args))
                print(f"measured {workload.description}: {recipe}", flush=True)
    print_table(rows)
    import modelopt

    result = {
        "device": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "repeats": args.repeats,
        "quick": args.quick,
        "torch": torch.__version__,
        "modelopt": modelopt.__version__,
        "python": platform.python_version(),
        "rows": rows,
    }
    output = args.output or RESULTS / ("overhead_quick.json" if args.quick else "overhead.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
