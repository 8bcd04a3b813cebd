"""Calibration across two processes (torchrun, gloo backend, CPU), for real.

Each rank runs ``forward_loop`` on its own shard of the batches. ``max`` calibration across the
two ranks must equal, bit for bit, one process calibrating on every shard; every algorithm must
leave identical quantizers and weights on both ranks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = [pytest.mark.runtime, pytest.mark.slow]

WORKER = Path(__file__).with_name("distributed_worker.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("ranks")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        str(WORKER),
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in (0, 1)]


def assert_same(first: dict, second: dict, what: str) -> None:
    assert first.keys() == second.keys(), what
    for key, value in first.items():
        assert torch.equal(value, second[key]), f"{what}: {key}"


def test_max_across_ranks_equals_one_process_on_every_shard(ranks):
    together = ranks[0]["max"]
    assert_same(together, ranks[0]["max_alone_on_every_shard"], "rank 0 vs one process")
    assert_same(ranks[1]["max"], ranks[0]["max_alone_on_every_shard"], "rank 1 vs one process")
    # and the shards really differ: each rank alone would have calibrated differently
    own = [r["max_alone_on_own_shard"] for r in ranks]
    key = "model.layers.0.self_attn.q_proj.input_quantizer._amax"
    assert not torch.equal(own[0][key], own[1][key])
    assert torch.equal(together[key], torch.maximum(own[0][key], own[1][key]))


@pytest.mark.parametrize("case", ["max_layerwise", "smoothquant", "awq_full", "gptq", "headroom"])
def test_every_rank_ends_with_the_same_quantizers(ranks, case):
    assert_same(ranks[0][case], ranks[1][case], case)
    amax_keys = [k for k in ranks[0][case] if k.endswith("._amax")]
    assert amax_keys


def test_layer_by_layer_max_across_ranks_equals_whole_model(ranks):
    assert_same(ranks[0]["max_layerwise"], ranks[0]["max_alone_on_every_shard"], "layerwise")
