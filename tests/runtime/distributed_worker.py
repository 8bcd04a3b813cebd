"""One rank of the two-process calibration test (run by torchrun; see test_distributed.py).

Each rank calibrates a tiny Llama on its own shard of the batches and saves every quantizer
buffer and parameter; for ``max`` it also calibrates, alone (``distributed_sync: false``), on
every shard, which the test compares with the result of the two ranks together.
"""

from __future__ import annotations

import copy
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import qrecipe
from qrecipe.runtime import apply
from tiny_models import batches, loop_over, tiny_llama

CASES = {
    "max": ("general/ptq/fp8_default-kv_fp8", {"method": "max"}),
    "max_layerwise": (
        "general/ptq/fp8_default-kv_fp8",
        {"method": "max", "layerwise": {"enable": True}},
    ),
    "smoothquant": ("general/ptq/int8_smoothquant-kv_fp8", {"method": "smoothquant"}),
    "awq_full": (
        "general/ptq/w4a8_int4_awq-kv_fp8",
        {"method": "awq_full", "alpha_step": 0.5, "max_tokens_per_batch": 8},
    ),
    "gptq": ("general/ptq/w4a16_int4_awq", {"method": "gptq", "block_size": 16}),
    "headroom": ("general/ptq/nvfp4_act_headroom-kv_fp8_cast", None),
}


def flat_for(name: str, algorithm: dict[str, Any] | None) -> dict[str, Any]:
    flat = copy.deepcopy(qrecipe.resolve(name))
    if algorithm is not None:
        flat["quantize"]["algorithm"] = algorithm
        flat["fingerprint"] = qrecipe.fingerprint(flat)
    return flat


def calibrated(flat: dict[str, Any], data: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    model = tiny_llama()
    apply(model, flat, forward_loop=loop_over(data), progress=False)
    return {key: value.clone() for key, value in model.state_dict().items()}


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    data = batches(count=4, size=2, length=8, seed=5)
    shard = data[rank::world]
    results: dict[str, Any] = {}
    for case, (recipe, algorithm) in CASES.items():
        results[case] = calibrated(flat_for(recipe, algorithm), shard)
    alone = flat_for("general/ptq/fp8_default-kv_fp8", {"method": "max", "distributed_sync": False})
    results["max_alone_on_every_shard"] = calibrated(alone, data)
    results["max_alone_on_own_shard"] = calibrated(alone, shard)
    torch.save(results, Path(sys.argv[1]) / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
