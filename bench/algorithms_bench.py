"""Calibration algorithms: quality against the unquantized model, and layer-by-layer memory.

Measures, on the CPU:

* **quality**: output error (mean squared difference from the unquantized model's output) and
  mean cosine similarity, on held-out data, of
    - INT4 AWQ (``w4a16_int4_awq``) against the same INT4 recipe with ``max``,
    - INT8 W8A8 SmoothQuant (``int8_smoothquant-kv_fp8``) against the same recipe with ``max``
      (plain INT8 W8A8: the same quantizers, unsmoothed); on MiniLM also with the LayerNorm
      inputs unquantized on both sides (W8A8 on the Linears, which is what SmoothQuant smooths),
    - GPTQ against ``max`` on the same formats (INT4 blocks; static NVFP4 of
      ``nvfp4_default-kv_none-gptq``, also with its activations unquantized),
  on the real all-MiniLM-L6-v2 (sentence embeddings; calibrated on the 64 sentences of
  ``data/sentences_calibration.txt``, evaluated on the 32 of ``data/sentences_held_out.txt``)
  and on a tiny random-weight Llama whose normalisation weights put a few hidden channels 30x
  above the rest (activation outliers, as in trained language models); SmoothQuant's ``alpha``
  swept against plain INT8; on MiniLM, ModelOpt's ``mtq.quantize`` on the same flat recipes
  wherever it runs on the CPU (INT8 and INT4; its NVFP4 needs CUDA), with whether its outputs
  equal qrecipe's bit for bit; then every built-in recipe on the same Llama (BERT recipes on
  MiniLM);
* **memory**: peak resident memory (RSS, Linux ``VmHWM`` reset just before ``apply``, after
  freed heap memory is returned with ``malloc_trim``) of calibrating a 32-layer tiny Llama
  (hidden 256, intermediate 2048: 226 MB of float32 weights, saved and loaded back) on 8
  batches of 4 x 64 tokens, each case in a fresh process: GPTQ and max, whole-model and layer by
  layer, in memory; and max, whole-model and layer by layer, with the decoder layers' weights
  left on disk by accelerate (``load_checkpoint_and_dispatch``). Ratios are given on the whole
  peak and on the peak above the process with its libraries imported (model + calibration).

Prints tables and writes ``bench/results/algorithms.json`` (a skipped section keeps the figures
the file had).

    python bench/algorithms_bench.py            # everything (about 15 minutes on 2 cores)
    python bench/algorithms_bench.py --skip-memory   # quality only (about 7 minutes)
    python bench/algorithms_bench.py --quick    # fewer recipes and alphas, no ModelOpt, 16 layers
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import gc
import json
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]

SMOOTHQUANT_RECIPE = "general/ptq/int8_smoothquant-kv_fp8"
LAYER_NORM_INPUTS = "*LayerNorm.input_quantizer"
"""On BERT, ``*input_quantizer`` also matches the inputs of the LayerNorms (ModelOpt quantizes
``nn.LayerNorm`` inputs too): the residual stream, whose few huge channels no Linear-only
algorithm can smooth. W8A8 "on the Linears" turns those quantizers off on both sides."""

MINILM = "all-MiniLM-L6-v2"
LLAMA = "tiny Llama with outlier channels"


@dataclass(frozen=True)
class Comparison:
    """An algorithm against a baseline on the same formats (the same quant_cfg on both sides)."""

    what: str
    recipe: str
    baseline: dict[str, Any]
    algorithm: dict[str, Any] | None  # None: the recipe's own
    models: tuple[str, ...] = (LLAMA, MINILM)
    disabled: tuple[str, ...] = ()  # quantizer patterns turned off on both sides
    modelopt: bool = False  # ModelOpt runs these formats on the CPU: measured too, on MiniLM


COMPARISONS = [
    Comparison("INT4 weights (w4a16_int4_awq)", "general/ptq/w4a16_int4_awq", {"method": "max"},
               None, modelopt=True),
    Comparison("INT8 W8A8 (int8_smoothquant-kv_fp8)", SMOOTHQUANT_RECIPE, {"method": "max"}, None,
               modelopt=True),
    Comparison("INT8 W8A8 on the Linears (LayerNorm inputs off)", SMOOTHQUANT_RECIPE,
               {"method": "max"}, None, models=(MINILM,), disabled=(LAYER_NORM_INPUTS,),
               modelopt=True),
    Comparison("INT4 weights, GPTQ", "general/ptq/w4a16_int4_awq", {"method": "max"},
               {"method": "gptq"}, modelopt=True),
    # Whole-model GPTQ: BERT has no decoder layers to go through one by one. ModelOpt's NVFP4
    # fake quantization needs CUDA, so it is not measured here.
    Comparison("NVFP4 static weights (nvfp4_default-kv_none-gptq)",
               "general/ptq/nvfp4_default-kv_none-gptq", {"method": "max"}, {"method": "gptq"}),
    # GPTQ rounds weights only: without the recipe's NVFP4 activations, its own share shows.
    Comparison("the same, activations unquantized", "general/ptq/nvfp4_default-kv_none-gptq",
               {"method": "max"}, {"method": "gptq"}, disabled=("*input_quantizer",)),
]  # fmt: skip

SMOOTHQUANT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
QUICK_ALPHAS = (0.5, 1.0)
SWEEPS = [
    (LLAMA, "INT8 W8A8 (int8_smoothquant-kv_fp8)", ()),
    (MINILM, "INT8 W8A8 (int8_smoothquant-kv_fp8)", ()),
    (MINILM, "INT8 W8A8 on the Linears (LayerNorm inputs off)", (LAYER_NORM_INPUTS,)),
]
"""SmoothQuant's alpha against plain INT8 W8A8 (max): (model, format, patterns turned off)."""

DATA = Path(__file__).parent / "data"


def sentences(name: str) -> list[str]:
    """One sentence a line: ``data/sentences_calibration.txt`` (64), ``..._held_out.txt`` (32)."""
    return (DATA / f"sentences_{name}.txt").read_text(encoding="utf-8").splitlines()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer recipes, 16 layers")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-builtins", action="store_true", help="only the comparisons")
    parser.add_argument(
        "--no-modelopt",
        dest="modelopt",
        action="store_false",
        help="do not run ModelOpt on the MiniLM cases it runs on the CPU (--quick does not)",
    )
    parser.add_argument("--layers", type=int, default=None, help="layers of the memory model")
    parser.add_argument("--output", type=Path, default=RESULTS / "algorithms.json")
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)  # a child process measuring
    parser.add_argument("--checkpoint", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- models and data ------------------------------------------------------------------------------


def outlier_llama(layers: int = 2, hidden: int = 64, intermediate: int = 128) -> Any:
    """A tiny Llama whose normalisation weights make a few hidden channels 30x larger."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    model = LlamaForCausalLM(config).eval()
    channels = torch.randperm(hidden, generator=torch.Generator().manual_seed(3))[:4]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.input_layernorm.weight[channels] *= 30.0
            layer.post_attention_layernorm.weight[channels] *= 30.0
    return model


def token_batches(count: int, size: int, length: int, seed: int) -> list[Any]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (size, length), generator=generator) for _ in range(count)]


def with_algorithm(
    name: str, algorithm: dict[str, Any] | None, disabled: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The built-in recipe, with another algorithm and/or some quantizer patterns turned off."""
    import qrecipe

    flat = copy.deepcopy(qrecipe.resolve(name))
    if algorithm is not None:
        flat["quantize"]["algorithm"] = algorithm
    for pattern in disabled:
        flat["quantize"]["quant_cfg"].append(
            {"quantizer_name": pattern, "parent_class": None, "enable": False, "cfg": None}
        )
    if algorithm is not None or disabled:
        flat["fingerprint"] = qrecipe.fingerprint(flat)
    return flat


class LlamaTask:
    """The outlier Llama: calibration batches, held-out batches, logits as the output."""

    name = LLAMA

    def __init__(self) -> None:
        self.calibration = token_batches(8, 4, 32, seed=1)
        self.held_out = token_batches(4, 4, 32, seed=2)
        self.calibration_tokens = sum(ids.numel() for ids in self.calibration)

    def model(self) -> Any:
        return outlier_llama()

    def forward_loop(self, model: Any) -> None:
        for ids in self.calibration:
            model(ids)

    def outputs(self, model: Any) -> Any:
        import torch

        with torch.no_grad():
            return torch.cat([model(ids).logits.flatten(0, 1) for ids in self.held_out])


class MiniLMTask:
    """all-MiniLM-L6-v2: sentence embeddings (masked mean of the last layer).

    Calibrated on 64 sentences in batches of 8 (about a thousand token positions: GPTQ's
    Hessians are up to 1536 wide, SmoothQuant's per-channel maxima must hold on unseen text),
    evaluated on 32 other sentences.
    """

    name = MINILM

    def __init__(self) -> None:
        from transformers import AutoTokenizer

        from qrecipe.demo import minilm_dir

        self.directory = minilm_dir()
        tokenizer = AutoTokenizer.from_pretrained(self.directory)
        calibration = sentences("calibration")
        self.calibration = [
            tokenizer(calibration[i : i + 8], padding=True, return_tensors="pt")
            for i in range(0, len(calibration), 8)
        ]
        self.held_out = tokenizer(sentences("held_out"), padding=True, return_tensors="pt")
        self.calibration_tokens = sum(batch["input_ids"].numel() for batch in self.calibration)

    def model(self) -> Any:
        from transformers import AutoModel

        return AutoModel.from_pretrained(self.directory).eval()

    def forward_loop(self, model: Any) -> None:
        for batch in self.calibration:
            model(**batch)

    def outputs(self, model: Any) -> Any:
        from qrecipe.demo import mean_pooled

        return mean_pooled(model, self.held_out)


def measure(outputs: Any, reference: Any) -> dict[str, float]:
    """Output error (mean squared) and mean cosine similarity against the unquantized model."""
    import torch

    return {
        "output_mse": float((outputs - reference).float().square().mean()),
        "cosine": float(torch.nn.functional.cosine_similarity(outputs, reference, dim=-1).mean()),
    }


def quality(task: Any, flat: dict[str, Any], reference: Any) -> tuple[dict[str, Any], Any]:
    """The recipe applied by qrecipe: its figures, and the outputs (for ModelOpt's)."""
    from qrecipe.runtime import apply

    model = task.model()
    started = time.perf_counter()
    report = apply(model, flat, forward_loop=task.forward_loop, progress=False)
    seconds = time.perf_counter() - started
    outputs = task.outputs(model)
    row = {
        **measure(outputs, reference),
        "enabled": report.counts["enabled"],
        "apply_seconds": round(seconds, 2),
    }
    return row, outputs


def modelopt_quality(
    task: Any, flat: dict[str, Any], reference: Any, ours: Any
) -> dict[str, Any] | None:
    """The same flat recipe through ModelOpt's ``mtq.quantize``; None without ModelOpt."""
    import gc

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import modelopt.torch.quantization as mtq
            from modelopt.torch.quantization.utils import calib_utils
    except ImportError:
        return None
    # ModelOpt's GPTQ asks how full the GPU is before placing its Hessians.
    calib_utils.get_used_gpu_mem_fraction = lambda device: 0.0
    quantize = modelopt_keys(flat["quantize"])
    model = task.model()
    started = time.perf_counter()
    mtq.quantize(
        model,
        {"quant_cfg": quantize["quant_cfg"], "algorithm": quantize["algorithm"]},
        forward_loop=task.forward_loop,
    )
    seconds = time.perf_counter() - started
    outputs = task.outputs(model)
    del model
    gc.collect()  # its quantized attention wraps shared functions while it lives
    return {
        **measure(outputs, reference),
        "identical_outputs": bool(torch.equal(outputs, ours)),
        "apply_seconds": round(seconds, 2),
    }


def modelopt_keys(value: Any) -> Any:
    """The flat quantize section as ModelOpt takes it: block-size axis keys back to ints."""
    if isinstance(value, list):
        return [modelopt_keys(item) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "block_sizes" and isinstance(item, dict):
                item = {(int(k) if k.lstrip("-").isdigit() else k): v for k, v in item.items()}
            out[key] = modelopt_keys(item)
        return out
    return value


def compare(
    task: Any, comparison: Comparison, reference: Any, with_modelopt: bool
) -> dict[str, Any]:
    """One comparison on one model: both sides by qrecipe, and by ModelOpt where it runs."""
    sides = {}
    for side, algorithm in (("baseline", comparison.baseline), ("algorithm", comparison.algorithm)):
        flat = with_algorithm(comparison.recipe, algorithm, comparison.disabled)
        row, outputs = quality(task, flat, reference)
        row = {"algorithm": flat["quantize"]["algorithm"], **row}
        if with_modelopt:
            row["modelopt"] = modelopt_quality(task, flat, reference, outputs)
        sides[side] = row
    mine, base = sides["algorithm"], sides["baseline"]
    result = {
        "model": task.name,
        "what": comparison.what,
        "disabled": list(comparison.disabled),
        "calibration_tokens": task.calibration_tokens,
        **sides,
        "error_ratio": mine["output_mse"] / base["output_mse"],
    }
    if mine.get("modelopt") and base.get("modelopt"):
        result["modelopt_error_ratio"] = (
            mine["modelopt"]["output_mse"] / base["modelopt"]["output_mse"]
        )
    return result


def run_quality(args: argparse.Namespace) -> dict[str, Any]:
    import qrecipe

    tasks = [LlamaTask(), MiniLMTask()]
    by_name = {task.name: task for task in tasks}
    references = {task.name: task.outputs(task.model()) for task in tasks}
    results: dict[str, Any] = {"comparisons": [], "smoothquant_alpha": [], "builtins": []}
    for task in tasks:
        for comparison in COMPARISONS:
            if task.name not in comparison.models:
                continue
            with_modelopt = comparison.modelopt and task.name == MINILM and args.modelopt
            row = compare(task, comparison, references[task.name], with_modelopt)
            results["comparisons"].append(row)
            print(f"  {task.name}: {comparison.what}: {row['error_ratio']:.3f}x", flush=True)
    for model, what, disabled in SWEEPS:
        task = by_name[model]
        with_modelopt = model == MINILM and args.modelopt
        sweep: dict[str, Any] = {"model": model, "what": what, "disabled": list(disabled)}
        for alpha in (None, *(QUICK_ALPHAS if args.quick else SMOOTHQUANT_ALPHAS)):
            algorithm = (
                {"method": "max"} if alpha is None else {"method": "smoothquant", "alpha": alpha}
            )
            flat = with_algorithm(SMOOTHQUANT_RECIPE, algorithm, disabled)
            row, outputs = quality(task, flat, references[model])
            if with_modelopt:
                row["modelopt"] = modelopt_quality(task, flat, references[model], outputs)
            if alpha is None:
                sweep["max"] = row
            else:
                row["error_ratio"] = row["output_mse"] / sweep["max"]["output_mse"]
                sweep.setdefault("alphas", []).append({"alpha": alpha, **row})
        results["smoothquant_alpha"].append(sweep)
        print(f"  {model}: {what}: smoothquant alpha sweep done", flush=True)
    names = [] if args.skip_builtins else [info.name for info in qrecipe.list_recipes()]
    if args.quick:
        names = names[::6]
    # Recipes with layer-by-layer checkpoints write them in a directory relative to the working
    # directory: a fresh one, so that no run resumes (or is refused by) an earlier run's files.
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        for name in names:
            task = by_name[MINILM if name.startswith("huggingface/bert/") else LLAMA]
            flat = qrecipe.resolve(name)
            row, _ = quality(task, flat, references[task.name])
            method = (flat["quantize"]["algorithm"] or {}).get("method")
            results["builtins"].append(
                {"recipe": name, "model": task.name, "algorithm": method, **row}
            )
            print(f"  {name}: cosine {row['cosine']:.4f}", flush=True)
    return results


# -- memory ----------------------------------------------------------------------------------------

MEMORY_HIDDEN, MEMORY_INTERMEDIATE = 256, 2048

MEMORY_CASES = {
    "gptq whole-model": ("general/ptq/w4a16_int4_awq", {"method": "gptq"}, False),
    "gptq layer by layer": (
        "general/ptq/w4a16_int4_awq",
        {"method": "gptq", "layerwise": {"enable": True}},
        False,
    ),
    "max whole-model": ("general/ptq/fp8_default-kv_fp8", {"method": "max"}, False),
    "max layer by layer": (
        "general/ptq/fp8_default-kv_fp8",
        {"method": "max", "layerwise": {"enable": True}},
        False,
    ),
    "max whole-model, weights offloaded to disk": (
        "general/ptq/fp8_default-kv_fp8",
        {"method": "max"},
        True,
    ),
    "max layer by layer, weights offloaded to disk": (
        "general/ptq/fp8_default-kv_fp8",
        {"method": "max", "layerwise": {"enable": True, "calib_mutates_weights": False}},
        True,
    ),
}
"""(recipe, algorithm, whether the layers' weights stay on disk)."""


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (``VmRSS``, ``VmHWM``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> None:
    """Start a new peak: Linux resets VmHWM to the current RSS when 5 goes to clear_refs."""
    Path("/proc/self/clear_refs").write_text("5")


def trim_heap() -> None:
    """Return freed heap memory to the system (glibc's ``malloc_trim``; nothing elsewhere)."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)


def load_model(checkpoint: Path, layers: int, offload: bool, directory: str) -> Any:
    """The saved model, in memory, or with every decoder layer's weights left on disk."""
    from transformers import LlamaForCausalLM

    if not offload:
        return LlamaForCausalLM.from_pretrained(checkpoint).eval()
    from accelerate import init_empty_weights, load_checkpoint_and_dispatch
    from transformers import AutoConfig

    with init_empty_weights():
        model = LlamaForCausalLM(AutoConfig.from_pretrained(checkpoint))
    device_map = {f"model.layers.{i}": "disk" for i in range(layers)}
    for name in ("model.embed_tokens", "model.rotary_emb", "model.norm", "lm_head"):
        device_map[name] = "cpu"
    return load_checkpoint_and_dispatch(
        model, str(checkpoint), device_map=device_map, offload_folder=directory
    ).eval()


def memory_child(case: str, layers: int, checkpoint: Path) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    # Everything the measured run imports is imported before the baseline.
    import accelerate  # noqa: F401
    from transformers import LlamaForCausalLM  # noqa: F401

    from qrecipe.runtime import apply

    recipe, algorithm, offload = MEMORY_CASES[case]
    flat = with_algorithm(recipe, algorithm)
    data = token_batches(8, 4, 64, seed=1)
    libraries = status_bytes("VmRSS")
    with tempfile.TemporaryDirectory() as directory:
        model = load_model(checkpoint, layers, offload, directory)
        with torch.no_grad():
            model(data[0])
        # Loading frees more than it keeps (accelerate reads every weight before offloading
        # it): hand the freed heap back so that the baseline and the peak count live memory.
        gc.collect()
        trim_heap()
        loaded = status_bytes("VmRSS")
        reset_peak_rss()
        started = time.perf_counter()
        apply(model, flat, forward_loop=lambda m: [m(ids) for ids in data], progress=False)
        seconds = time.perf_counter() - started
        peak = status_bytes("VmHWM")
    print(json.dumps({"libraries": libraries, "loaded": loaded, "peak": peak, "seconds": seconds}))


def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    layers = args.layers or (16 if args.quick else 32)
    measured: dict[str, Any] = {
        "layers": layers,
        "hidden": MEMORY_HIDDEN,
        "intermediate": MEMORY_INTERMEDIATE,
    }
    with tempfile.TemporaryDirectory() as directory:
        checkpoint = Path(directory) / "model"
        outlier_llama(layers, MEMORY_HIDDEN, MEMORY_INTERMEDIATE).save_pretrained(checkpoint)
        for case in MEMORY_CASES:
            command = [
                sys.executable,
                __file__,
                "--memory-case",
                case,
                "--layers",
                str(layers),
                "--checkpoint",
                str(checkpoint),
            ]
            output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
            row = json.loads(output.stdout.strip().splitlines()[-1])
            row["above_libraries"] = row["peak"] - row["libraries"]
            row["calibration"] = row["peak"] - row["loaded"]
            measured[case] = row
            print(f"  {case}: peak {row['peak'] / 2**20:.0f} MiB", flush=True)

    def ratio(case: str, baseline: str) -> dict[str, float]:
        mine, base = measured[case], measured[baseline]
        return {
            "peak_rss_ratio": mine["peak"] / base["peak"],
            "above_libraries_ratio": mine["above_libraries"] / max(base["above_libraries"], 1),
        }

    measured["ratios"] = {
        "gptq layer by layer / whole-model": ratio("gptq layer by layer", "gptq whole-model"),
        "max layer by layer / whole-model": ratio("max layer by layer", "max whole-model"),
        "max layer by layer offloaded / whole-model in memory": ratio(
            "max layer by layer, weights offloaded to disk", "max whole-model"
        ),
        "max whole-model offloaded / whole-model in memory": ratio(
            "max whole-model, weights offloaded to disk", "max whole-model"
        ),
    }
    return measured


# -- output --------------------------------------------------------------------------------------


def method_name(algorithm: dict[str, Any]) -> str:
    alpha = algorithm.get("alpha")
    return algorithm["method"] + ("" if alpha is None else f" a={alpha:g}")


def modelopt_cell(row: dict[str, Any]) -> str:
    theirs = row.get("modelopt")
    if not theirs:
        return "-"
    return f"{theirs['output_mse']:.3g}" + (" (same)" if theirs["identical_outputs"] else "")


def print_tables(results: dict[str, Any]) -> None:
    quality_results = results.get("quality")
    if quality_results:
        print(
            "\nAlgorithm against its baseline (same formats), output error (MSE) and cosine on "
            "held-out data;\nModelOpt: its output MSE for the same flat recipe on the CPU, "
            "'(same)' where its outputs equal qrecipe's bit for bit"
        )
        print(f"{'model':33} {'format':50} {'algorithm':>11} {'MSE':>9} {'cosine':>7} "
              f"{'max MSE':>9} {'cosine':>7} {'ratio':>6}  {'ModelOpt: algorithm':>19} "
              f"{'max':>16}")  # fmt: skip
        for row in quality_results["comparisons"]:
            mine, base = row["algorithm"], row["baseline"]
            print(
                f"{row['model']:33} {row['what']:50} {mine['algorithm']['method']:>11} "
                f"{mine['output_mse']:9.3g} {mine['cosine']:7.4f} {base['output_mse']:9.3g} "
                f"{base['cosine']:7.4f} {row['error_ratio']:6.3f}  {modelopt_cell(mine):>19} "
                f"{modelopt_cell(base):>16}"
            )
        print("\nSmoothQuant's alpha against plain INT8 W8A8 (max) on the same quantizers")
        for sweep in quality_results["smoothquant_alpha"]:
            base = sweep["max"]
            print(
                f"{sweep['model']}, {sweep['what']}: max MSE {base['output_mse']:.3g}, "
                f"cosine {base['cosine']:.4f}, ModelOpt {modelopt_cell(base)}"
            )
            for row in sweep["alphas"]:
                verdict = "beats max" if row["error_ratio"] < 1 else "worse than max"
                print(
                    f"    alpha {row['alpha']:4.2f}: MSE {row['output_mse']:9.3g} "
                    f"({row['error_ratio']:5.2f}x max, {verdict:14}), cosine {row['cosine']:.4f}, "
                    f"ModelOpt {modelopt_cell(row)}"
                )
        print("\nEvery built-in recipe")
        print(f"{'recipe':60} {'algorithm':>18} {'MSE':>10} {'cosine':>8} {'seconds':>8}")
        for row in quality_results["builtins"]:
            print(
                f"{row['recipe']:60} {row['algorithm']!s:>18} {row['output_mse']:10.3g} "
                f"{row['cosine']:8.4f} {row['apply_seconds']:8.2f}"
            )
    memory = results.get("memory")
    if memory:
        print(
            f"\nPeak RSS, {memory['layers']}-layer tiny Llama (hidden {memory['hidden']}, "
            f"intermediate {memory['intermediate']}); 'above' = above the interpreter and libraries"
        )
        for case in MEMORY_CASES:
            row = memory[case]
            print(
                f"{case:48} peak {row['peak'] / 2**20:7.1f} MiB, above the libraries "
                f"{row['above_libraries'] / 2**20:7.1f} MiB (model "
                f"{(row['loaded'] - row['libraries']) / 2**20:6.1f}"
                f" MiB, calibration {row['calibration'] / 2**20:6.1f} MiB), {row['seconds']:6.1f} s"
            )
        for name, ratio in memory["ratios"].items():
            print(
                f"{name}: peak RSS {ratio['peak_rss_ratio']:.3f}, "
                f"above the libraries {ratio['above_libraries_ratio']:.3f}"
            )


def previous_results(path: Path) -> dict[str, Any]:
    """The results file of an earlier run: a skipped section keeps its figures."""
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.quick:
        args.modelopt = False
    sys.path.insert(0, str(ROOT / "src"))
    if args.memory_case:
        memory_child(args.memory_case, args.layers or 32, args.checkpoint)
        return
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    results: dict[str, Any] = {
        **previous_results(args.output),
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
        "threads": 1,
    }
    if not args.skip_quality:
        print("quality ...", flush=True)
        results["quality"] = run_quality(args)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    if not args.skip_memory:
        print("memory ...", flush=True)
        results["memory"] = run_memory(args)
    print_tables(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
