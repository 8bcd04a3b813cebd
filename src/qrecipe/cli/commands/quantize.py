"""``qrecipe quantize``: a Hugging Face model directory and a recipe to a deployable checkpoint.

The arguments, the recipe, the calibration data and the output directory are checked first,
without loading the runtime; then the runtime checks the model's structure against the recipe
and the export format (:func:`qrecipe.runtime.quantize.check`), and only then is the model
loaded, calibrated and exported. The runtime is imported when the command runs, so the rest of
the command line never loads torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ...language import is_flat_file, load_flat, resolve
from ..calibration_data import CalibrationDataError, load_samples
from ..common import ExitStatus, UsageError, add_search_path, notices, print_notices

EXPORT_FORMATS = ("modelopt", "compressed-tensors")
DTYPES = ("auto", "float32", "bfloat16", "float16")
REPORT_NAME = "qrecipe-report.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
)

EPILOG = """\
examples:
  qrecipe quantize ./Llama-3.1-8B --recipe general/ptq/nvfp4_default-kv_fp8 --out ./llama-nvfp4
  qrecipe quantize ./my-model --recipe my_recipe.yaml --calib data.jsonl --out ./my-model-fp8
  qrecipe quantize ./my-model --recipe general/ptq/fp8_default-kv_fp8 --dry-run

calibration data (--calib): a .jsonl file of {"text": ...} objects, or a text file with one
sample per line; without --calib a small built-in set of samples is used.

The checkpoint holds the tokenizer and generation config of MODEL, the quantized weights as
safetensors (sharded), config.json with quantization_config, hf_quant_config.json (modelopt
format), the flat recipe (recipe.flat.json; 'qrecipe fingerprint OUT' prints its fingerprint)
and the report (qrecipe-report.json). Load it back with qrecipe.runtime.load(OUT).
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "quantize",
        help="quantize a Hugging Face model directory to a deployable checkpoint",
        description="Quantize a Hugging Face model directory with a recipe: calibrate, then "
        "export a checkpoint that vLLM, SGLang and TensorRT-LLM load. Needs the runtime "
        "extra and transformers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    parser.add_argument("model", metavar="MODEL", help="Hugging Face model directory")
    parser.add_argument(
        "--recipe", required=True, metavar="R", help="built-in name, YAML recipe or flat JSON"
    )
    parser.add_argument("--out", metavar="DIR", help="checkpoint directory to write")
    parser.add_argument(
        "--calib", metavar="DATA", help="calibration data: .jsonl or text (default: built-in)"
    )
    parser.add_argument(
        "--calib-samples", type=_positive, default=32, metavar="N", help="samples (default 32)"
    )
    parser.add_argument(
        "--seq-len", type=_positive, default=256, metavar="N", help="tokens per sample (256)"
    )
    parser.add_argument(
        "--batch-size", type=_positive, default=4, metavar="N", help="samples per batch (4)"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N"
    )
    parser.add_argument("--dtype", default="auto", choices=DTYPES, help="compute dtype")
    parser.add_argument(
        "--export-format", default="modelopt", choices=EXPORT_FORMATS, help="checkpoint layout"
    )
    parser.add_argument(
        "--max-shard-size", default="5GB", metavar="SIZE", help="largest shard (default 5GB)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="place the quantizers on the model's skeleton and show what would be quantized",
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_search_path(parser)
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def check_model_dir(model: str) -> Path:
    """Refuse a MODEL that is not a Hugging Face model directory with a tokenizer."""
    path = Path(model)
    if not path.is_dir():
        raise UsageError(f"MODEL {model!r} is not a directory")
    if not (path / "config.json").is_file():
        raise UsageError(f"MODEL {model!r} has no config.json (not a Hugging Face model directory)")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UsageError(
            f"MODEL {model!r} has no tokenizer ({', '.join(TOKENIZER_FILES[:2])}, ...): "
            "calibration data cannot be tokenized"
        )
    return path


def check_out_dir(out: str | None, overwrite: bool) -> Path:
    """Refuse a missing --out, or a non-empty one unless --overwrite."""
    if out is None:
        raise UsageError("--out DIR is required (or use --dry-run)")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out!r} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UsageError(f"--out {out!r} is not empty (pass --overwrite to write into it)")
    return path


def load_recipe_arg(recipe: str, search: list[str]) -> dict[str, Any]:
    if is_flat_file(recipe):
        return load_flat(recipe)
    with notices() as found:
        flat = resolve(recipe, path=search)
    print_notices(found)
    return flat


def run(args: argparse.Namespace) -> ExitStatus:
    model_dir = check_model_dir(args.model)
    out = None if args.dry_run else check_out_dir(args.out, args.overwrite)
    flat = load_recipe_arg(args.recipe, args.path)
    try:
        samples = load_samples(args.calib, args.calib_samples)
    except CalibrationDataError as error:
        raise UsageError(f"--calib: {error}") from None
    try:
        from ...runtime import quantize as pipeline
    except ImportError as exc:
        raise UsageError(
            f"qrecipe quantize needs PyTorch and transformers ({exc}); install them with "
            "pip install 'qrecipe[quantize]'"
        ) from None
    options = pipeline.QuantizeOptions(
        calib_samples=args.calib_samples,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        export_format=args.export_format,
        max_shard_size=args.max_shard_size,
    )
    try:
        if out is None:
            report, plan = pipeline.dry_run(model_dir, flat, options)
            print_dry_run(report, plan, len(samples), options)
            return ExitStatus.OK
        _check_shard_size(args.max_shard_size)
        outcome = pipeline.quantize_to_checkpoint(
            model_dir, flat, samples, out, options, progress=not args.quiet
        )
    except pipeline.QuantizeError as error:
        raise UsageError(str(error)) from None
    document = {"model": str(model_dir), "recipe": flat["fingerprint"], **outcome.to_dict()}
    (out / REPORT_NAME).write_text(json.dumps(document, indent=2) + "\n")
    print_outcome(outcome, model_dir, out)
    return ExitStatus.OK


def _check_shard_size(size: str) -> None:
    from ...runtime.export.writer import parse_size

    try:
        parse_size(size)
    except ValueError as error:
        raise UsageError(f"--max-shard-size: {error}") from None


def print_dry_run(report: Any, plan: Any, samples: int, options: Any) -> None:
    print(report.table(only_enabled=True))
    print()
    schemes: dict[str, int] = {}
    for scheme in plan.schemes().values():
        schemes[scheme.algo] = schemes.get(scheme.algo, 0) + 1
    shown = ", ".join(f"{algo} x{count}" for algo, count in sorted(schemes.items()))
    kv = plan.kv_format
    print(f"export ({options.export_format}): {shown or 'nothing'}; KV cache: {kv or 'none'}")
    print(
        f"calibration: {samples} samples of up to {options.seq_len} tokens, "
        f"{options.batch_size} per batch (not run: --dry-run)"
    )


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.safetensors"))


def print_outcome(outcome: Any, model_dir: Path, out: Path) -> None:
    print(outcome.report.summary())
    result = outcome.export
    before, after = _size(model_dir), _size(out)
    ratio = f" ({after / before:.2f}x of {before / 1e6:.1f} MB)" if before else ""
    print(
        f"exported {len(result.quantized_layers)} quantized layers ({result.export_format}) to "
        f"{out}: {after / 1e6:.1f} MB of safetensors{ratio}"
    )
    print(f"report: {out / REPORT_NAME}", file=sys.stderr)
