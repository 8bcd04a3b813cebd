"""qrecipe against ModelOpt 0.47, the reference implementation of the recipe language.

* Built-ins that share a name with a ModelOpt recipe resolve to the same ``quant_cfg`` and
  ``algorithm`` as ModelOpt's ``load_recipe`` of its own recipe.
* qrecipe pointed at ModelOpt's own recipe tree (``--path``) resolves every PTQ recipe in it,
  file or directory, to what ModelOpt loads.
* ModelOpt loads qrecipe's library as it is (its snippets carry ``# modelopt-schema:``) and gets
  what qrecipe resolves; qrecipe's snippets mean what ModelOpt's snippets of the same path mean;
  recipes of qrecipe's own equal ModelOpt's presets combined with its KV-cache units.
* ``mtq.quantize`` accepts the flat quantize section (block-size keys turned back into ints).

The whole module is skipped when ModelOpt cannot be imported. Importing it takes a while, so
it happens once, here.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

import qrecipe
from qrecipe.language.library import builtin_root

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    recipe_api = pytest.importorskip("modelopt.recipe", reason="nvidia-modelopt is not installed")
    mtq = pytest.importorskip("modelopt.torch.quantization")
    import modelopt_recipes
    import torch
    from torch import nn

pytestmark = pytest.mark.slow

MODELOPT_ROOT = Path(modelopt_recipes.__file__).resolve().parent
QRECIPE_ROOT = builtin_root()
RECIPE_TOPS = ("general", "huggingface", "models")
SUFFIXES = (".yaml", ".yml")
METADATA_FILES = tuple(f"{stem}{suffix}" for stem in ("metadata", "recipe") for suffix in SUFFIXES)


# --- normalising ModelOpt's objects to the flat form ---------------------------------------


def plain(value: Any) -> Any:
    """Pydantic models to dicts, tuples to lists, mapping keys (block-size axes) to strings."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def algorithm(value: Any) -> Any:
    value = plain(value)
    return {"method": value} if isinstance(value, str) else value


def from_modelopt(quantize: Any) -> dict[str, Any]:
    """The parts of a ModelOpt quantize config that the flat form has."""
    dumped = plain(quantize)
    return {"algorithm": algorithm(dumped["algorithm"]), "quant_cfg": dumped["quant_cfg"]}


def from_qrecipe(flat: dict[str, Any]) -> dict[str, Any]:
    quantize = flat["quantize"]
    return {"algorithm": quantize["algorithm"], "quant_cfg": quantize["quant_cfg"]}


def int_block_keys(value: Any) -> Any:
    """The flat quantize section as ModelOpt takes it: block-size axis keys back to ints."""
    if isinstance(value, list):
        return [int_block_keys(item) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "block_sizes" and isinstance(item, dict):
                item = {(int(k) if k.lstrip("-").isdigit() else k): v for k, v in item.items()}
            out[key] = int_block_keys(item)
        return out
    return value


def assert_same(got: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    assert got["algorithm"] == expected["algorithm"], f"{what}: algorithm differs"
    got_cfg, expected_cfg = got["quant_cfg"], expected["quant_cfg"]
    for index, (mine, theirs) in enumerate(zip(got_cfg, expected_cfg, strict=False)):
        assert mine == theirs, f"{what}: quant_cfg[{index}] differs"
    assert len(got_cfg) == len(expected_cfg), f"{what}: quant_cfg lengths differ"


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """ModelOpt looks import paths up in the working directory before its own library."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def modelopt_recipe(target: str | Path) -> dict[str, Any]:
    return from_modelopt(recipe_api.load_recipe(str(target)).quantize)


def modelopt_config(name: str | Path) -> Any:
    return plain(recipe_api.load_config(str(name)))


# --- finding recipes -----------------------------------------------------------------------


def _first_document(path: Path) -> Any:
    try:
        return next(iter(yaml.safe_load_all(path.read_text(encoding="utf-8"))), None)
    except yaml.YAMLError:
        return None


def _is_ptq_metadata(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    metadata = data.get("metadata", data)
    return isinstance(metadata, dict) and metadata.get("recipe_type") == "ptq"


def ptq_recipes(root: Path) -> list[str]:
    """Every PTQ recipe of a library tree: files, and directories holding a metadata file."""
    found = []
    for top in RECIPE_TOPS:
        for path in sorted((root / top).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and path.name not in METADATA_FILES:
                data = _first_document(path)
                if isinstance(data, dict) and "metadata" in data and _is_ptq_metadata(data):
                    found.append(path.relative_to(root).as_posix())
            elif path.is_dir():
                meta = [path / name for name in METADATA_FILES if (path / name).is_file()]
                if meta and _is_ptq_metadata(_first_document(meta[0])):
                    found.append(path.relative_to(root).as_posix())
    return found


def strip_suffix(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


MODELOPT_PTQ = ptq_recipes(MODELOPT_ROOT)
QRECIPE_BUILTINS = [info.name for info in qrecipe.list_recipes()]
SHARED_NAMES = sorted(set(QRECIPE_BUILTINS) & {strip_suffix(n) for n in MODELOPT_PTQ})


def test_the_modelopt_tree_was_found() -> None:
    assert len(MODELOPT_PTQ) >= 54
    assert "general/ptq/fp8_default-kv_fp8.yaml" in MODELOPT_PTQ
    assert len(SHARED_NAMES) >= 24


# --- (a) built-ins against ModelOpt's recipes of the same name -----------------------------


@pytest.mark.parametrize("name", SHARED_NAMES)
def test_builtin_equals_modelopt_recipe_of_the_same_name(name: str) -> None:
    assert_same(from_qrecipe(qrecipe.resolve(name)), modelopt_recipe(name), name)


# --- (b) ModelOpt's own tree through qrecipe -----------------------------------------------


@pytest.mark.parametrize("name", MODELOPT_PTQ)
def test_modelopt_tree_resolves_as_in_modelopt(name: str) -> None:
    target = MODELOPT_ROOT / name
    got = qrecipe.resolve(target, path=[MODELOPT_ROOT])
    assert got["metadata"]["recipe_type"] == "ptq"
    assert_same(from_qrecipe(got), modelopt_recipe(target), name)


GENERAL_PTQ = [n for n in MODELOPT_PTQ if n.startswith("general/ptq/")]


@pytest.mark.parametrize("layout", ["metadata", "recipe"])
@pytest.mark.parametrize("name", GENERAL_PTQ)
def test_modelopt_recipes_as_directories(tmp_path: Path, name: str, layout: str) -> None:
    """Each general recipe split into a directory recipe: 0.47's metadata.yaml (fields at the
    top) or the documented recipe.yaml (under ``metadata:``), plus quantize.yaml."""
    data = _first_document(MODELOPT_ROOT / name)
    directory = tmp_path / Path(name).stem
    directory.mkdir()
    metadata = data["metadata"] if layout == "metadata" else {"metadata": data["metadata"]}
    (directory / f"{layout}.yaml").write_text(yaml.safe_dump(metadata))
    quantize = data["quantize"]
    if data.get("imports"):
        quantize = {"imports": data["imports"], **quantize}
    (directory / "quantize.yaml").write_text(yaml.safe_dump(quantize, sort_keys=False))
    got = qrecipe.resolve(directory, path=[MODELOPT_ROOT])
    assert got["metadata"]["description"] == data["metadata"]["description"]
    expected = modelopt_recipe(MODELOPT_ROOT / name)
    assert_same(from_qrecipe(got), expected, f"{name} as a directory")
    if layout == "metadata":  # ModelOpt 0.47 reads only this layout
        assert_same(modelopt_recipe(directory), expected, f"{name} as a directory in ModelOpt")


# --- ModelOpt reading qrecipe's library ----------------------------------------------------


@pytest.mark.parametrize("name", QRECIPE_BUILTINS)
def test_modelopt_loads_the_builtin_library_as_qrecipe_resolves_it(name: str) -> None:
    file = QRECIPE_ROOT / f"{name}.yaml"
    with working_directory(QRECIPE_ROOT):
        expected = modelopt_recipe(file)
    assert_same(from_qrecipe(qrecipe.resolve(name)), expected, name)


def test_modelopt_really_reads_qrecipe_snippets() -> None:
    """A snippet only qrecipe has resolves, so the comparison above used qrecipe's files."""
    assert not (MODELOPT_ROOT / "configs/ptq/units/attention_qkvo_fp8.yaml").exists()
    with working_directory(QRECIPE_ROOT):
        entries = modelopt_config("configs/ptq/units/attention_qkvo_fp8")
    assert [e["quantizer_name"] for e in entries] == [
        "*[qkvo]_proj*weight_quantizer",
        "*[qkvo]_proj*input_quantizer",
    ]


SHARED_SNIPPETS = sorted(
    path.relative_to(QRECIPE_ROOT).as_posix()
    for path in (QRECIPE_ROOT / "configs").rglob("*.yaml")
    if (MODELOPT_ROOT / path.relative_to(QRECIPE_ROOT)).is_file()
)


def test_most_snippets_have_a_modelopt_counterpart() -> None:
    assert len(SHARED_SNIPPETS) >= 40


@pytest.mark.parametrize("name", SHARED_SNIPPETS)
def test_snippet_means_what_modelopt_snippet_of_the_same_path_means(
    tmp_path: Path, name: str
) -> None:
    with working_directory(QRECIPE_ROOT):
        mine = modelopt_config(QRECIPE_ROOT / name)
    with working_directory(tmp_path):
        theirs = modelopt_config(strip_suffix(name))
    assert mine == theirs


# --- recipes of qrecipe's own against ModelOpt's presets -----------------------------------


@cache
def default_disabled() -> list[dict[str, Any]]:
    return modelopt_config("configs/ptq/units/default_disabled_quantizers")


def preset_with_kv(preset: str, kv_unit: str | None, method: str | None) -> dict[str, Any]:
    """A ModelOpt model preset with KV-cache entries spliced in before the exclusions."""
    quantize = modelopt_config(f"configs/ptq/presets/model/{preset}")
    entries = quantize["quant_cfg"]
    tail = default_disabled()
    assert entries[-len(tail) :] == tail
    if kv_unit is not None:
        kv = modelopt_config(f"configs/ptq/units/{kv_unit}")
        entries = entries[: -len(tail)] + kv + tail
    result = {"algorithm": algorithm(quantize["algorithm"]), "quant_cfg": entries}
    if method is not None:
        result["algorithm"] = {"method": method}
    return result


PRESET_COUNTERPARTS = {
    "general/ptq/int8_per_channel-kv_fp8": ("int8", "kv_fp8", None),
    "general/ptq/int8_smoothquant-kv_fp8": ("int8_smoothquant", "kv_fp8", None),
    "general/ptq/w4a16_int4_awq": ("int4_awq", None, None),
    "general/ptq/w4a8_int4_awq-kv_fp8": ("w4a8_awq_beta", "kv_fp8", None),
    "general/ptq/fp8_per_channel-kv_fp8": ("fp8_per_channel_per_token", "kv_fp8", None),
    # The MX presets need no calibration; with a calibrated KV cache the recipes use max.
    "general/ptq/mxfp8-kv_fp8": ("mxfp8", "kv_fp8", "max"),
    "general/ptq/mxfp4-kv_fp8": ("mxfp4", "kv_fp8", "max"),
    "general/ptq/mxint8": ("mxint8", None, None),
    "general/ptq/nvfp4_default-kv_nvfp4": ("nvfp4", "kv_nvfp4", None),
}


@pytest.mark.parametrize("name", sorted(PRESET_COUNTERPARTS))
def test_own_recipe_equals_modelopt_preset_with_kv(name: str) -> None:
    expected = preset_with_kv(*PRESET_COUNTERPARTS[name])
    assert_same(from_qrecipe(qrecipe.resolve(name)), expected, name)


def test_fp8_qkvo_nvfp4_mlp_from_modelopt_building_blocks() -> None:
    """The recipe of ModelOpt PR 1213 in list form, deny-all first, from ModelOpt's snippets."""
    fp8 = recipe_api.load_config("configs/numerics/fp8")
    nvfp4 = recipe_api.load_config("configs/numerics/nvfp4")

    def entry(pattern: str, cfg: Any) -> dict[str, Any]:
        attributes = plain(mtq.config.QuantizerAttributeConfig.model_validate(cfg))
        return {"quantizer_name": pattern, "parent_class": None, "cfg": attributes, "enable": True}

    entries = [plain(modelopt_config("configs/ptq/units/base_disable_all"))]
    entries += [entry("*mlp*weight_quantizer", nvfp4), entry("*mlp*input_quantizer", nvfp4)]
    entries += modelopt_config("configs/ptq/units/block_sparse_moe_nvfp4")
    entries += [
        entry("*[qkvo]_proj*weight_quantizer", fp8),
        entry("*[qkvo]_proj*input_quantizer", fp8),
    ]
    entries += default_disabled()
    got = from_qrecipe(qrecipe.resolve("general/ptq/fp8_qkvo-nvfp4_mlp"))
    assert_same(got, {"algorithm": {"method": "max"}, "quant_cfg": entries}, "fp8_qkvo-nvfp4_mlp")


# --- (c) mtq.quantize takes the flat quantize section --------------------------------------


@pytest.mark.parametrize("name", QRECIPE_BUILTINS)
def test_quantize_config_accepts_the_flat_section(name: str) -> None:
    """ModelOpt's own QuantizeConfig validates every flat section and keeps it unchanged."""
    flat = qrecipe.resolve(name)
    validated = mtq.config.QuantizeConfig(**int_block_keys(flat["quantize"]))
    assert_same(from_modelopt(validated), from_qrecipe(flat), name)


class TinyDecoder(nn.Module):
    """Linears named like a decoder layer's, run in a chain: attention projections, an MLP
    (an ``nn.Sequential``) and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(128, 128) for _ in range(4))
        self.mlp = nn.Sequential(
            OrderedDict(up_proj=nn.Linear(128, 256), act=nn.ReLU(), down_proj=nn.Linear(256, 128))
        )
        self.lm_head = nn.Linear(128, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in (self.q_proj, self.k_proj, self.v_proj, self.o_proj, self.mlp):
            x = layer(x)
        return self.lm_head(x)


def expected_enabled(flat: dict[str, Any], quantizers: list[str]) -> set[str]:
    """The quantizers the flat entries leave on (last matching entry wins)."""
    import fnmatch

    enabled = set()
    for quantizer in quantizers:
        state = True
        for entry in flat["quantize"]["quant_cfg"]:
            if entry["parent_class"] in (None, "nn.Linear") and fnmatch.fnmatchcase(
                quantizer, entry["quantizer_name"]
            ):
                state = entry["enable"]
        if state:
            enabled.add(quantizer)
    return enabled


# Formats that ModelOpt 0.47 fake-quantizes on the CPU; NVFP4 and MX need CUDA.
CPU_RECIPES = [
    "general/ptq/fp8_default-kv_fp8",
    "general/ptq/fp8_default-kv_fp8_cast",
    "general/ptq/fp8_per_channel-kv_fp8",
    "general/ptq/int4_blockwise_weight_only",
    "general/ptq/int8_per_channel-kv_fp8",
    "general/ptq/int8_smoothquant-kv_fp8",
    "general/ptq/w4a16_int4_awq",
    "general/ptq/w4a8_int4_awq-kv_fp8",
    "huggingface/bert/ptq/fp8_default",
]
CUDA_RECIPES = [
    "general/ptq/fp8_qkvo-nvfp4_mlp",
    "general/ptq/nvfp4_default-kv_fp8",
    "general/ptq/nvfp4_default-kv_nvfp4",
    "general/ptq/nvfp4_mlp_only-kv_fp8",
    "general/ptq/mxfp8-kv_fp8",
    "general/ptq/mxfp4-kv_fp8",
    "general/ptq/mxint8",
]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="NVFP4 and MX need CUDA")


@pytest.mark.parametrize(
    "name",
    [*CPU_RECIPES, *(pytest.param(n, marks=needs_cuda) for n in CUDA_RECIPES)],
)
def test_mtq_quantize_accepts_the_flat_section(name: str) -> None:
    device = "cuda" if name in CUDA_RECIPES else "cpu"
    torch.manual_seed(0)
    model = TinyDecoder().to(device).eval()
    batch = torch.randn(16, 128, device=device)
    with torch.no_grad():
        reference = model(batch)
    flat = qrecipe.resolve(name)
    section = int_block_keys(flat["quantize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mtq.quantize(model, copy.deepcopy(section), forward_loop=lambda m: m(batch))
    quantizers = {
        qname: module
        for qname, module in model.named_modules()
        if qname.endswith(("weight_quantizer", "input_quantizer"))
    }
    on = {qname for qname, module in quantizers.items() if module.is_enabled}
    assert on == expected_enabled(flat, sorted(quantizers))
    assert on, "the recipe should quantize some of the tiny model"
    assert "lm_head.weight_quantizer" not in on
    with torch.no_grad():
        output = model(batch)
    assert torch.isfinite(output).all()
    assert not torch.equal(output, reference)
