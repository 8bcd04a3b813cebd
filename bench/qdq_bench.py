"""Fake-quantization speed: qrecipe's Triton kernels against a device copy and PyTorch.

Measures, on one GPU:

* per format, on an 8192 x 8192 bfloat16 tensor: the bandwidth (bytes read + bytes written
  once each, divided by the time; GB/s) of the Triton QDQ kernel, of ``torch.clone`` (the
  memory-bound ceiling), of the PyTorch path (``backend="torch"``), of the PyTorch reference
  run eagerly and of the reference under ``torch.compile``;
* a 4-layer Llama (hidden 4096, intermediate 14336, batch 4 x 512 tokens, bfloat16, random
  weights): forward time in bfloat16 against the same model quantized with
  ``qrecipe.runtime.apply(model, qrecipe.resolve("general/ptq/fp8_default-kv_fp8"))``.

Prints a table and writes ``bench/results/qdq_<device>.json``.

    python bench/qdq_bench.py                         # the GPU benchmark
    python bench/qdq_bench.py --device cpu --size 1024  # a quick run of the same code on CPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

# Formats measured, by their name in qrecipe.runtime.kernels.catalog. "nvfp4" takes its
# per-tensor amax from the data (a reduction pass first); "nvfp4 (calibrated)" is given one.
BENCH_FORMATS = [
    "fp8",
    "int8_per_channel",
    "int4_per_block",
    "fp8_2d_block",
    "nvfp4",
    "nvfp4 (calibrated)",
    "mxfp4",
    "mxfp8",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--size", type=int, default=8192, help="the tensor is size x size")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement")
    parser.add_argument("--formats", default=",".join(BENCH_FORMATS))
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--no-model", action="store_true", help="skip the Llama forward")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 20 if args.device == "cuda" else 1
    return args


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def timer(device: str, repeats: int, warmup: int = 2) -> Callable[[Callable[[], Any]], float]:
    """A function that runs ``work`` and returns its median time in seconds."""
    import torch

    def measure(work: Callable[[], Any]) -> float:
        for _ in range(warmup):
            work()
        times = []
        for _ in range(repeats):
            if device == "cuda":
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                work()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1000.0)
            else:
                began = time.perf_counter()
                work()
                times.append(time.perf_counter() - began)
        times.sort()
        return times[len(times) // 2]

    return measure


def kernel_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Bandwidth of each implementation of each format on one size x size bf16 tensor."""
    import torch

    from qrecipe.runtime.kernels import fake_quant, reduce_amax, reference
    from qrecipe.runtime.kernels.catalog import format_named

    device = args.device
    measure = timer(device, args.repeats, warmup=2 if device == "cuda" else 1)
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(args.size, args.size, generator=generator).to(device, torch.bfloat16)
    moved = 2 * x.numel() * x.element_size()  # one read and one write

    def row(name: str, implementation: str, seconds: float | None, note: str = "") -> dict:
        bandwidth = None if not seconds else moved / seconds / 1e9
        return {
            "format": name,
            "implementation": implementation,
            "seconds": seconds,
            "bytes_moved": moved,
            "gb_per_s": bandwidth,
            "note": note,
        }

    rows = [row("copy", "torch.clone", measure(lambda: torch.clone(x)))]
    for name in args.formats.split(","):
        fmt = format_named(name.split(" ")[0])
        amax = reduce_amax(x, fmt, backend="torch")
        given = amax if (fmt.needs_calibration or "calibrated" in name) else None
        triton_backend = (
            "triton" if device == "cuda" or os.environ.get("TRITON_INTERPRET") else None
        )
        if triton_backend:
            seconds = measure(lambda f=fmt, a=given: fake_quant(x, f, a, backend="triton"))
            rows.append(row(name, "qrecipe triton", seconds))
        seconds = measure(lambda f=fmt, a=given: fake_quant(x, f, a, backend="torch"))
        rows.append(row(name, "qrecipe torch", seconds))
        seconds = measure(lambda f=fmt, a=given: reference.fake_quant(x, f, a))
        rows.append(row(name, "torch eager (reference)", seconds))
        if not args.no_compile:
            try:
                compiled = torch.compile(reference.fake_quant, dynamic=False)
                seconds = measure(lambda f=fmt, a=given, c=compiled: c(x, f, a))
                rows.append(row(name, "torch.compile (reference)", seconds))
            except Exception as exc:  # compilation is best effort; report why it failed
                rows.append(row(name, "torch.compile (reference)", None, repr(exc)[:200]))
    return rows


def model_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Forward time of a 4-layer Llama in bf16, plain and fake-quantized (FP8, FP8 KV cache)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    import qrecipe
    from qrecipe.runtime import apply

    if args.device == "cuda":
        dims = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32}
        dims |= {"num_key_value_heads": 8, "vocab_size": 32000}
        batch, tokens = 4, 512
    else:  # the same model, scaled down for a quick run
        dims = {"hidden_size": 64, "intermediate_size": 224, "num_attention_heads": 4}
        dims |= {"num_key_value_heads": 2, "vocab_size": 256}
        batch, tokens = 2, 16
    config = LlamaConfig(num_hidden_layers=4, max_position_embeddings=2048, **dims)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).to(args.device)
    model.eval()
    ids = torch.randint(0, dims["vocab_size"], (batch, tokens), device=args.device)
    measure = timer(args.device, max(3, args.repeats // 4) if args.device == "cuda" else 1)

    def forward() -> None:
        with torch.no_grad():
            model(ids)

    plain = measure(forward)
    recipe = "general/ptq/fp8_default-kv_fp8"
    began = time.perf_counter()
    apply(model, qrecipe.resolve(recipe), forward_loop=lambda m: forward(), progress=False)
    apply_seconds = time.perf_counter() - began
    quantized = measure(forward)
    shape = f"{batch}x{tokens} tokens, hidden {dims['hidden_size']}"
    return [
        {"model": f"llama 4 layers ({shape})", "variant": "bf16", "seconds": plain},
        {
            "model": f"llama 4 layers ({shape})",
            "variant": f"fake-quant {recipe}",
            "seconds": quantized,
            "slowdown": quantized / plain,
            "apply_seconds": apply_seconds,
        },
    ]


def print_table(kernels: list[dict[str, Any]], models: list[dict[str, Any]]) -> None:
    print(f"{'format':22} {'implementation':28} {'time (ms)':>10} {'GB/s':>9}")
    for r in kernels:
        ms = "failed" if r["seconds"] is None else f"{r['seconds'] * 1e3:10.3f}"
        rate = "" if r["gb_per_s"] is None else f"{r['gb_per_s']:9.1f}"
        print(f"{r['format']:22} {r['implementation']:28} {ms:>10} {rate:>9}")
    for r in models:
        extra = f"  ({r['slowdown']:.2f}x bf16)" if "slowdown" in r else ""
        print(f"{r['model']}: {r['variant']}: {r['seconds'] * 1e3:.2f} ms{extra}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cpu":
        # Triton runs on CPU only in its interpreter, which must be chosen before it loads.
        os.environ.setdefault("TRITON_INTERPRET", "1")
    elif not cuda_available():
        print(
            "qdq_bench: no CUDA device: this benchmark measures GPU kernels. "
            "For a quick run of the same code on CPU: python bench/qdq_bench.py --device cpu "
            "--size 1024"
        )
        return 0
    import torch

    kernels = kernel_rows(args)
    models = [] if args.no_model else model_rows(args)
    print_table(kernels, models)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    result = {
        "device": device_name or args.device,
        "size": [args.size, args.size],
        "dtype": "bfloat16",
        "repeats": args.repeats,
        "torch": torch.__version__,
        "kernels": kernels,
        "model": models,
    }
    output = args.output or RESULTS / f"qdq_{args.device}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
