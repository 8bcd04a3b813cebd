"""Checkpoint size, weight memory and time of ``quantize -> export -> load``, per export format.

A Llama-style decoder built from a config (bfloat16, random weights, fixed seed; default: 4
layers, hidden 1024, intermediate 2816, vocabulary 8192) is quantized with a recipe, calibrated
on a few random token batches, exported and loaded back with ``qrecipe.runtime.load``. Measured
against the same model saved unquantized in bfloat16 (``save_pretrained``), in the same run:

* checkpoint size on disk (every safetensors file), whole and for the quantized linear layers
  alone (their packed tensors against their bfloat16 weights);
* weight memory of the loaded model (parameters and buffers, packed weights included);
* peak tensor memory while loading (PyTorch's profiler: the most bytes allocated at once),
  against the unquantized checkpoint loaded with ``from_pretrained``;
* seconds to quantize (``apply``: calibration), to export and to load.

Prints a table and writes ``bench/results/export.json``.

    python bench/export_bench.py            # the full run (about a minute on two CPU cores)
    python bench/export_bench.py --small    # a two-layer model, two cases (the smoke test)
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from memory import tensor_memory_peak

RESULTS = Path(__file__).parent / "results"

# (export format, recipe); the AWQ recipes run with max calibration here, so that the cases time
# the export rather than the AWQ search.
CASES = [
    ("modelopt", "general/ptq/fp8_default-kv_fp8"),
    ("modelopt", "general/ptq/nvfp4_default-kv_fp8"),
    ("modelopt", "general/ptq/fp8_qkvo-nvfp4_mlp"),
    ("modelopt", "general/ptq/int4_blockwise_weight_only"),
    ("modelopt", "general/ptq/w4a8_int4_awq-kv_fp8"),
    ("compressed-tensors", "general/ptq/fp8_default-kv_fp8"),
    ("compressed-tensors", "general/ptq/nvfp4_default-kv_fp8"),
    ("compressed-tensors", "general/ptq/int4_blockwise_weight_only"),
]
SMALL_CASES = CASES[:2]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a two-layer model, two cases")
    parser.add_argument("--output", type=Path, default=RESULTS / "export.json")
    return parser.parse_args(argv)


def build_model(small: bool) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    sizes = (
        {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "vocab_size": 1024}
        if small
        else {
            "hidden_size": 1024,
            "intermediate_size": 2816,
            "num_hidden_layers": 4,
            "vocab_size": 8192,
        }
    )
    config = AutoConfig.for_model(
        "llama",
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=512,
        architectures=["LlamaForCausalLM"],
        **sizes,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()


def recipe(name: str) -> dict[str, Any]:
    import qrecipe

    flat = qrecipe.resolve(name)
    if flat["quantize"]["algorithm"]["method"] != "max":
        flat["quantize"]["algorithm"] = {"method": "max"}
        flat["fingerprint"] = qrecipe.fingerprint(flat)
    return flat


def disk_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob("*.safetensors"))


def run_case(
    export_format: str, name: str, small: bool, work: Path, baseline: dict[str, Any]
) -> dict[str, Any]:
    import torch

    from qrecipe.runtime import apply
    from qrecipe.runtime.export import export
    from qrecipe.runtime.load import load
    from qrecipe.runtime.packed import packed_weights, weight_bytes

    model = build_model(small)
    vocab = model.config.vocab_size
    batches = torch.randint(0, vocab, (4, 2, 128), generator=torch.Generator().manual_seed(1))
    flat = recipe(name)

    def forward_loop(m: Any) -> None:
        with torch.no_grad():
            for batch in batches:
                m(batch)

    started = time.perf_counter()
    apply(model, flat, forward_loop=forward_loop, progress=False)
    quantize_s = time.perf_counter() - started
    directory = work / f"{export_format}-{name.rsplit('/', 1)[-1]}"
    started = time.perf_counter()
    result = export(model, directory, flat, export_format=export_format, progress=False)
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    loaded = load(directory)
    load_s = time.perf_counter() - started
    del loaded
    load_peak, loaded = tensor_memory_peak(lambda: load(directory))

    packed = [
        (name, weight)
        for name, module in loaded.named_modules()
        for weight in packed_weights(module).values()
    ]
    packed_bytes = sum(weight.packed_bytes() for _, weight in packed)
    linear_bf16 = sum(baseline["linear_bytes"][layer] for layer, _ in packed)
    size = disk_bytes(directory)
    memory = weight_bytes(loaded)
    return {
        "export_format": export_format,
        "recipe": name,
        "quantized_layers": len(result.quantized_layers),
        "checkpoint_bytes": size,
        "checkpoint_vs_bf16": size / baseline["checkpoint_bytes"],
        "quantized_layers_vs_bf16": packed_bytes / linear_bf16,
        "memory_bytes": memory,
        "memory_vs_bf16": memory / baseline["memory_bytes"],
        "load_peak_bytes": load_peak,
        "load_peak_vs_bf16": load_peak / baseline["load_peak_bytes"],
        "quantize_s": quantize_s,
        "export_s": export_s,
        "load_s": load_s,
    }


def measure(small: bool) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from qrecipe.runtime.packed import weight_bytes

    with tempfile.TemporaryDirectory(prefix="qrecipe-export-bench-") as scratch:
        work = Path(scratch)
        model = build_model(small)
        model.save_pretrained(work / "bf16")
        load_peak, _ = tensor_memory_peak(
            lambda: AutoModelForCausalLM.from_pretrained(work / "bf16", dtype=torch.bfloat16)
        )
        baseline = {
            "load_peak_bytes": load_peak,
            "checkpoint_bytes": disk_bytes(work / "bf16"),
            "memory_bytes": weight_bytes(model),
            "linear_bytes": {
                name: module.weight.numel() * module.weight.element_size()
                for name, module in model.named_modules()
                if isinstance(module, torch.nn.Linear)
            },
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        rows = [
            run_case(fmt, name, small, work, baseline)
            for fmt, name in (SMALL_CASES if small else CASES)
        ]
    del baseline["linear_bytes"]
    return {"baseline_bf16": baseline, "cases": rows}


def print_table(result: dict[str, Any]) -> None:
    baseline = result["baseline_bf16"]
    print(
        f"bf16 baseline: {baseline['parameters'] / 1e6:.1f}M parameters, checkpoint "
        f"{baseline['checkpoint_bytes'] / 1e6:.1f} MB, weights in memory "
        f"{baseline['memory_bytes'] / 1e6:.1f} MB, peak while loading "
        f"{baseline['load_peak_bytes'] / 1e6:.1f} MB"
    )
    header = (
        f"{'format':<19} {'recipe':<28} {'ckpt MB':>8} {'ckpt/bf16':>9} {'layers/bf16':>11} "
        f"{'mem/bf16':>8} {'peak/bf16':>9} {'quantize s':>10} {'export s':>8} {'load s':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in result["cases"]:
        print(
            f"{row['export_format']:<19} {row['recipe'].rsplit('/', 1)[-1]:<28} "
            f"{row['checkpoint_bytes'] / 1e6:>8.1f} {row['checkpoint_vs_bf16']:>9.3f} "
            f"{row['quantized_layers_vs_bf16']:>11.3f} {row['memory_vs_bf16']:>8.3f} "
            f"{row['load_peak_vs_bf16']:>9.3f} "
            f"{row['quantize_s']:>10.2f} {row['export_s']:>8.2f} {row['load_s']:>6.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    import os

    import torch

    args = parse_args(argv)
    result = measure(args.small)
    result["environment"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "device": "cpu",
        "small": args.small,
    }
    print_table(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
