"""Small helpers shared by the validator tests."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent / "bench"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: YAML text}`` under ``root`` (text is dedented)."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


RECIPE_HEAD = """\
metadata:
  recipe_type: ptq
  description: test recipe
"""

# A recipe with two mistakes at known places: line 7 column 19 holds a bad number format
# ("e4m3x"), line 8 column 9 a misspelt key ("axiss" for "axis").
BAD_RECIPE = """\
metadata:
  recipe_type: ptq
quantize:
  quant_cfg:
    - quantizer_name: '*weight_quantizer'
      cfg:
        num_bits: e4m3x
        axiss: 0
"""

# The first four lines of BAD_RECIPE: a recipe whose quant_cfg entries follow.
QUANT_CFG_HEAD = BAD_RECIPE[: BAD_RECIPE.index("    - ")]

# An attribute snippet: FP8 E4M3, per tensor.
FP8_SNIPPET = """\
num_bits: e4m3
axis:
"""


def load_bench(name: str) -> ModuleType:
    """The benchmark script ``bench/<name>.py`` as a module, importable beside its shared
    modules (as when it runs as a script)."""
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module
