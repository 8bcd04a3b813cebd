"""Safe YAML loading: positions, hostile input and forbidden YAML features."""

import pytest

from qrecipe import DuplicateKeyError, RecipeLimitError, RecipeSyntaxError
from qrecipe.language.yamlio import MAX_FILE_BYTES, parse_yaml


def test_positions_are_one_based_and_keyed_by_pointer():
    doc = parse_yaml("a:\n  b: [1, {c: x}]\n", "f.yaml")[0]
    assert doc.data == {"a": {"b": [1, {"c": "x"}]}}
    assert doc.positions["/a/b"] == (2, 6)
    assert doc.positions["/a/b/1/c"] == (2, 14)
    assert doc.key_positions["/a/b"] == (2, 3)
    assert doc.position("/a/b/1/missing") == (2, 10)


def test_integer_keys_become_strings():
    doc = parse_yaml("block_sizes: {-1: 16, type: dynamic}\n", "f.yaml")[0]
    assert doc.data == {"block_sizes": {"-1": 16, "type": "dynamic"}}


@pytest.mark.parametrize(
    ("text", "error", "line", "column", "words"),
    [
        ("a: 1\nb: 2\na: 3\n", DuplicateKeyError, 3, 1, "duplicate key \"a\"|duplicate key 'a'"),
        ("m: {-1: 1, '-1': 2}\n", DuplicateKeyError, 1, 12, "duplicate key"),
        ("1.5: x\n", RecipeSyntaxError, 1, 1, "keys must be strings"),
        ("true: x\n", RecipeSyntaxError, 1, 1, "keys must be strings"),
        ("? [a]\n: x\n", RecipeSyntaxError, 1, 1, "keys must be strings"),
        ("base: &b {x: 1}\nother:\n  <<: *b\n", RecipeSyntaxError, 3, 3, "merge keys"),
        ("a: !!python/object:os.system ls\n", RecipeSyntaxError, 1, 4, "unsupported YAML value"),
        ("a: 2024-01-01\n", RecipeSyntaxError, 1, 4, "timestamp"),
        ("a: !!binary aGk=\n", RecipeSyntaxError, 1, 4, "binary"),
        ("a: .nan\n", RecipeSyntaxError, 1, 4, "finite"),
        ("a: -.inf\n", RecipeSyntaxError, 1, 4, "finite"),
        ("a: 9007199254740992\n", RecipeSyntaxError, 1, 4, "too large"),
        ("a: [1, 2\n", RecipeSyntaxError, 2, 1, "invalid YAML"),
        ("a: 1\n---\n- 1\n---\n- 2\n", RecipeSyntaxError, 5, 1, "more than 2 YAML documents"),
        ("a: &x [*x]\n", RecipeLimitError, 1, 4, "nesting deeper"),
    ],
)
def test_rejected_yaml_names_line_and_column(text, error, line, column, words):
    with pytest.raises(error) as caught:
        parse_yaml(text, "f.yaml")
    diagnostic = caught.value.first
    assert (diagnostic.file, diagnostic.line, diagnostic.column) == ("f.yaml", line, column)
    assert any(w in diagnostic.message for w in words.split("|")), diagnostic.message


def test_alias_bomb_is_stopped_quickly():
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(RecipeLimitError, match="alias expansion"):
        parse_yaml("\n".join(lines), "bomb.yaml")


def test_deep_nesting_is_refused():
    text = "a: " + "[" * 100 + "]" * 100 + "\n"
    with pytest.raises(RecipeLimitError, match="nesting deeper than 64"):
        parse_yaml(text, "deep.yaml")


def test_huge_file_is_refused_before_parsing():
    with pytest.raises(RecipeLimitError, match="limit"):
        parse_yaml(b"#" * (MAX_FILE_BYTES + 1), "big.yaml")


def test_byte_order_mark_is_accepted_and_invalid_utf8_is_not():
    assert parse_yaml("\ufeffa: 1\n".encode(), "bom.yaml")[0].data == {"a": 1}
    with pytest.raises(RecipeSyntaxError, match="UTF-8"):
        parse_yaml(b"a: \xff\n", "bad.yaml")


def test_yaml_1_1_booleans_as_keys_get_a_quoting_hint():
    with pytest.raises(RecipeSyntaxError) as caught:
        parse_yaml("imports: {off: units/off}\n", "f.yaml")
    assert "got 'off' (bool)" in caught.value.first.message
    assert caught.value.first.hint == "quote the key"
