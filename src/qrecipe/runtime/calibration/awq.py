"""``awq_lite``, ``awq_clip`` and ``awq_full``: activation-aware weight quantization (AWQ).

The reference's meaning, for every linear layer whose weight quantizer quantizes (a sequence
of quantizers searches with its first stage, and all stages are max-calibrated afterwards):

**awq_lite** (options ``alpha_step``):

1. a full-precision pass records, per layer, the mean of ``|x|`` over tokens per input channel
   (averaged over batches) and, when the input is quantized, its per-channel amax; every other
   activation quantizer is max-calibrated in the same pass;
2. a search pass runs the model with its calibrated quantizers; each layer computes, for
   ``alpha = 0, alpha_step, ..., 1``, the scale ``s = a ** alpha / w ** (1 - alpha)`` (``a``
   the activation mean, ``w`` the mean over output rows of ``|W|`` divided by its block's (or
   row's) amax; clamped to [1e-4, 1e4] and divided by ``sqrt(max(s) * min(s))``), quantizes
   ``W * s`` (amax from the data) and accumulates the mean squared difference of
   ``(x / s) @ Q(W * s)`` from the full-precision output, which it passes on;
3. the best ``alpha``'s ``1 / s`` becomes the input quantizer's ``pre_quant_scale``, ``s`` is
   folded into the weight, the weight is max-calibrated again and a quantized input gets the
   per-tensor amax ``max(a_c / s_c)``. A layer no data reached keeps ``pre_quant_scale`` 1.

**awq_clip** (options ``max_co_batch_size``, ``max_tokens_per_batch``, ``min_clip_ratio``,
``shrink_step``), for block-quantized weights: a full-precision pass in which each layer, for
the ratios ``min_clip_ratio, min_clip_ratio + shrink_step, ... (< 1)`` and 1, quantizes its
weight with amax ``ratio * max`` and accumulates, per block, the mean squared error of the
block's partial products with up to ``max_tokens_per_batch`` of the batch's tokens; each block
keeps its best ratio. Dynamic-block weights (NVFP4) clip their per-tensor amax instead, on the
whole output. **awq_full** runs awq_lite, then awq_clip.

Across processes, the activation means are averaged over all batches of all ranks and the
search losses summed over ranks, so that every rank chooses the same scales (the reference
leaves the lite losses per rank).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional
from tqdm.auto import tqdm

from ..kernels import fake_quant
from ..quantizer import Collector, SequentialQuantizer, TensorQuantizer, iter_stages
from ..timing import timed
from .base import Algorithm, Calibration, LinearLayer, OptionRule
from .collect import (
    MaxCollector,
    all_reduce_sum,
    collectors_installed,
    combine,
    reduce_amaxes,
    run_forward,
)
from .max import calibrate_weights
from .options import MUTATING_OPTIONS, accepted, fraction_or_null, positive_int_or_null
from .smoothing import channel_statistic, fold_pre_quant_scale, recalibrate_weight

LITE_OPTIONS: dict[str, OptionRule] = {
    **MUTATING_OPTIONS,
    "alpha_step": fraction_or_null,
    "debug": accepted,
}
CLIP_OPTIONS: dict[str, OptionRule] = {
    **MUTATING_OPTIONS,
    "max_co_batch_size": positive_int_or_null,
    "max_tokens_per_batch": positive_int_or_null,
    "min_clip_ratio": fraction_or_null,
    "shrink_step": fraction_or_null,
    "debug": accepted,
}
FULL_OPTIONS: dict[str, OptionRule] = {**LITE_OPTIONS, **CLIP_OPTIONS}

TINY = torch.finfo(torch.float32).tiny


def search_stage(layer: LinearLayer) -> TensorQuantizer:
    """The weight quantizer AWQ searches with: the first stage of a sequence."""
    return iter_stages(layer.weight)[0]


def weight_block_size(stage: TensorQuantizer) -> int | None:
    """Block length along the input axis of a block-quantized weight, else None."""
    blocks = stage.attributes.get("block_sizes")
    if not blocks:
        return None
    for key in ("-1", "1"):
        size = blocks.get(key)
        if isinstance(size, int):
            return size
    raise ValueError("AWQ needs weight blocks along the last (input) axis")


def _weight_scale(weight: torch.Tensor, block_size: int | None) -> torch.Tensor:
    """Mean over output rows of |W| divided by its block's (or row's) largest |W|."""
    shape = weight.shape
    trim = None
    if block_size:
        if shape[-1] % block_size:
            trim = shape[-1]
            weight = functional.pad(weight, (0, block_size - shape[-1] % block_size))
            shape = weight.shape
        weight = weight.contiguous().view(-1, block_size)
    magnitude = weight.abs()
    largest = magnitude.amax(dim=1, keepdim=True)
    scale = (magnitude / (largest + torch.finfo(weight.dtype).tiny)).view(shape)
    if trim is not None:
        scale = scale[..., :trim]
    return scale.mean(0).to(torch.float32)


def awq_scale(activation: torch.Tensor, weight: torch.Tensor, alpha: float) -> torch.Tensor:
    """``a ** alpha / w ** (1 - alpha)``, clamped and normalised (see the module docstring)."""
    scales = (
        (activation.pow(alpha) / (weight.to(activation.device).pow(1 - alpha) + TINY))
        .clamp(min=1e-4, max=1e4)
        .view(-1)
    )
    return (scales / (scales.max() * scales.min()).sqrt()).view(-1)


@dataclass
class LiteState:
    """One layer's AWQ-lite statistics."""

    layer: LinearLayer
    alphas: list[float]
    weight_scale: torch.Tensor
    input_quantized: bool
    enabled: bool = True
    activation_sum: torch.Tensor | None = None
    cache_steps: int = 0
    search_steps: int = 0
    channel_amax: torch.Tensor | None = None
    losses: dict[float, torch.Tensor] = field(default_factory=dict)
    activation_mean: torch.Tensor | None = None
    """The mean over batches (of every rank) of the per-batch activation means."""


class LiteCache:
    """Collector of the first pass: activation means and per-channel amax."""

    def __init__(self, state: LiteState) -> None:
        self.state = state

    def __call__(self, quantizer: TensorQuantizer, x: torch.Tensor) -> None:
        state = self.state
        if x.numel() == 0 or not state.enabled:
            return
        mean = x.abs().contiguous().view(-1, x.shape[-1]).mean(0).to(torch.float32)
        state.activation_sum = mean if state.activation_sum is None else state.activation_sum + mean
        state.cache_steps += 1
        if state.input_quantized:
            state.channel_amax = combine(
                state.channel_amax, channel_statistic(quantizer, x), state.layer.input_name
            )


class LiteSearch:
    """Collector of the search pass: the output error of every candidate ``alpha``."""

    def __init__(self, state: LiteState, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.state = state
        self.weight = weight
        self.bias = bias

    def __call__(self, quantizer: TensorQuantizer, x: torch.Tensor) -> None:
        state = self.state
        if x.numel() == 0 or not state.enabled:
            return
        stage = search_stage(state.layer)
        assert state.activation_mean is not None
        reference = functional.linear(x, self.weight, self.bias)
        dtype = self.weight.dtype
        for alpha in state.alphas:
            scale = awq_scale(state.activation_mean, state.weight_scale, alpha)
            scaled_input = x * (1 / scale).to(dtype)
            scaled_weight = self.weight * scale.to(dtype)
            quantized = fake_quant(scaled_weight, stage.fmt, None, backend=stage.backend)
            output = functional.linear(scaled_input, quantized, self.bias)
            loss = (output - reference).float().pow(2).mean()
            state.losses[alpha] = state.losses[alpha] + loss.to(state.losses[alpha].device)
        state.search_steps += 1


def _alphas(step: float) -> list[float]:
    return [float(alpha.item()) for alpha in torch.arange(0, 1.0 + step, step)]


def awq_lite(calibration: Calibration) -> set[int]:
    """AWQ-lite over every linear layer whose weight quantizer quantizes.

    Returns the (ids of the) input quantizers whose amax it set from its own statistics: a
    later pass of the same run replaces their amax rather than extending it.
    """
    forward_loop = calibration.forward_loop
    result = calibration.result
    layers = [layer for layer in calibration.linear_layers() if search_stage(layer).enabled]
    step = float(calibration.option("alpha_step", 0.1))
    states = []
    for layer in layers:
        weight = layer.module.weight.detach()
        alphas = _alphas(step)
        state = LiteState(
            layer,
            alphas,
            _weight_scale(weight, weight_block_size(search_stage(layer))),
            input_quantized=layer.input.enabled,
            losses={a: torch.zeros((), device=weight.device) for a in alphas},
        )
        input_axis = layer.input.attributes["axis"]
        if layer.input.enabled and input_axis not in (None, -1):
            state.enabled = False
        states.append(state)
    _calibrate_other_weights(calibration, layers)
    if forward_loop is None:
        result.warnings.append("no forward_loop given: awq_lite is skipped (max calibration)")
        for state in states:
            recalibrate_weight(state.layer.weight, state.layer.module.weight.detach())
        return set()

    with timed(result.timings, "awq_cache"):
        cache: dict[int, Collector] = {id(s.layer.input): LiteCache(s) for s in states}
        _max_pass(calibration, cache, "awq: caching activations")
    sync = calibration.distributed_sync
    for state in states:
        _reduce_activation_mean(state, sync)
        mean = state.activation_mean
        if mean is None or bool(torch.isnan(mean).any() or torch.isnan(state.weight_scale).any()):
            state.enabled = False
    amaxes = reduce_amaxes([s.channel_amax for s in states], sync)
    for state, amax in zip(states, amaxes, strict=True):
        state.channel_amax = amax

    with timed(result.timings, "awq_search"):
        search: dict[int, Collector] = {}
        for state in states:
            module = state.layer.module
            search[id(state.layer.input)] = LiteSearch(
                state, module.weight.detach(), None if module.bias is None else module.bias
            )
            for stage in iter_stages(state.layer.weight):
                search[id(stage)] = _pass
        with collectors_installed(calibration.placed, search, others_pass=False):
            run_forward(calibration.model, forward_loop, calibration.progress, "awq: searching")

    with timed(result.timings, "awq_apply"):
        for state in tqdm(
            states, desc="awq: scaling", unit="layer", disable=not calibration.progress
        ):
            _finish_lite(calibration, state)
    return {id(state.layer.input) for state in states if state.input_quantized}


def _pass(quantizer: TensorQuantizer, x: torch.Tensor) -> None:
    """Weight quantizers of searched layers stay out of the way (full-precision output)."""


def _calibrate_other_weights(calibration: Calibration, layers: list[LinearLayer]) -> None:
    """Weights outside the searched layers get their max amax before the passes."""
    searched = {id(stage) for layer in layers for stage in iter_stages(layer.weight)}
    weights, _ = calibration.static_stages()
    calibrate_weights(
        [(slot, stage) for slot, stage in weights if id(stage) not in searched], progress=False
    )


def _max_pass(
    calibration: Calibration,
    extra: dict[int, Collector],
    desc: str,
    fresh: set[int] | None = None,
) -> None:
    """A full-precision pass: extra collectors, and max for every other activation quantizer.

    An amax already there (an earlier pass of the same run) is combined with the new one,
    except for the stages in ``fresh`` (by id), whose amax is replaced.
    """
    forward_loop = calibration.forward_loop
    assert forward_loop is not None
    _, activations = calibration.static_stages()
    activations = [(slot, stage) for slot, stage in activations if id(stage) not in extra]
    collectors: dict[int, Collector] = {
        id(stage): MaxCollector(slot.name) for slot, stage in activations
    }
    collectors.update(extra)
    with collectors_installed(calibration.placed, collectors):
        calibration.result.batches = run_forward(
            calibration.model, forward_loop, calibration.progress, desc
        )
    found: list[torch.Tensor | None] = []
    for _, stage in activations:
        collector = collectors[id(stage)]
        found.append(collector.amax if isinstance(collector, MaxCollector) else None)
    for (slot, stage), amax in zip(
        activations, reduce_amaxes(found, calibration.distributed_sync), strict=True
    ):
        if amax is not None:
            keep = stage.amax is not None and id(stage) not in (fresh or set())
            stage.amax = combine(stage.amax, amax, slot.name) if keep else amax


def _reduce_activation_mean(state: LiteState, sync: bool) -> None:
    """Sum and count of the per-batch means over every rank."""
    if state.activation_sum is None:
        width = state.weight_scale.numel()
        state.activation_sum = torch.zeros(width, dtype=torch.float32)
    packed = torch.cat(
        [state.activation_sum.float().reshape(-1), torch.tensor([float(state.cache_steps)])]
    )
    packed = all_reduce_sum(packed, sync)
    state.activation_sum = packed[:-1]
    state.cache_steps = int(packed[-1].item())
    if state.cache_steps:
        state.activation_mean = state.activation_sum / state.cache_steps


def _finish_lite(calibration: Calibration, state: LiteState) -> None:
    layer = state.layer
    result = calibration.result
    sync = calibration.distributed_sync
    losses = {alpha: float(all_reduce_sum(loss, sync)) for alpha, loss in state.losses.items()}
    steps = all_reduce_sum(torch.tensor([float(state.search_steps)]), sync)
    state.search_steps = int(steps.item())
    if state.enabled and state.search_steps == 0:
        state.enabled = False
        result.warnings.append(
            f"awq_lite: the second call of forward_loop sent no data through {layer.name}; "
            "forward_loop must be callable more than once"
        )
    weight = layer.module.weight.detach()
    if not state.enabled:
        result.warnings.append(
            f"awq_lite: {layer.name} was not exercised by the calibration data; it keeps "
            "pre_quant_scale 1 and max calibration"
        )
        recalibrate_weight(layer.weight, weight)
        layer.input.pre_quant_scale = torch.ones(
            weight.shape[1], dtype=weight.dtype, device=weight.device
        )
        if state.input_quantized and state.channel_amax is not None:
            layer.input.amax = state.channel_amax.amax()
        return
    assert state.activation_mean is not None
    best_alpha = min(losses, key=lambda alpha: losses[alpha])
    best_scale = awq_scale(state.activation_mean, state.weight_scale, best_alpha)
    channel_amax = state.channel_amax if state.input_quantized else None
    fold_pre_quant_scale(calibration, layer, 1.0 / best_scale, channel_amax)
    pre_quant_scale = (1.0 / best_scale).float()
    result.record(
        layer.input_name,
        awq_alpha=best_alpha,
        pre_quant_scale={
            "min": float(pre_quant_scale.min()),
            "mean": float(pre_quant_scale.mean()),
            "max": float(pre_quant_scale.max()),
        },
    )


# -- clip ---------------------------------------------------------------------------------------


@dataclass
class ClipState:
    """One layer's clip search."""

    layer: LinearLayer
    stage: TensorQuantizer
    block_size: int
    per_tensor: bool
    max_amax: torch.Tensor
    losses: dict[float, torch.Tensor]
    tokens: int = 0


class ClipSearch:
    """Collector of the clip pass: the error of every clip ratio, per block or per tensor."""

    def __init__(self, state: ClipState, options: dict[str, int]) -> None:
        self.state = state
        self.options = options

    def __call__(self, quantizer: TensorQuantizer, x: torch.Tensor) -> None:
        state = self.state
        if x.numel() == 0:
            return
        weight = state.layer.module.weight.detach()
        stage = state.stage
        if state.per_tensor:
            reference = x @ weight.T
            state.tokens += x.shape[0]
            for ratio in state.losses:
                quantized = fake_quant(
                    weight, stage.fmt, state.max_amax * ratio, backend=stage.backend
                )
                loss = (x @ quantized.T - reference).float().pow(2).mean()
                state.losses[ratio] += loss
            return
        block = state.block_size
        tokens = x.reshape(-1, x.shape[-1])
        tokens = tokens[0 :: max(1, tokens.shape[0] // self.options["max_tokens_per_batch"])]
        state.tokens += tokens.shape[0]
        rows, columns = weight.shape
        pad = (block - columns % block) % block
        padded_weight = functional.pad(weight, (0, pad)).reshape(rows, 1, -1, block)
        inputs = functional.pad(tokens, (0, pad)).reshape(1, tokens.shape[0], -1, block)
        chunk = self.options["max_co_batch_size"]
        quantized_by_ratio = {
            ratio: fake_quant(weight, stage.fmt, state.max_amax * ratio, backend=stage.backend)
            for ratio in state.losses
        }
        for start in range(0, rows, chunk):
            end = min(start + chunk, rows)
            original = (inputs * padded_weight[start:end]).sum(dim=-1)
            for ratio, quantized in quantized_by_ratio.items():
                piece = functional.pad(quantized[start:end], (0, pad))
                piece = piece.reshape(end - start, 1, -1, block)
                output = (inputs * piece).sum(dim=-1)
                loss = (output - original).float().pow(2).mean(dim=1)
                state.losses[ratio][start:end] += loss


def _clip_ratios(minimum: float, step: float) -> list[float]:
    return [round(float(k), 2) for k in torch.arange(minimum, 1.0, step)] + [1.0]


def awq_clip(calibration: Calibration, fresh: set[int] | None = None) -> None:
    """The clip search over every linear layer with a block-quantized weight.

    ``fresh``: input quantizers whose amax this pass replaces (see :func:`awq_lite`).
    """
    forward_loop = calibration.forward_loop
    result = calibration.result
    options = {
        "max_co_batch_size": int(calibration.option("max_co_batch_size", 1024)),
        "max_tokens_per_batch": int(calibration.option("max_tokens_per_batch", 64)),
    }
    ratios = _clip_ratios(
        float(calibration.option("min_clip_ratio", 0.5)),
        float(calibration.option("shrink_step", 0.05)),
    )
    states: list[ClipState] = []
    layers = [layer for layer in calibration.linear_layers() if search_stage(layer).enabled]
    for layer in layers:
        stage = search_stage(layer)
        block_size = weight_block_size(stage)
        if block_size is None:
            continue
        if stage.fmt.scheme == "mx":
            result.warnings.append(f"awq_clip: {layer.weight_name} (MX) has no amax to clip")
            continue
        weight = layer.module.weight.detach()
        recalibrate_weight(stage, weight)
        assert stage.amax is not None
        per_tensor = stage.fmt.amax_shape(weight.shape) == ()
        shape = () if per_tensor else tuple(stage.amax.shape)
        losses = {r: torch.zeros(shape, device=weight.device) for r in ratios}
        states.append(ClipState(layer, stage, block_size, per_tensor, stage.amax.clone(), losses))
    _calibrate_other_weights(calibration, [s.layer for s in states])
    if forward_loop is None:
        result.warnings.append("no forward_loop given: awq_clip is skipped (max calibration)")
        return
    with timed(result.timings, "awq_clip_search"):
        collectors: dict[int, Collector] = {}
        inputs: dict[int, MaxCollector] = {}
        for state in states:
            search = ClipSearch(state, options)
            layer = state.layer
            if layer.input.enabled and layer.input.needs_calibration:
                inputs[id(layer.input)] = MaxCollector(layer.input_name)
                collectors[id(layer.input)] = _both(inputs[id(layer.input)], search)
            else:
                collectors[id(layer.input)] = search
        _max_pass(calibration, collectors, "awq: clip search", fresh)
    amaxes = reduce_amaxes([c.amax for c in inputs.values()], calibration.distributed_sync)
    by_id = dict(zip(inputs, amaxes, strict=True))
    for state in states:
        amax = by_id.get(id(state.layer.input))
        if amax is not None:
            state.layer.input.amax = amax
        _finish_clip(calibration, state)


def _both(first: Collector, second: Collector) -> Collector:
    def collect(quantizer: TensorQuantizer, x: torch.Tensor) -> None:
        first(quantizer, x)
        second(quantizer, x)

    return collect


def _finish_clip(calibration: Calibration, state: ClipState) -> None:
    sync = calibration.distributed_sync
    losses = {ratio: all_reduce_sum(loss, sync) for ratio, loss in state.losses.items()}
    state.tokens = int(all_reduce_sum(torch.tensor([float(state.tokens)]), sync).item())
    if state.tokens == 0:
        return
    best_loss = torch.full_like(state.max_amax, float("inf"))
    best_amax = torch.zeros_like(state.max_amax)
    best_ratio = torch.ones_like(state.max_amax)
    for ratio, loss in losses.items():
        loss = loss.view_as(state.max_amax)
        better = loss < best_loss
        best_loss = torch.where(better, loss, best_loss)
        best_amax = torch.where(better, state.max_amax * ratio, best_amax)
        best_ratio = torch.where(better, torch.full_like(best_ratio, ratio), best_ratio)
    state.stage.amax = best_amax
    calibration.result.record(
        state.layer.weight_name,
        awq_clip_ratio={
            "min": float(best_ratio.min()),
            "mean": float(best_ratio.mean()),
            "max": float(best_ratio.max()),
        },
    )


# -- the three methods -----------------------------------------------------------------------


def _finish_sequences(calibration: Calibration) -> None:
    """Sequences of weight quantizers end max-calibrated on the final weight, every stage."""
    for layer in calibration.linear_layers():
        if isinstance(layer.weight, SequentialQuantizer) and layer.weight.enabled:
            recalibrate_weight(layer.weight, layer.module.weight.detach())


def calibrate_awq_lite(calibration: Calibration) -> None:
    awq_lite(calibration)
    _finish_sequences(calibration)


def calibrate_awq_clip(calibration: Calibration) -> None:
    awq_clip(calibration)
    _finish_sequences(calibration)


def calibrate_awq_full(calibration: Calibration) -> None:
    awq_clip(calibration, awq_lite(calibration))
    _finish_sequences(calibration)


AWQ_LITE = Algorithm("awq_lite", LITE_OPTIONS, calibrate_awq_lite, mutates_weights=True)
AWQ_CLIP = Algorithm("awq_clip", CLIP_OPTIONS, calibrate_awq_clip, mutates_weights=True)
AWQ_FULL = Algorithm("awq_full", FULL_OPTIONS, calibrate_awq_full, mutates_weights=True)
