"""Compile the dequantization kernel for an H100 (sm_90), every kind and dtype, without a GPU.

Run as a script in a process without ``TRITON_INTERPRET`` (the kernel is then a real JIT
function); prints one JSON object per compiled variant.

    python tests/runtime/dequant_compile.py [--arch 90]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.pop("TRITON_INTERPRET", None)

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from qrecipe.runtime.kernels import triton_dequant, triton_qdq

# Pointer types of (codes, scale, scale_2) for each kind, as the host code passes them.
POINTERS = {
    "fp8": ("*u8", "*fp32", "*fp32"),
    "nvfp4": ("*u8", "*u8", "*fp32"),
    "int4": ("*u8", "*fp32", "*fp32"),
    "int4_fp8": ("*u8", "*fp32", "*fp32"),
}
OUTPUTS = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", type=int, default=90)
    args = parser.parse_args()
    kernel = triton_dequant._dequant_kernel
    triton_qdq.interpreting = lambda: False
    options = triton_qdq._launch_options()
    names = list(kernel.arg_names)
    for kind, (codes, scale, scale_2) in POINTERS.items():
        for dtype, output in OUTPUTS.items():
            pointers = (codes, scale, scale_2, output, "i64", "i32", "i32", "i32")
            types = dict(zip(names[: len(pointers)], pointers, strict=True))
            constexprs = {
                "KIND": triton_dequant._KINDS[kind],
                "DTYPE": triton_dequant._DTYPE_CODES[dtype],
                "BLOCK_SIZE": triton_dequant.BLOCK,
            }
            for name in constexprs:
                types[name] = "constexpr"
            constants = {(names.index(name),): value for name, value in constexprs.items()}
            hints = {(index,): [["tt.divisibility", 16]] for index in range(4)}
            source = ASTSource(fn=kernel, signature=types, constexprs=constants, attrs=hints)
            record = {"kind": kind, "dtype": str(dtype).removeprefix("torch.")}
            try:
                compiled = triton.compile(
                    source, target=GPUTarget("cuda", args.arch, 32), options=options
                )
                record |= {"ok": True, "ptx_lines": compiled.asm["ptx"].count("\n")}
            except Exception as exc:
                record |= {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
            print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
