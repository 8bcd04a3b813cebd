"""Reasoning about ``quantizer_name`` patterns without a model: can two patterns select the same
quantizer, and does one set of patterns select every quantizer another one does?

Patterns are ``fnmatch`` globs matched against the whole name (``*`` any run of characters,
``?`` one character, ``[seq]`` and ``[!seq]`` one character in or out of a set, case
sensitive). Each glob is a small automaton over an alphabet of character *intervals*: the
code points are cut wherever any pattern in the question mentions a character or a range
boundary, so every interval is matched alike by every pattern and the answers are exact.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

MAX_CODE_POINT = 0x10FFFF

Interval = tuple[int, int]


@dataclass(frozen=True)
class _Element:
    """One position of a glob: ``*`` (star), or one character out of ``intervals``."""

    star: bool
    intervals: tuple[Interval, ...] = ()
    negated: bool = False

    def accepts(self, symbol: Interval) -> bool:
        """Whether the element matches the characters of ``symbol`` (all alike, by design)."""
        low = symbol[0]
        inside = any(start <= low <= end for start, end in self.intervals)
        return inside != self.negated


_ANY = _Element(star=False, intervals=((0, MAX_CODE_POINT),))
_STAR = _Element(star=True)


def _parse_set(pattern: str, start: int) -> tuple[_Element, int] | None:
    """The ``[...]`` set opening at ``start``, and the index after it; None when unclosed.

    Follows ``fnmatch.translate``: ``!`` right after ``[`` negates, a ``]`` first in the set
    is literal, ``a-z`` is a range (an empty range matches nothing).
    """
    index = start + 1
    negated = index < len(pattern) and pattern[index] == "!"
    if negated:
        index += 1
    body_start = index
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 1
    if index >= len(pattern):
        return None
    body = pattern[body_start:index]
    intervals: list[Interval] = []
    position = 0
    while position < len(body):
        if position + 2 < len(body) and body[position + 1] == "-":
            low, high = ord(body[position]), ord(body[position + 2])
            if low <= high:
                intervals.append((low, high))
            position += 3
        else:
            intervals.append((ord(body[position]), ord(body[position])))
            position += 1
    return _Element(star=False, intervals=tuple(intervals), negated=negated), index + 1


@cache
def _elements(pattern: str) -> tuple[_Element, ...]:
    elements: list[_Element] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            if not elements or elements[-1] is not _STAR:
                elements.append(_STAR)
            index += 1
        elif char == "?":
            elements.append(_ANY)
            index += 1
        elif char == "[" and (parsed := _parse_set(pattern, index)) is not None:
            elements.append(parsed[0])
            index = parsed[1]
        else:
            elements.append(_Element(star=False, intervals=((ord(char), ord(char)),)))
            index += 1
    return tuple(elements)


class Glob:
    """A compiled ``fnmatch`` pattern: a nondeterministic automaton over its elements.

    States are positions in the element list; a star position loops on any character and
    may be skipped; the last position accepts.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.elements = _elements(pattern)

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r})"

    @property
    def final(self) -> int:
        return len(self.elements)

    def closure(self, states: Iterable[int]) -> frozenset[int]:
        found = set()
        for state in states:
            while True:
                found.add(state)
                if state < self.final and self.elements[state].star:
                    state += 1
                else:
                    break
        return frozenset(found)

    def step(self, states: frozenset[int], symbol: Interval) -> frozenset[int]:
        after = set()
        for state in states:
            if state == self.final:
                continue
            element = self.elements[state]
            if element.star:
                after.add(state)
            elif element.accepts(symbol):
                after.add(state + 1)
        return self.closure(after)

    def start(self) -> frozenset[int]:
        return self.closure([0])

    def boundaries(self) -> set[int]:
        """Code points where the characters this glob tells apart begin."""
        points = set()
        for element in self.elements:
            for low, high in element.intervals:
                points.add(low)
                points.add(high + 1)
        return points


def _alphabet(globs: Iterable[Glob]) -> tuple[Interval, ...]:
    points = {0}
    for glob in globs:
        points |= glob.boundaries()
    cuts = sorted(p for p in points if p <= MAX_CODE_POINT)
    ends = [*cuts[1:], MAX_CODE_POINT + 1]
    return tuple((low, end - 1) for low, end in zip(cuts, ends, strict=True))


State = tuple[tuple[frozenset[int], ...], tuple[frozenset[int], ...]]


class TooComplexError(Exception):
    """The question needs more states than :data:`MAX_STATES` to answer."""


MAX_STATES = 5_000
"""Bound on the states one question may visit: each glob is small, but a union of many globs
with stars is determinised into their product, which can grow exponentially."""


def _explore(every: Sequence[Glob], some: Sequence[Glob]) -> Iterator[tuple[bool, bool]]:
    """Walk the reachable states of "all of ``every``" against "any of ``some``".

    Yields, per reachable state, whether every glob of ``every`` accepts there and whether
    some glob of ``some`` does; both automata are determinised as they are walked, breadth
    first, so that the shortest name answering the question comes first.
    """
    alphabet = _alphabet([*every, *some])
    start: State = (tuple(g.start() for g in every), tuple(g.start() for g in some))
    seen = {start}
    pending = deque([start])
    while pending:
        if len(seen) > MAX_STATES:
            raise TooComplexError
        left, right = pending.popleft()
        yield (
            all(g.final in s for g, s in zip(every, left, strict=True)),
            any(g.final in s for g, s in zip(some, right, strict=True)),
        )
        for symbol in alphabet:
            next_left = tuple(g.step(s, symbol) for g, s in zip(every, left, strict=True))
            if any(not s for s in next_left):
                continue  # no name continuing this way is in every glob of ``every``
            state = (next_left, tuple(g.step(s, symbol) for g, s in zip(some, right, strict=True)))
            if state not in seen:
                seen.add(state)
                pending.append(state)


def fill(pattern: str) -> str:
    """A short name matching ``pattern``: stars empty, every other position its first choice."""
    chars = []
    for element in _elements(pattern):
        if element.star:
            continue
        if not element.negated:
            if not element.intervals:
                return ""  # an empty set: nothing matches; the automata will say so
            chars.append(chr(element.intervals[0][0]))
            continue
        taken = sorted(element.intervals)
        candidate = 0x61  # 'a', then upward past every excluded interval
        for low, high in taken:
            if low <= candidate <= high:
                candidate = high + 1
        chars.append(chr(candidate))
    return "".join(chars)


def _sample_names(patterns: Sequence[str]) -> list[str]:
    """Cheap names that match every pattern, when concatenating their fills gives one.

    Most questions about real recipes are answered by such a name (``*mlp*`` and
    ``*_quantizer`` share ``mlp_quantizer``), which spares the automata.
    """
    fills = [fill(p) for p in patterns]
    candidates = {*fills, *("".join(order) for order in itertools.permutations(fills))}
    return sorted(
        (name for name in candidates if all(fnmatch.fnmatchcase(name, p) for p in patterns)),
        key=lambda name: (len(name), name),
    )


def _literal(element: _Element) -> str | None:
    if element.star or element.negated or len(element.intervals) != 1:
        return None
    low, high = element.intervals[0]
    return chr(low) if low == high else None


def _literal_ends(pattern: str) -> tuple[str, str]:
    """The characters every match starts with, and those it ends with."""
    literals = [_literal(e) for e in _elements(pattern)]
    ends = []
    for sequence in (literals, literals[::-1]):
        run = []
        for char in sequence:
            if char is None:
                break
            run.append(char)
        ends.append(run)
    return "".join(ends[0]), "".join(reversed(ends[1]))


def _ends_disagree(patterns: Sequence[str]) -> bool:
    """Whether two patterns demand different first or last characters (no name matches both)."""
    ends = [_literal_ends(p) for p in patterns]
    for (head, tail), (other_head, other_tail) in itertools.combinations(ends, 2):
        if not (head.startswith(other_head) or other_head.startswith(head)):
            return True
        if not (tail.endswith(other_tail) or other_tail.endswith(tail)):
            return True
    return False


@cache
def _overlap(patterns: tuple[str, ...]) -> bool:
    if _sample_names(patterns):
        return True
    if _ends_disagree(patterns):
        return False
    globs = [Glob(p) for p in patterns]
    try:
        return any(all_accept for all_accept, _ in _explore(globs, ()))
    except TooComplexError:
        return True  # unknown: a match is possible, so nothing is reported on a guess


def overlap(*patterns: str) -> bool:
    """Whether one name matches every pattern (``overlap('*proj*', '*_quantizer')``).

    A question too complex to settle within :data:`MAX_STATES` is answered True.
    """
    return _overlap(tuple(patterns))


@cache
def _covered(patterns: tuple[str, ...], by: tuple[str, ...]) -> bool:
    for name in _sample_names(patterns):
        if not any(fnmatch.fnmatchcase(name, other) for other in by):
            return False
    every = [Glob(p) for p in patterns]
    some = [Glob(p) for p in by]
    return all(some_accept for all_accept, some_accept in _explore(every, some) if all_accept)


def covered(patterns: Sequence[str], by: Sequence[str]) -> bool:
    """Whether every name matching all of ``patterns`` matches at least one of ``by``.

    A name matching ``patterns`` that no pattern of ``by`` matches settles the question at
    once; otherwise the automata decide. Raises :class:`TooComplexError` when that needs too
    many states.
    """
    return _covered(tuple(patterns), tuple(by))
