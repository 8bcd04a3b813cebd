"""Layer-by-layer calibration (``layerwise: {enable: true}``) of any algorithm.

The model's decoder layers (``model.layers``, ``model.model.layers`` or
``model.model.language_model.layers``, all of one class) are calibrated one at a time, as in
the reference:

1. ``forward_loop`` runs with decoder layer ``i`` capturing its inputs (the arguments of each
   call) and stopping the model right there; the layers before it do no work (the one just
   calibrated replays its own captured inputs, the others are replaced by a parameter-free
   stand-in that returns placeholders on the ``meta`` device);
2. the algorithm calibrates layer ``i`` alone, its ``forward_loop`` replaying the captured
   inputs through the layer;
3. layer ``i + 1``'s inputs are captured from layer ``i``'s outputs: full-precision outputs
   (captured before step 2, with layer ``i``'s quantizers off) unless
   ``get_qdq_activations_from_prev_layer`` is true, the default of GPTQ, in which case they are
   the outputs of the calibrated, quantized layer ``i`` (its changed weights included).

Only one layer's inputs (and, while they are captured, the next one's) are held at a time, a
layer's fake-quantized weights are dropped once it is done, and only one layer computes: the
per-layer state of an algorithm (GPTQ's Hessians, AWQ's statistics) exists for one layer at a
time, and a layer whose weights live elsewhere (offloaded with accelerate) is materialised by
its own forward call only. Quantizers outside the decoder layers are calibrated afterwards by
the same algorithm over the whole model. ``max`` calibrated layer by layer equals whole-model
``max`` exactly. A key-value cache in the captured arguments is reset before every replay.

With ``checkpoint_dir``, each calibrated layer's state is saved and committed every
``save_every`` layers; a rerun resumes after the last committed layer (see :mod:`.checkpoint`).
"""

from __future__ import annotations

import contextlib
import ctypes
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..placement.weights import forget_cached
from ..quantizer import iter_stages
from .base import Algorithm, Calibration, Placed
from .checkpoint import (
    CheckpointMismatchError,
    Identity,
    LayerCheckpoint,
    inputs_digest,
    layer_state,
    model_digest,
    restore_layer_state,
)
from .collect import collectors_installed, process_count
from .offload import materialized

Call = tuple[tuple[Any, ...], dict[str, Any]]


class _StopForward(Exception):
    """Raised inside the model once the capturing layer has its inputs."""


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    try:
        function: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    return function


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Give memory freed by the layer just done back to the operating system.

    glibc raises its threshold for serving allocations from fresh memory maps to the size of the
    largest block freed, so after the first weight-sized tensor is freed, later ones come from
    the heap and their memory stays with the process when freed: the resident memory of a
    layer-by-layer run would grow by about half a layer's weights per layer (measured on the
    benchmark's offloaded model) although nothing is kept. Trimming once per layer keeps it at
    the memory actually in use.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def find_decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """The decoder layers and their module path, or None when the model has none to find."""
    for path in ("model.language_model.layers", "model.layers", "language_model.layers", "layers"):
        try:
            candidate = model.get_submodule(path)
        except AttributeError:
            continue
        if not isinstance(candidate, nn.ModuleList) or len(candidate) == 0:
            continue
        if len({type(layer) for layer in candidate}) == 1:
            return path, candidate
    return None


def _meta_like(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return torch.empty(value.shape, dtype=value.dtype, device="meta")
    if isinstance(value, tuple):
        return tuple(_meta_like(v) for v in value)
    if isinstance(value, list):
        return [_meta_like(v) for v in value]
    return value


def _fresh_cache(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The captured keyword arguments with an empty key-value cache (replays must not grow it)."""
    cache = kwargs.get("past_key_values")
    if cache is None:
        return kwargs
    kwargs = dict(kwargs)
    if hasattr(cache, "reset"):
        cache.reset()
    else:
        kwargs["past_key_values"] = None
    return kwargs


class _Skipped(nn.Module):
    """Stands in for a calibrated layer: no parameters, placeholder outputs."""

    def __init__(self, output: Any) -> None:
        super().__init__()
        self.output = output

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.output


@dataclass
class _LayerMode:
    mode: str = "original"
    replay: deque[Call] = field(default_factory=deque)
    captured: list[Call] = field(default_factory=list)
    output: Any = None


class LayerRunner:
    """Drives the decoder layers through skip / run / capture while ``forward_loop`` runs."""

    def __init__(self, model: nn.Module, layers: nn.ModuleList) -> None:
        self.model = model
        self.layers = layers
        self.originals = list(layers)
        self.modes = [_LayerMode() for _ in self.originals]

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        for index, layer in enumerate(self.originals):
            layer.forward = self._dispatch(index, layer.forward)
        original_forward = self.model.forward

        def stop_early(*args: Any, **kwargs: Any) -> Any:
            try:
                return original_forward(*args, **kwargs)
            except _StopForward:
                return None

        self.model.forward = stop_early
        try:
            yield
        finally:
            self.model.__dict__.pop("forward", None)
            for index, layer in enumerate(self.originals):
                layer.__dict__.pop("forward", None)
                self.layers[index] = layer

    def _dispatch(self, index: int, forward: Callable[..., Any]) -> Callable[..., Any]:
        state = self.modes[index]

        def dispatch(*args: Any, **kwargs: Any) -> Any:
            if state.mode == "capture":
                state.captured.append((args, kwargs))
                raise _StopForward
            if state.mode == "run":
                if not state.replay:
                    raise RuntimeError(
                        f"decoder layer {index} was called more often than while its inputs "
                        "were captured: forward_loop must send the same batches every time"
                    )
                real_args, real_kwargs = state.replay.popleft()
                output = forward(*real_args, **_fresh_cache(real_kwargs))
                state.output = _meta_like(output)
                return output
            if state.mode == "pass":
                output = forward(*args, **kwargs)
                state.output = _meta_like(output)
                return output
            return forward(*args, **kwargs)

        return dispatch

    def _skip(self, index: int) -> None:
        """Replace layer ``index`` by its stand-in and let go of the inputs it was given."""
        if not isinstance(self.layers[index], _Skipped):
            self.layers[index] = _Skipped(self.modes[index].output)
        self.modes[index].replay.clear()
        self.modes[index].captured = []

    def capture(self, index: int, forward_loop: Callable[[nn.Module], Any]) -> list[Call]:
        """The inputs of layer ``index`` over ``forward_loop``, the layers before it skipped."""
        if index >= 2:
            self._skip(index - 2)
        if index >= 1:
            previous = self.modes[index - 1]
            previous.mode = "run"
            previous.replay = deque(previous.captured)
        return self._run_capturing(index, forward_loop, self.modes[max(index - 1, 0) : index])

    def capture_through(self, index: int, forward_loop: Callable[[nn.Module], Any]) -> list[Call]:
        """The inputs of layer ``index`` computed by the layers before it, all of them running
        (resuming: those layers were restored from a checkpoint, not calibrated in this run)."""
        for mode in self.modes[:index]:
            mode.mode = "pass"
        captured = self._run_capturing(index, forward_loop, self.modes[:index])
        for earlier in range(index - 1):
            self._skip(earlier)
        return captured

    def _run_capturing(
        self, index: int, forward_loop: Callable[[nn.Module], Any], running: list[_LayerMode]
    ) -> list[Call]:
        """Run ``forward_loop`` capturing the inputs of layer ``index``; the layers ``running``
        (set up by the caller) and the captured one are back to their own forward after."""
        current = self.modes[index]
        current.mode = "capture"
        current.captured = []
        try:
            with torch.no_grad():
                forward_loop(self.model)
        finally:
            for mode in [*running, current]:
                mode.mode = "original"
        if not current.captured:
            raise RuntimeError(
                f"decoder layer {index} received no input while forward_loop ran: check that "
                "forward_loop calls the model"
            )
        return current.captured


def _replay(layer: nn.Module, calls: list[Call]) -> Callable[[nn.Module], None]:
    def forward_loop(model: nn.Module) -> None:
        for args, kwargs in calls:
            layer(*args, **_fresh_cache(kwargs))

    return forward_loop


def _inside(placed: Placed, prefix: str) -> Placed:
    return [(slot, q) for slot, q in placed if (slot.owner_name + ".").startswith(prefix + ".")]


def calibrate_layerwise(calibration: Calibration, algorithm: Algorithm) -> None:
    """Run ``algorithm`` one decoder layer at a time (see the module docstring)."""
    options: dict[str, Any] = calibration.algorithm.get("layerwise") or {}
    forward_loop = calibration.forward_loop
    if forward_loop is None:
        raise ValueError("layer-by-layer calibration needs calibration data: pass forward_loop")
    found = find_decoder_layers(calibration.model)
    if found is None:
        raise ValueError(
            "layer-by-layer calibration found no decoder layers (model.layers, "
            "model.model.layers or model.model.language_model.layers, all of one class); "
            "set layerwise.enable: false"
        )
    path, layers = found
    writeback = algorithm.mutates_weights and options.get("calib_mutates_weights", True)
    qdq = options.get("get_qdq_activations_from_prev_layer")
    qdq = algorithm.qdq_between_layers if qdq is None else bool(qdq)
    count = len(layers)
    save_every = int(options.get("save_every") or 1)
    checkpoint = _checkpoint(calibration, options.get("checkpoint_dir"), count, save_every)
    runner = LayerRunner(calibration.model, layers)
    bar = tqdm(
        total=count, desc="calibrating layers", unit="layer", disable=not calibration.progress
    )
    try:
        with runner.patched():
            if checkpoint is None:
                start, inputs = 0, runner.capture(0, forward_loop)
            else:
                start, inputs = _resume(calibration, runner, checkpoint, path, qdq, writeback)
                bar.update(start)
            batches = len(inputs)
            for index in range(start, count):
                layer = runner.originals[index]
                prefix = f"{path}.{index}"
                placed = _inside(calibration.placed, prefix)
                last = index + 1 == count
                next_inputs: list[Call] | None = None
                if not last and not qdq:
                    # Full-precision outputs feed the next layer, as in whole-model calibration.
                    with collectors_installed(placed, {}):
                        next_inputs = runner.capture(index + 1, forward_loop)
                bar.set_postfix_str(f"layer {index + 1}/{count}")
                # Only this layer's weights are loaded (when offloaded) while it calibrates.
                with materialized(layer, writeback=writeback):
                    algorithm.run(calibration.restricted(layer, placed, _replay(layer, inputs)))
                    if checkpoint is not None:
                        state = layer_state(calibration, layer, placed, prefix)
                        checkpoint.save_layer(index, state)
                if not last and qdq:
                    next_inputs = runner.capture(index + 1, forward_loop)
                # The layer has run for the last time: its quantized weights need not stay.
                forget_cached(quantizer for _, quantizer in placed)
                release_free_memory()
                if checkpoint is not None and (last or (index + 1) % save_every == 0):
                    checkpoint.commit(index + 1, inputs_digest(next_inputs or inputs))
                bar.update(1)
                inputs = next_inputs or []
    finally:
        bar.close()
    calibration.result.batches = batches
    inside = {id(q) for q in (q for _, q in _inside(calibration.placed, path))}
    outside = [(slot, q) for slot, q in calibration.placed if id(q) not in inside]
    if any(
        stage.enabled and stage.needs_calibration
        for _, quantizer in outside
        for stage in iter_stages(quantizer)
    ):
        rest = calibration.restricted(calibration.model, outside, forward_loop)
        rest.progress = calibration.progress
        with contextlib.ExitStack() as stack:
            for owner in {id(slot.parent): slot.parent for slot, _ in outside}.values():
                stack.enter_context(materialized(owner, writeback=writeback))
            algorithm.run(rest)


def _checkpoint(
    calibration: Calibration, directory: str | None, count: int, save_every: int
) -> LayerCheckpoint | None:
    if directory is None:
        return None
    if process_count() > 1:
        raise ValueError(
            "layerwise.checkpoint_dir is for calibration in one process: in a torch.distributed "
            "job every rank would write the same files; set it to null"
        )
    identity = Identity(
        recipe=calibration.recipe_fingerprint,
        model=model_digest(calibration.model),
        layers=count,
        save_every=save_every,
    )
    return LayerCheckpoint(directory, identity)


def _resume(
    calibration: Calibration,
    runner: LayerRunner,
    checkpoint: LayerCheckpoint,
    path: str,
    qdq: bool,
    writeback: bool,
) -> tuple[int, list[Call]]:
    """Restore the layers a checkpoint holds; the first layer to calibrate and its inputs."""
    forward_loop = calibration.forward_loop
    assert forward_loop is not None
    completed, expected = checkpoint.committed()
    if completed == 0:
        return 0, runner.capture(0, forward_loop)
    # Once every layer is done, the last layer's inputs are what the digest covers.
    checked = min(completed, len(runner.originals) - 1)
    if not qdq:
        # The restored layers' full-precision outputs, computed before any weight changes.
        with collectors_installed(_inside(calibration.placed, path), {}):
            inputs = runner.capture_through(checked, forward_loop)
    for index in range(completed):
        layer = runner.originals[index]
        prefix = f"{path}.{index}"
        state = checkpoint.load_layer(index)
        with materialized(layer, writeback=writeback):
            restore_layer_state(
                calibration, layer, _inside(calibration.placed, prefix), prefix, state
            )
    if qdq:
        inputs = runner.capture_through(checked, forward_loop)
    if inputs_digest(inputs) != expected:
        raise CheckpointMismatchError(
            f"{checkpoint.directory}: the inputs of decoder layer {checked} differ from those of "
            "the run that wrote the checkpoint: the calibration data (forward_loop) or the "
            f"weights of the first {checked} layer(s) are not the same; remove the directory "
            "or choose another layerwise.checkpoint_dir"
        )
    calibration.result.warnings.append(
        f"layerwise: resumed from {checkpoint.directory}: decoder layers 0-{completed - 1} "
        "restored from the checkpoint"
    )
    return completed, inputs
