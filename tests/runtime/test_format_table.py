"""The format table against everything else that states a format: the flat schema, first
principles and PyTorch's FP8 types, the numerics page of the docs, the recipe library's
numerics snippets, and the constants of flatbuild."""

from __future__ import annotations

import re
import textwrap
from importlib import resources
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import qrecipe  # noqa: E402
from qrecipe.runtime import flatbuild  # noqa: E402
from qrecipe.runtime.attributes import default_attributes  # noqa: E402
from qrecipe.runtime.kernels import QuantFormat, UnsupportedFormatError  # noqa: E402
from qrecipe.runtime.kernels.catalog import FORMATS, attributes_named, format_named  # noqa: E402
from qrecipe.runtime.kernels.table import (  # noqa: E402
    E4M3,
    E5M2,
    FLOAT_ELEMENTS,
    INT_BITS,
    MX_SCALE_BITS,
    NVFP4_GLOBAL_DIVISOR,
    NVFP4_SCALE_BITS,
)

pytestmark = pytest.mark.runtime

DOCS = Path(__file__).resolve().parents[2] / "docs" / "runtime-numerics.md"
MINUS = "\u2212"  # the docs write negative numbers with a minus sign
NUMERICS = resources.files("qrecipe") / "recipes" / "configs" / "numerics"


def flat_attribute_schema(name: str) -> dict:
    return qrecipe.schema("flat")["$defs"]["attributes"]["properties"][name]


def schema_num_bits() -> tuple[range, list[tuple[int, int]]]:
    integer, pairs = flat_attribute_schema("num_bits")["anyOf"]
    widths = range(integer["minimum"], integer["maximum"] + 1)
    return widths, [tuple(pair) for pair in pairs["enum"]]


# -- the flat schema -----------------------------------------------------------------------------


def test_every_element_of_the_table_is_allowed_by_the_schema():
    widths, pairs = schema_num_bits()
    assert set(FLOAT_ELEMENTS) <= set(pairs)
    assert set(INT_BITS) <= set(widths)


def test_every_float_element_the_schema_allows_is_run_or_refused_by_name():
    _, pairs = schema_num_bits()
    for exponent, mantissa in pairs:
        cfg = {"num_bits": [exponent, mantissa]}
        if (exponent, mantissa) in FLOAT_ELEMENTS:
            if not FLOAT_ELEMENTS[(exponent, mantissa)].fp32_scales:
                cfg = {**cfg, "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]}}
            assert QuantFormat.from_cfg(cfg).element.name == f"E{exponent}M{mantissa}"
        else:
            with pytest.raises(UnsupportedFormatError, match=f"E{exponent}M{mantissa} elements"):
                QuantFormat.from_cfg(cfg)


def test_every_integer_width_the_schema_allows_is_run_or_refused():
    widths, _ = schema_num_bits()
    for bits in widths:
        if bits in INT_BITS:
            assert QuantFormat.from_cfg({"num_bits": bits}).element.bits == bits
        else:
            with pytest.raises(UnsupportedFormatError, match=f"num_bits {bits} "):
                QuantFormat.from_cfg({"num_bits": bits})


def test_block_scale_formats_fit_the_schema():
    scale_bits = flat_attribute_schema("block_sizes")["properties"]["scale_bits"]
    limits = scale_bits["prefixItems"]
    for bits in (NVFP4_SCALE_BITS, MX_SCALE_BITS):
        assert len(bits) == scale_bits["minItems"] == scale_bits["maxItems"]
        for value, limit in zip(bits, limits, strict=True):
            assert limit["minimum"] <= value <= limit["maximum"]


# -- the numbers themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("key", list(FLOAT_ELEMENTS))
def test_element_numbers_follow_from_exponent_and_mantissa_bits(key):
    element = FLOAT_ELEMENTS[key]
    exponent_bits, mantissa_bits = key
    bias = 2 ** (exponent_bits - 1) - 1
    top_exponent = 2**exponent_bits - 1 - bias
    if element is E5M2:  # IEEE-like: the top exponent is inf/NaN
        largest = (2 - 2.0**-mantissa_bits) * 2.0 ** (top_exponent - 1)
    elif element is E4M3:  # "FN": only the all-ones code is NaN
        largest = (2 - 2.0 ** -(mantissa_bits - 1)) * 2.0**top_exponent
    else:  # the MX elements have no inf or NaN
        largest = (2 - 2.0**-mantissa_bits) * 2.0**top_exponent
    assert element.max_value == largest
    assert element.min_normal_exponent == 1 - bias
    assert element.min_subnormal == 2.0 ** (1 - bias - mantissa_bits)


@pytest.mark.parametrize(
    ("element", "dtype"), [(E4M3, torch.float8_e4m3fn), (E5M2, torch.float8_e5m2)]
)
def test_fp8_elements_agree_with_pytorch(element, dtype):
    info = torch.finfo(dtype)
    assert element.max_value == info.max
    assert 2.0**element.min_normal_exponent == info.smallest_normal
    smallest_code = torch.tensor([1], dtype=torch.uint8).view(dtype)
    assert element.min_subnormal == smallest_code.item()


def test_nvfp4_global_divisor_is_the_product_of_the_largest_values():
    assert NVFP4_GLOBAL_DIVISOR == 6.0 * 448.0


# -- the docs -----------------------------------------------------------------------------------


def test_numerics_page_lists_the_table():
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = re.match(rf"\s*\| (E\dM\d) [^|]*\| (\d+) \| ({MINUS}?\d+) \| ([\d.]+) \|$", line)
        if match:
            name, mantissa, emin, largest = match.groups()
            rows[name] = (int(mantissa), int(emin.replace(MINUS, "-")), float(largest))
    assert rows == {
        e.name: (e.mantissa_bits, e.min_normal_exponent, e.max_value)
        for e in FLOAT_ELEMENTS.values()
    }


# -- the recipe library's numerics snippets and flatbuild ---------------------------------------


def snippet_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in NUMERICS.iterdir() if p.name.endswith(".yaml")
    )


def test_every_numerics_snippet_is_the_catalogue_entry_of_its_name(tmp_path):
    names = snippet_names()
    assert "fp8" in names
    assert "nvfp4" in names
    imports = "\n".join(f"  {name}: configs/numerics/{name}" for name in names)
    entries = "\n".join(
        f"    - quantizer_name: '{name}'\n      cfg:\n        $import: {name}" for name in names
    )
    recipe = tmp_path / "numerics.yaml"
    recipe.write_text(
        f"imports:\n{imports}\n"
        + textwrap.dedent(
            """\
            metadata:
              recipe_type: ptq
              description: every numerics snippet
            quantize:
              algorithm: max
              quant_cfg:
            """
        )
        + entries
        + "\n",
        encoding="utf-8",
    )
    flat = qrecipe.resolve(str(recipe))
    for entry in flat["quantize"]["quant_cfg"]:
        name = entry["quantizer_name"]
        assert name in FORMATS, f"the catalogue has no entry for the snippet {name}"
        resolved = {k: v for k, v in entry["cfg"].items() if k != "effective_bits"}
        expected = default_attributes(**attributes_named(name))
        del expected["effective_bits"]
        assert resolved == expected, name
        assert QuantFormat.from_cfg(entry["cfg"]) == format_named(name)


def test_flatbuild_formats_are_the_catalogue_entries():
    assert FORMATS["fp8"] == flatbuild.FP8
    assert FORMATS["nvfp4"] == flatbuild.NVFP4
    assert FORMATS["int8_per_channel"] == flatbuild.INT8_PER_CHANNEL
    assert flatbuild.FP8 is not FORMATS["fp8"]  # a copy: changing one changes nothing else
