"""Canonical bytes and the pretty form agree with RFC 8785 for any JSON value."""

import json

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from qrecipe.language.canonical import canonical_bytes, pretty_json

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonical_bytes_are_rfc8785(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


def _exact_in_json(value):
    """Integral floats beyond 2**53 read back as integers JSON cannot hold exactly."""
    if isinstance(value, float):
        return not (value.is_integer() and abs(value) >= 2**53)
    if isinstance(value, list):
        return all(_exact_in_json(v) for v in value)
    if isinstance(value, dict):
        return all(_exact_in_json(v) for v in value.values())
    return True


@settings(max_examples=200, deadline=None)
@given(json_values.filter(_exact_in_json))
def test_pretty_form_round_trips_to_the_same_canonical_bytes(value):
    text = pretty_json(value)
    assert text.endswith("\n")
    assert canonical_bytes(json.loads(text)) == canonical_bytes(value)


def test_key_order_is_by_utf16_code_units():
    value = {"\U0001f600": 1, "\ue000": 2, "a": 3}
    assert canonical_bytes(value) == '{"a":3,"\U0001f600":1,"\ue000":2}'.encode()
    assert list(json.loads(pretty_json(value))) == ["a", "\U0001f600", "\ue000"]


def test_numbers_follow_ecmascript_formatting():
    assert canonical_bytes([1.0, -0.0, 1e-7, 1e21, 0.1, 4.5]) == b"[1,0,1e-7,1e+21,0.1,4.5]"
