"""Pattern reasoning without a model: exact answers, checked against fnmatch itself."""

from __future__ import annotations

import fnmatch
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from qrecipe.review.globs import covered, fill, overlap
from qrecipe.review.quantizers import can_name_a_quantizer, names_covered

# A small alphabet makes brute force over every short name an exhaustive oracle: a pattern of
# at most three pieces fixes at most six characters, so two patterns that share a name share
# one of at most six characters (and "c" stands for every character no pattern names).
# (An unclosed "[" is left out here: it would turn the pieces after it into a set holding "*",
# a character the names do not contain; test_an_unclosed_bracket_is_a_literal checks it.)
PIECES = ["a", "b", "*", "?", "[ab]", "[!a]", "[]a]", "[b-a]"]
NAMES = ["".join(t) for n in range(7) for t in itertools.product("ab[]c", repeat=n)]

patterns = st.lists(st.sampled_from(PIECES), min_size=0, max_size=3).map("".join)


def matches(name: str, *globs: str) -> bool:
    return all(fnmatch.fnmatchcase(name, g) for g in globs)


@settings(max_examples=150, deadline=None)
@given(patterns, patterns)
def test_overlap_agrees_with_fnmatch(first, second):
    witnessed = any(matches(name, first, second) for name in NAMES)
    # Names up to six characters witness every overlap of patterns this short.
    assert overlap(first, second) == witnessed


@settings(max_examples=150, deadline=None)
@given(patterns, st.lists(patterns, min_size=1, max_size=3))
def test_covered_agrees_with_fnmatch(pattern, others):
    counterexample = any(
        matches(name, pattern) and not any(matches(name, o) for o in others) for name in NAMES
    )
    if covered([pattern], others):
        assert not counterexample
    elif not counterexample:
        # No short counterexample: then there is none at all for patterns this short.
        raise AssertionError(f"{pattern!r} is covered by {others!r} on every short name")


def test_an_unclosed_bracket_is_a_literal():
    for pattern, name in (("[*", "[x"), ("a[", "a["), ("[*[]a]", "*a]")):
        assert fnmatch.fnmatchcase(name, pattern)
        assert overlap(pattern, name)
    assert not overlap("[*", "x*")
    assert not covered(["[*[]a]"], ["[*"])  # "*a]" matches the first only
    assert covered(["[ab*"], ["[*"])


def test_union_coverage_needs_all_members():
    assert covered(["*[abc]x"], ["*ax", "*bx", "*cx"])
    assert not covered(["*[abcd]x"], ["*ax", "*bx", "*cx"])


def test_fill_matches_its_pattern():
    for pattern in ("*q_proj*weight_quantizer", "a?[!b]c", "[]]x", "*[kv]_bmm_quantizer"):
        assert fnmatch.fnmatchcase(fill(pattern), pattern), pattern


def test_quantizer_names_end_in_quantizer_or_an_expert_index():
    assert can_name_a_quantizer("*")
    assert can_name_a_quantizer("*lm_head*")
    assert can_name_a_quantizer("*mlp.gate.*")
    assert can_name_a_quantizer("*experts.gate_up_proj_weight_quantizers.[0-9]")
    assert not can_name_a_quantizer("*lm_head")
    assert not can_name_a_quantizer("model.layers.0.mlp.down_proj")
    assert not can_name_a_quantizer("*weight")
    assert not can_name_a_quantizer("*_quantizers.x")


def test_coverage_is_judged_on_quantizer_names_only():
    # '*weight*' also matches names '*weight_quantizer' does not, but no quantizer name.
    assert names_covered("*weight*_quantizer", ["*_quantizer"])
    assert names_covered("*q_proj*", ["*q_proj*quantizer", "*q_proj*quantizers.*"])
    assert not names_covered("*", ["*weight_quantizer", "*input_quantizer"])
