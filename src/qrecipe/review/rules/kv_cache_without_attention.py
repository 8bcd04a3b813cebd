"""``kv-cache-without-attention``: KV-cache settings on a model that has no KV cache.

KV-cache entries configure the ``k_bmm``/``v_bmm`` quantizers the runtime places on attention
modules. A model without such attention (a state-space model) leaves them matching nothing;
a model that does not generate (an encoder such as BERT) keeps no cache, so the entries
quantize the attention's key and value states instead, which is rarely what was meant.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..quantizers import ModelSkeleton, can_name_a_quantizer, names_covered
from .base import Finding, LintContext, Rule

ATTENTION_QUANTIZERS = "*_bmm_quantizer"
ATTENTION_ROLES = ("q_bmm", "k_bmm", "v_bmm")


def kv_entries(context: LintContext) -> list[int]:
    """Entries that enable attention-state quantizers and nothing else."""
    return [
        index
        for index, entry in enumerate(context.entries)
        if entry["enable"]
        and can_name_a_quantizer(entry["quantizer_name"])
        and names_covered(entry["quantizer_name"], [ATTENTION_QUANTIZERS])
    ]


def has_attention(model: ModelSkeleton) -> bool:
    """Whether the runtime places query/key/value quantizers anywhere in ``model``."""
    return any(slot.role in ATTENTION_ROLES for slot in model.slots)


def check(context: LintContext) -> Iterator[Finding]:
    assert context.model is not None
    model = context.model
    entries = kv_entries(context)
    if not entries:
        return
    first, count = entries[0], len(entries)
    scope = f"{context.entry(first)}" + (f" and {count - 1} more" if count > 1 else "")
    if not has_attention(model):
        yield Finding(
            f"KV-cache settings ({scope}) on {model.architecture}, which has no attention "
            "module with key/value quantizers: they match nothing",
            "drop the KV-cache part of the recipe for this model",
            first,
        )
    elif not model.generates:
        yield Finding(
            f"KV-cache settings ({scope}) on {model.architecture}, which does not generate and "
            "keeps no KV cache: they quantize the states inside its attention instead",
            "drop the KV-cache part unless quantized attention inputs are intended",
            first,
        )


RULE = Rule(
    id="kv-cache-without-attention",
    level="warning",
    summary="KV-cache entries on a model without a KV cache (no attention, or an encoder)",
    needs_model=True,
    check=check,
)
