"""``gptq``: Hessian-based weight rounding (GPTQ), options ``perc_damp``, ``block_size``, ``fused``.

As in the reference:

1. ``max`` calibration sets every scale (the weight amax stays that of the original weight);
2. a pass with the weight quantizers off (activations quantized) accumulates, for each linear
   layer whose weight quantizer quantizes, ``H = 2/n * sum(x x^T)`` over the ``n`` tokens of
   its (quantized) input;
3. per layer, input columns whose weight is all zero are cut out of ``H``, ``perc_damp`` times
   the mean of its diagonal is added to the diagonal, and ``U``, the upper Cholesky factor of
   ``H^-1``, is formed (the identity, with a warning, when ``H`` is not positive definite);
4. the weight is rounded one input column at a time, in blocks of ``block_size`` columns: the
   column takes its fake-quantized value (the quantizer applied to the whole current weight),
   and its rounding error, divided by ``U[j, j]``, is subtracted from the block's later columns
   along ``U[j, j:]``, and after the block from all later columns through ``U``.

The rounded weight replaces the layer's weight (the original is kept for removal). ``fused``
names the reference's GPU kernel for the same update; this runtime always runs the column loop.
Layer by layer (``layerwise.enable``), each decoder layer's Hessians come from the quantized
outputs of the layers before it. Across processes, the Hessians are combined as one over all
tokens (each rank's weighted by its token count) so that every rank rounds alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..kernels import fake_quant
from ..quantizer import AnyQuantizer, Collector, TensorQuantizer, iter_stages
from ..timing import timed
from .base import Algorithm, Calibration, LinearLayer, OptionRule
from .collect import (
    all_reduce_sum,
    collectors_installed,
    pass_through,
    process_count,
    run_forward,
)
from .max import calibrate_max
from .options import MUTATING_OPTIONS, accepted, positive_int_or_null, positive_or_null

OPTIONS: dict[str, OptionRule] = {
    **MUTATING_OPTIONS,
    "perc_damp": positive_or_null,
    "block_size": positive_int_or_null,
    "fused": accepted,
}


@dataclass
class HessianState:
    """The running Hessian of one layer's inputs."""

    layer: LinearLayer
    hessian: torch.Tensor
    samples: int = 0

    def update(self, x: torch.Tensor) -> None:
        """The reference's running average: scale down, then add ``2/n`` times ``x x^T``."""
        columns = x.reshape(-1, x.shape[-1]).t().float()
        count = columns.shape[1]
        if count == 0:
            return
        self.hessian *= self.samples / (self.samples + count)
        self.samples += count
        scaled = math.sqrt(2 / self.samples) * columns
        self.hessian.add_((scaled @ scaled.t()).to(self.hessian.device))


def _first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    if args and isinstance(args[0], torch.Tensor):
        return args[0]
    for key in ("input", "hidden_states", "x"):
        value = kwargs.get(key)
        if isinstance(value, torch.Tensor):
            return value
    return None


def collect_hessians(calibration: Calibration, layers: list[LinearLayer]) -> list[HessianState]:
    """One pass with quantized activations and unquantized weights; each layer's Hessian."""
    forward_loop = calibration.forward_loop
    assert forward_loop is not None
    states = []
    handles = []
    for layer in layers:
        width = layer.module.weight.shape[-1]
        state = HessianState(
            layer, torch.zeros(width, width, dtype=torch.float32, device=layer.module.weight.device)
        )
        states.append(state)

        # Registered after the quantizers' hook: it sees the input as the layer computes with it.
        def record(
            module: nn.Module,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
            state: HessianState = state,
        ) -> None:
            x = _first_tensor(args, kwargs)
            if x is not None:
                state.update(x.detach())

        handles.append(layer.module.register_forward_pre_hook(record, with_kwargs=True))
    weights: dict[int, Collector] = {
        id(stage): pass_through
        for slot, quantizer in calibration.placed
        if slot.tensor is not None
        for stage in iter_stages(quantizer)
    }
    try:
        with collectors_installed(calibration.placed, weights, others_pass=False):
            run_forward(calibration.model, forward_loop, calibration.progress, "gptq: hessians")
    finally:
        for handle in handles:
            handle.remove()
    if calibration.distributed_sync:
        for state in states:
            _combine_across_ranks(state)
    return states


def _combine_across_ranks(state: HessianState) -> None:
    if process_count() == 1:
        return
    samples = int(all_reduce_sum(torch.tensor([float(state.samples)]), True).item())
    weighted = all_reduce_sum(state.hessian * state.samples, True)
    state.hessian = weighted / max(samples, 1)
    state.samples = samples


def hessian_inverse_factor(
    hessian: torch.Tensor, weight: torch.Tensor, damping: float
) -> tuple[torch.Tensor, bool]:
    """Upper Cholesky factor of the damped inverse Hessian, and whether it was positive definite.

    Columns whose weight is all zero (dead inputs) are cut out of ``H`` (row and column zero,
    diagonal one) first.
    """
    h = hessian.clone()
    dead = weight.eq(0).all(dim=0)
    h[dead, :] = 0
    h[:, dead] = 0
    diagonal = torch.arange(h.shape[0], device=h.device)
    h[diagonal[dead], diagonal[dead]] = 1
    damp = damping * torch.mean(torch.diag(h))
    h[diagonal, diagonal] += damp
    try:
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(h))
        return torch.linalg.cholesky(inverse, upper=True), True
    except RuntimeError:  # torch.linalg.LinAlgError is one
        return torch.eye(h.shape[0], device=h.device, dtype=h.dtype), False


ColumnQuantizer = Callable[[torch.Tensor, int], torch.Tensor]


def column_quantizer(quantizer: AnyQuantizer, shape: torch.Size) -> ColumnQuantizer:
    """``f(weight, j)``: column ``j`` of the fake-quantized ``weight``.

    The reference quantizes the whole current weight for every column. For a single static
    quantizer whose scales are fixed (per tensor, per output channel, or blocks along the input
    axis) a column's value depends only on its own group of columns, so only that group is
    quantized, with its slice of the amax: the same values at a fraction of the cost.
    """

    def whole(weight: torch.Tensor, column: int) -> torch.Tensor:
        quantized: torch.Tensor = quantizer(weight)
        return quantized[:, column]

    if not isinstance(quantizer, TensorQuantizer) or quantizer.amax is None:
        return whole
    if quantizer.pre_quant_scale is not None or not quantizer.enabled:
        return whole
    fmt = quantizer.fmt
    amax = quantizer.amax
    if not fmt.needs_calibration:
        return whole
    if fmt.scheme == "tensor" or (fmt.scheme == "channel" and fmt.kept_axes(2) == (0,)):

        def elementwise(weight: torch.Tensor, column: int) -> torch.Tensor:
            piece = weight[:, column : column + 1]
            return fake_quant(piece, fmt, amax, backend=quantizer.backend)[:, 0]

        return elementwise
    grouped = fmt.scheme == "nvfp4" or (fmt.scheme == "block" and fmt.block_layout(shape)[0] == 1)
    if not grouped or tuple(amax.shape) != fmt.amax_shape(shape):
        return whole
    size = fmt.block_size if fmt.scheme == "nvfp4" else fmt.block_layout(shape)[1]
    global_amax = quantizer.global_amax
    if fmt.scheme == "nvfp4" and global_amax is None:
        global_amax = amax.amax()

    def by_group(weight: torch.Tensor, column: int) -> torch.Tensor:
        group = column // size
        start = group * size
        piece = weight[:, start : min(start + size, weight.shape[1])]
        quantized = fake_quant(
            piece,
            fmt,
            amax[:, group : group + 1],
            backend=quantizer.backend,
            global_amax=global_amax if fmt.scheme == "nvfp4" else None,
        )
        return quantized[:, column - start]

    return by_group


def round_columns(
    weight: torch.Tensor, factor: torch.Tensor, block_size: int, quantizer: AnyQuantizer
) -> None:
    """The GPTQ column loop over ``weight`` (float32, changed in place), see the docstring."""
    quantize_column = column_quantizer(quantizer, weight.shape)
    columns = weight.shape[1]
    for start in range(0, columns, block_size):
        end = min(start + block_size, columns)
        block_factor = factor[start:end, start:end]
        working = weight.clone()
        errors = torch.zeros_like(weight[:, start:end])
        for offset in range(end - start):
            column = start + offset
            value = working[:, column].clone()
            quantized = quantize_column(working, column)
            weight[:, column] = quantized
            error = (value - quantized) / block_factor[offset, offset]
            working[:, column:end].addr_(error, block_factor[offset, offset:], alpha=-1)
            errors[:, offset] = error
        weight[:, end:].addmm_(errors, factor[start:end, end:], alpha=-1)


def relative_error(original: torch.Tensor, rounded: torch.Tensor, hessian: torch.Tensor) -> float:
    """Hessian-weighted squared change of the weight, relative to the weight's own."""
    delta = rounded - original
    change = delta.mm(hessian).mul(delta).mean()
    return float(change / (original.mm(hessian).mul(original).mean() + 1e-6))


def calibrate_gptq(calibration: Calibration) -> None:
    """Max calibration, then GPTQ rounding of every quantized linear layer's weight."""
    if calibration.forward_loop is None:
        raise ValueError("gptq needs calibration data: pass forward_loop to apply()")
    calibrate_max(calibration)
    layers = [
        layer for layer in calibration.linear_layers() if iter_stages(layer.weight)[0].enabled
    ]
    if not layers:
        return
    result = calibration.result
    with timed(result.timings, "gptq_hessians"):
        states = collect_hessians(calibration, layers)
    damping = float(calibration.option("perc_damp", 0.01))
    block_size = int(calibration.option("block_size", 128))
    with timed(result.timings, "gptq_rounding"), torch.no_grad():
        for state in tqdm(
            states, desc="gptq: rounding", unit="layer", disable=not calibration.progress
        ):
            _round_layer(calibration, state, damping, block_size)


def _round_layer(
    calibration: Calibration, state: HessianState, damping: float, block_size: int
) -> None:
    layer = state.layer
    parameter = layer.module.weight
    original = parameter.detach().float()
    weight = original.clone()
    factor, definite = hessian_inverse_factor(state.hessian, weight, damping)
    if not definite:
        calibration.result.warnings.append(
            f"gptq: the Hessian of {layer.name} is not positive definite; rounded with the "
            "identity instead (plain rounding)"
        )
    round_columns(weight, factor, block_size, layer.weight)
    error = relative_error(original, weight, state.hessian)
    calibration.replace_weight(layer.module, weight.reshape(parameter.shape).to(parameter.dtype))
    calibration.result.record(
        layer.weight_name, gptq_relative_error=error, gptq_hessian_tokens=state.samples
    )


GPTQ = Algorithm("gptq", OPTIONS, calibrate_gptq, mutates_weights=True, qdq_between_layers=True)
