"""Folding repeated layer names: every name is shown exactly once, none is invented."""

from __future__ import annotations

import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from qrecipe.review.folding import fold, fold_counted, number_set


def unfold(folded: str) -> set[str]:
    """The names a folded name stands for."""
    choices = []
    for segment in re.findall(r"\{[^}]*\}|[^.{}]+", folded):
        if segment.startswith("{"):
            values: list[str] = []
            for part in segment.strip("{}").split(","):
                low, _, high = part.partition("..")
                values += [str(v) for v in range(int(low), int(high or low) + 1)]
            choices.append(values)
        else:
            choices.append([segment])
    return {".".join(parts) for parts in itertools.product(*choices)}


def test_number_sets():
    assert number_set([3]) == "3"
    assert number_set([0, 1]) == "{0,1}"
    assert number_set(range(32)) == "{0..31}"
    assert number_set([0, 1, 2, 3, 7, 9, 10, 11]) == "{0..3,7,9..11}"


def test_layers_and_experts_fold_into_one_name():
    names = [f"model.layers.{i}.mlp.experts.w_quantizers.{e}" for i in range(48) for e in range(8)]
    assert fold_counted(names) == [("model.layers.{0..47}.mlp.experts.w_quantizers.{0..7}", 384)]


def test_a_set_that_is_not_a_product_is_split():
    names = [f"layers.{i}.experts.{e}" for i in range(3) for e in range(4 if i < 2 else 2)]
    assert fold(names) == ["layers.{0,1}.experts.{0..3}", "layers.2.experts.{0,1}"]


def test_names_without_numbers_stay_as_they_are():
    assert fold(["lm_head.weight_quantizer", "model.norm"]) == [
        "lm_head.weight_quantizer",
        "model.norm",
    ]


@given(st.sets(st.tuples(st.integers(0, 6), st.integers(0, 3), st.sampled_from("ab")), max_size=40))
def test_folding_loses_and_invents_nothing(triples):
    names = {f"layers.{i}.{kind}.experts.{e}" for i, e, kind in triples}
    folded = fold_counted(sorted(names))
    expanded = [unfold(name) for name, _ in folded]
    assert set().union(*expanded) == names if names else folded == []
    assert sum(len(e) for e in expanded) == len(names)  # no name twice
    assert all(len(e) == count for e, (_, count) in zip(expanded, folded, strict=True))
    assert all(re.fullmatch(r"[\w.{},]+", name) for name, _ in folded)
