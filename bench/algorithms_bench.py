"""Calibration algorithms: quality against the unquantized model, and layer-by-layer memory.

Measures, on the CPU:

* **quality**: output error (mean squared difference from the unquantized model's output) and
  mean cosine similarity, on held-out data, of
    - INT4 AWQ (``w4a16_int4_awq``) against the same INT4 recipe with ``max``,
    - INT8 W8A8 SmoothQuant (``int8_smoothquant-kv_fp8``) against the same recipe with ``max``,
    - GPTQ against ``max`` on the same formats (INT4 blocks; static NVFP4 of
      ``nvfp4_default-kv_none-gptq``),
  on the real all-MiniLM-L6-v2 (sentence embeddings) and on a tiny random-weight Llama whose
  normalisation weights put a few hidden channels 30x above the rest (activation outliers,
  as in trained language models); then every built-in recipe on the same Llama (BERT recipes
  on MiniLM);
* **memory**: peak resident memory (RSS, Linux ``VmHWM`` reset just before ``apply``) of
  calibrating a 32-layer tiny Llama (hidden 128, intermediate 1024, saved and loaded back) with
  GPTQ and with max, whole-model and layer by layer, each in a fresh process; and max layer by
  layer with the decoder layers' weights left on disk by accelerate
  (``load_checkpoint_and_dispatch``). Ratios are given on the whole peak and on the peak above
  the process with its libraries imported (model + calibration).

Prints tables and writes ``bench/results/algorithms.json``.

    python bench/algorithms_bench.py            # everything (about 15 minutes on 2 cores)
    python bench/algorithms_bench.py --quick    # fewer recipes and a 16-layer model
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]

COMPARISONS = [
    ("INT4 weights (w4a16_int4_awq)", "general/ptq/w4a16_int4_awq", {"method": "max"}, None),
    (
        "INT8 W8A8 (int8_smoothquant-kv_fp8)",
        "general/ptq/int8_smoothquant-kv_fp8",
        {"method": "max"},
        None,
    ),
    ("INT4 weights, GPTQ", "general/ptq/w4a16_int4_awq", {"method": "max"}, {"method": "gptq"}),
    (
        "NVFP4 static weights (nvfp4_default-kv_none-gptq)",
        "general/ptq/nvfp4_default-kv_none-gptq",
        {"method": "max"},
        {"method": "gptq"},  # whole-model: BERT has no decoder layers to go through one by one
    ),
]  # fmt: skip
"""(what, recipe, baseline algorithm, algorithm: None for the recipe's own)."""

CALIBRATION_SENTENCES = [
    "The weather was pleasant for a walk along the river.",
    "Compilers translate source code into machine instructions.",
    "Our team meets every Tuesday to review the roadmap.",
    "Fresh tomatoes make the best sauce in late summer.",
    "The museum's new wing displays modern sculpture.",
    "He fixed the bicycle chain before the race started.",
    "Interest rates influence how much families borrow.",
    "A gentle rain fell over the quiet mountain village.",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer recipes, 16 layers")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-builtins", action="store_true", help="only the comparisons")
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


def with_algorithm(name: str, algorithm: dict[str, Any] | None) -> dict[str, Any]:
    import qrecipe

    flat = copy.deepcopy(qrecipe.resolve(name))
    if algorithm is not None:
        flat["quantize"]["algorithm"] = algorithm
        flat["fingerprint"] = qrecipe.fingerprint(flat)
    return flat


class LlamaTask:
    """The outlier Llama: calibration batches, held-out batches, logits as the output."""

    name = "tiny Llama with outlier channels"

    def __init__(self) -> None:
        self.calibration = token_batches(8, 4, 32, seed=1)
        self.held_out = token_batches(4, 4, 32, seed=2)

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
    """all-MiniLM-L6-v2: sentence embeddings (masked mean of the last layer)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        from transformers import AutoTokenizer

        from qrecipe.demo import EVALUATION_SENTENCES, minilm_dir

        self.directory = minilm_dir()
        tokenizer = AutoTokenizer.from_pretrained(self.directory)
        self.calibration = [
            tokenizer(CALIBRATION_SENTENCES[i : i + 4], padding=True, return_tensors="pt")
            for i in (0, 4)
        ]
        self.held_out = tokenizer(EVALUATION_SENTENCES, padding=True, return_tensors="pt")

    def model(self) -> Any:
        from transformers import AutoModel

        return AutoModel.from_pretrained(self.directory).eval()

    def forward_loop(self, model: Any) -> None:
        for batch in self.calibration:
            model(**batch)

    def outputs(self, model: Any) -> Any:
        from qrecipe.demo import mean_pooled

        return mean_pooled(model, self.held_out)


def quality(task: Any, flat: dict[str, Any], reference: Any) -> dict[str, Any]:
    import torch

    from qrecipe.runtime import apply

    model = task.model()
    started = time.perf_counter()
    report = apply(model, flat, forward_loop=task.forward_loop, progress=False)
    seconds = time.perf_counter() - started
    outputs = task.outputs(model)
    error = float((outputs - reference).float().square().mean())
    cosine = float(torch.nn.functional.cosine_similarity(outputs, reference, dim=-1).mean())
    return {
        "output_mse": error,
        "cosine": cosine,
        "enabled": report.counts["enabled"],
        "apply_seconds": round(seconds, 2),
    }


def run_quality(args: argparse.Namespace) -> dict[str, Any]:
    import qrecipe

    tasks = [LlamaTask(), MiniLMTask()]
    results: dict[str, Any] = {"comparisons": [], "builtins": []}
    for task in tasks:
        reference = task.outputs(task.model())
        for what, recipe, baseline, algorithm in COMPARISONS:
            base = quality(task, with_algorithm(recipe, baseline), reference)
            improved_flat = with_algorithm(recipe, algorithm)
            improved = quality(task, improved_flat, reference)
            method = improved_flat["quantize"]["algorithm"]["method"]
            results["comparisons"].append(
                {
                    "model": task.name,
                    "what": what,
                    "baseline": {"algorithm": baseline["method"], **base},
                    "algorithm": {"algorithm": method, **improved},
                    "error_ratio": improved["output_mse"] / base["output_mse"],
                }
            )
            print(f"  {task.name}: {what}: {method} vs {baseline['method']} done", flush=True)
    llama, minilm = tasks
    names = [] if args.skip_builtins else [info.name for info in qrecipe.list_recipes()]
    if args.quick:
        names = names[::6]
    references = {
        id(llama): llama.outputs(llama.model()),
        id(minilm): minilm.outputs(minilm.model()),
    }
    for name in names:
        task = minilm if name.startswith("huggingface/bert/") else llama
        flat = qrecipe.resolve(name)
        row = quality(task, flat, references[id(task)])
        method = (flat["quantize"]["algorithm"] or {}).get("method")
        results["builtins"].append({"recipe": name, "model": task.name, "algorithm": method, **row})
        print(f"  {name}: cosine {row['cosine']:.4f}", flush=True)
    return results


# -- memory ----------------------------------------------------------------------------------------

MEMORY_HIDDEN, MEMORY_INTERMEDIATE = 128, 1024

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
    }
    return measured


# -- output --------------------------------------------------------------------------------------


def print_tables(results: dict[str, Any]) -> None:
    quality_results = results.get("quality")
    if quality_results:
        print("\nAlgorithm against its baseline (same format), on held-out data")
        print(f"{'model':34} {'format':50} {'algorithm':>10} {'MSE':>10} {'cosine':>8} "
              f"{'baseline MSE':>13} {'cosine':>8} {'MSE ratio':>10}")  # fmt: skip
        for row in quality_results["comparisons"]:
            mine, base = row["algorithm"], row["baseline"]
            print(
                f"{row['model']:34} {row['what']:50} {mine['algorithm']:>10} "
                f"{mine['output_mse']:10.3g} {mine['cosine']:8.4f} {base['output_mse']:13.3g} "
                f"{base['cosine']:8.4f} {row['error_ratio']:10.3f}"
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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    if args.memory_case:
        memory_child(args.memory_case, args.layers or 32, args.checkpoint)
        return
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    results: dict[str, Any] = {
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
