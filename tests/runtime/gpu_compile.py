"""Compile every Triton kernel launch of the catalogue formats for an H100, without a GPU.

Run as a script in a process without ``TRITON_INTERPRET``: the kernels are then real JIT
functions. Their launches are recorded instead of run (the host code runs on CPU tensors), and
each distinct launch is compiled ahead of time for ``sm_90`` through PTX to a cubin, whose
register and spill counts ``cuobjdump`` reports. Prints one JSON object per line.

    python tests/runtime/gpu_compile.py [--arch 90]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from qrecipe.runtime.kernels import catalog, triton_qdq

POINTER_TYPES = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16"}
POINTER_TYPES |= {torch.int32: "*i32", torch.uint8: "*u8", torch.int16: "*i16"}


def record_launches(only: list[str] | None = None) -> list[tuple[str, str, object, tuple, dict]]:
    launches = []
    current: dict[str, str] = {}
    for kernel in (triton_qdq._qdq_kernel, triton_qdq._amax_kernel):

        def run(*args, grid, warmup, _kernel=kernel, **kwargs):
            launches.append((current["format"], current["dtype"], _kernel, args, kwargs))

        kernel.run = run
    # Host code runs on CPU tensors as it would on the GPU: GPU tile sizes, no device guard.
    triton_qdq.interpreting = lambda: False
    triton_qdq._check_device = lambda x: None
    for name in sorted(only or catalog.FORMATS):
        fmt = catalog.format_named(name)
        for dtype in (torch.float32, torch.bfloat16):
            current.update(format=name, dtype=str(dtype).removeprefix("torch."))
            x = torch.randn(512, 4096, dtype=dtype)
            amax = None
            if fmt.needs_calibration or fmt.accepts_global_amax:
                # The recorded launch fills nothing: only the shape of the result is used.
                amax = torch.ones_like(triton_qdq.reduce_amax(x, fmt))
            triton_qdq.fake_quant(x, fmt, amax)
    return launches


def signature(kernel: object, args: tuple, kwargs: dict) -> tuple[dict, dict, dict]:
    """Argument types, constexpr values and the divisibility hints a JIT launch would give.

    At launch, Triton specialises pointers aligned to 16 bytes and integers divisible by 16;
    those hints are what let it emit 128-bit loads, so they are reproduced here.
    """
    names = list(kernel.arg_names)
    types: dict[str, str] = {}
    constants: dict[tuple[int, ...], object] = {}
    hints: dict[tuple[int, ...], list] = {}
    for index, name in enumerate(names):
        if name in kwargs:
            types[name] = "constexpr"
            constants[(index,)] = kwargs[name]
            continue
        value = args[index]
        if isinstance(value, torch.Tensor):
            types[name] = POINTER_TYPES[value.dtype]
            aligned = value.data_ptr() % 16 == 0
        elif isinstance(value, bool):
            types[name], aligned = "i1", False
        elif isinstance(value, int):
            types[name] = "i32" if -(2**31) <= value < 2**31 else "i64"
            aligned = value % 16 == 0
        else:
            types[name], aligned = "fp32", False
        if aligned:
            hints[(index,)] = [["tt.divisibility", 16]]
    return types, constants, hints


def resource_usage(cubin: bytes) -> dict[str, int]:
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        text = subprocess.run(
            [str(tool), "-res-usage", file.name], capture_output=True, text=True, check=True
        ).stdout
    usage = {}
    for key, pattern in (
        ("registers", r"REG:(\d+)"),
        ("stack", r"STACK:(\d+)"),
        ("local", r"LOCAL:(\d+)"),
    ):
        match = re.search(pattern, text)
        usage[key] = int(match.group(1)) if match else -1
    return usage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability, e.g. 90")
    parser.add_argument("--formats", nargs="*", help="only these catalogue formats")
    args = parser.parse_args()
    options = triton_qdq._launch_options()  # the options of a GPU launch (interpreting is off)
    seen: set[str] = set()
    for fmt, dtype, kernel, call_args, kwargs in record_launches(args.formats):
        launch_kwargs = {k: v for k, v in kwargs.items() if k not in options}
        types, constants, hints = signature(kernel, call_args, launch_kwargs)
        key = json.dumps([kernel.__name__, types, sorted(map(str, constants.items())), str(hints)])
        if key in seen:
            continue
        seen.add(key)
        source = ASTSource(fn=kernel, signature=types, constexprs=constants, attrs=hints)
        record = {"format": fmt, "dtype": dtype, "kernel": kernel.__name__}
        try:
            compiled = triton.compile(
                source, target=GPUTarget("cuda", args.arch, 32), options=options
            )
            ptx = compiled.asm["ptx"]
            record |= {
                "ok": True,
                "vector_loads": len(re.findall(r"ld\.global\.v[248]\.", ptx)),
                "vector_stores": len(re.findall(r"st\.global\.v[248]\.", ptx)),
                **resource_usage(compiled.asm["cubin"]),
            }
        except Exception as exc:
            record |= {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
