"""Generated recipe trees: files on disk for the differential fuzzer.

A case is a small project directory: a recipe (a file, a file without suffix, or a directory
recipe), snippets of every kind importing each other (sometimes in a cycle, sometimes missing),
an extra search root, built-in snippets, a flat JSON file; each file written in a YAML style
drawn at random (block or flow, every scalar style, comments, anchors, tags, CRLF, a byte order
mark), then perhaps mutated a few characters at a time, plus now and then a file-system oddity
(symbolic links, loops, FIFOs, directories named like files, very long names, huge files).
Hypothesis draws the recipe's structure, so a failing case shrinks to a small one.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

import qrecipe
from qrecipe.schema import attribute_defaults, schema_id

# ---------------------------------------------------------------------------- the case


@dataclass
class Case:
    """Everything one fuzz case writes and runs."""

    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    fifos: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    sparse: dict[str, int] = field(default_factory=dict)
    target: str = "recipe.yaml"
    path: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"target={self.target!r} path={self.path!r}"]
        for name, data in sorted(self.files.items()):
            parts.append(f"--- {name} ({len(data)} bytes)\n{data[:2000]!r}")
        for name, target in sorted(self.links.items()):
            parts.append(f"--- {name} -> {target}")
        parts += [f"--- {name} (fifo)" for name in self.fifos]
        parts += [f"--- {name}/ (directory)" for name in self.directories]
        parts += [f"--- {name} (sparse, {size} bytes)" for name, size in self.sparse.items()]
        return "\n".join(parts)


# ---------------------------------------------------------------------------- values

QUANTIZER_NAMES = [
    "*",
    "*weight_quantizer",
    "*input_quantizer",
    "*output_quantizer",
    "*lm_head*",
    "*mlp*",
    "*[kv]_bmm_quantizer",
    "*self_attn.q_proj*",
    "model.layers.?.mlp*",
    "*router*",
    "weight quantizer",
    "*weight\u00e9*",
    "*\U0001f600*",
    "",
    "*weight_quantizer\n",
]
PARENT_CLASSES = ["nn.Linear", "nn.Conv2d", "nn.BatchNorm1d", "Linear", "*"]
METHODS = ["max", "mse", "smoothquant", "awq_lite", "awq_clip", "gptq", "svdquant", "lsq", "fancy"]
METHOD_OPTIONS = {
    "max": {"distributed_sync": [True, False], "shared_states": [True]},
    "mse": {"step_size": [0.1, 0.25], "fp8_scale_sweep": [True, False]},
    "smoothquant": {"alpha": [0.5, 1.0, 1.5, "half"]},
    "awq_lite": {"alpha_step": [0.1, 0.05, 2]},
    "awq_clip": {"max_co_batch_size": [1024, -1], "shrink_step": [0.05]},
    "gptq": {"perc_damp": [0.01, 0.1], "block_size": [128, 64], "fused": [True]},
    "svdquant": {"lowrank": [32, 0]},
    "lsq": {"learnable_amax": [["pre"], True]},
    "fancy": {"zeal": [1]},
}
TEXT_PIECES = [
    "FP8 weights",
    "yes",
    "no",
    "on",
    "Off",
    "null",
    "~",
    "0x1F",
    "010",
    "1_000",
    "1e-5",
    "1.0e-5",
    "2024-01-01",
    "=",
    "<<",
    "a: b",
    "x #y",
    "#",
    "-",
    "- x",
    "?",
    "'",
    '"',
    "\\",
    "\t",
    "\n",
    "\r",
    "\x85",
    "\u2028",
    "\x07",
    "\x7f",
    "\u00e9",
    "e\u0301",
    "\ufb01",
    "\U0001f600",
    "\u00a0",
    "\ufeff",
    " ",
    "",
    "*",
    "&",
    "!",
    "%",
    "@",
    "`",
    "[a, b]",
    "{a: 1}",
    "|",
    ">",
]
ATTRIBUTE_VALUES: dict[str, list[Any]] = {
    "num_bits": [8, 4, "e4m3", "e5m2", "E2M1", [4, 3], [2, 1], 16, 8.0],
    "axis": [None, 0, -1, [0, 1]],
    "block_sizes": [
        None,
        {-1: 16, "type": "dynamic", "scale_bits": "e4m3"},
        {-1: 128},
        {"-1": 32, "type": "static"},
        {-1: 16, "scale_bits": [4, 3], "type": "dynamic"},
    ],
    "unsigned": [True, False],
    "narrow_range": [True, False],
    "fake_quant": [True, False],
    "type": ["static", "dynamic"],
    "bias": [None, {"type": "static", "method": "mean", -1: None}],
    "calibrator": ["max", "histogram"],
    "rotate": [True, False, {"enable": True}],
    "pass_through_bwd": [True, False],
    "trt_high_precision_dtype": ["Float", "Half", "BFloat16"],
    "backend": [None, "custom"],
    "backend_extra_args": [None, {"tile": 64}, {"tiny": 5e-324}, {"x": [1, 2.5]}, {"big": 1e21}],
    "use_constant_amax": [True, False],
    "constant_amax": [None, 448.0, 6.0, 1e-7],
    "learn_amax": [True, False],
    "effective_bits": [None, 4.5, 8],
    "enable": [True, False],
}
# Values each attribute must refuse (or that only some readers would accept).
INVALID_VALUES: dict[str, list[Any]] = {
    "num_bits": [0, "8", "e4x3", [4], 8.5],
    "axis": ["0", 1.5],
    "block_sizes": [{-1: 16, 1: 16, "type": "dynamic"}, {-1: 16, "-1": 32}, {"type": "dynamic"}],
    "unsigned": ["yes", 1],
    "type": ["fancy"],
    "calibrator": ["mean"],
    "rotate": [{"enable": True, "mode": "fancy"}],
    "backend": [3],
    "backend_extra_args": [{"big": 2**53}, []],
    "constant_amax": [-1.0, 0],
    "effective_bits": [17, 0],
}
TOP_ATTRIBUTES = sorted(ATTRIBUTE_VALUES)


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(TEXT_PIECES) for _ in range(rng.randint(1, 3)))


# ---------------------------------------------------------------------------- the model


@dataclass
class Snippet:
    """A snippet file: its path (without suffix), kind, and the names it imports."""

    path: str
    kind: str
    imports: dict[str, str] = field(default_factory=dict)
    body: Any = None


SNIPPET_PATHS = [
    "snippets/fp8",
    "snippets/w4",
    "snippets/excl",
    "units/entries",
    "units/algo",
    "snippets/deep/nested",
]
BUILTIN_SNIPPETS = {
    "configs/numerics/fp8": "attributes",
    "configs/numerics/nvfp4": "attributes",
    "configs/ptq/units/base_disable_all": "entry_list",
    "configs/ptq/units/default_disabled_quantizers": "entry_list",
}
ODD_IMPORT_PATHS = [
    "../outside",
    "/etc/passwd",
    "C:/recipes/fp8",
    "snippets\\fp8",
    "snippets/missing",
    "snippets/" + "a" * 300,
    "snippets/" + "b" * 120 + "/" + "c" * 120,
    "snippets/link",
    "snippets/loop",
    "snippets/pipe",
    "snippets/dir",
    "snippets/big",
    "snippets/empty",
    "",
    "snippets/fp8.yml",
    "snippets/fp8.yaml",
    "snippets/./fp8",
    "snippets//fp8",
    "snippets/fp8 ",
    "snippets/\u00e9",
]


def _attributes(rng: random.Random, size: int) -> dict[Any, Any]:
    names = rng.sample(TOP_ATTRIBUTES, min(size, len(TOP_ATTRIBUTES)))
    cfg: dict[Any, Any] = {}
    for name in names:
        invalid = INVALID_VALUES.get(name)
        cfg[name] = rng.choice(
            invalid if invalid and rng.random() < 0.03 else ATTRIBUTE_VALUES[name]
        )
    if rng.random() < 0.05:
        cfg["unknwn"] = 1
    if rng.random() < 0.05:
        cfg[_text(rng)] = _text(rng)
    return cfg


def _entry(rng: random.Random, names: list[str], attribute_imports: list[str]) -> dict[Any, Any]:
    entry: dict[Any, Any] = {}
    if rng.random() < 0.95:
        entry["quantizer_name"] = rng.choice(QUANTIZER_NAMES) if rng.random() < 0.97 else _text(rng)
    if rng.random() < 0.2:
        entry["parent_class"] = rng.choice(PARENT_CLASSES)
    roll = rng.random()
    if roll < 0.35:
        entry["enable"] = rng.choice([True, False, True, "yes", 1])
    if roll > 0.25:
        if rng.random() < 0.1:
            entry["cfg"] = [_attributes(rng, rng.randint(0, 3)) for _ in range(rng.randint(1, 2))]
        else:
            cfg = _attributes(rng, rng.randint(0, 4))
            if attribute_imports and rng.random() < 0.5:
                chosen = rng.sample(
                    attribute_imports, min(len(attribute_imports), rng.randint(1, 2))
                )
                cfg["$import"] = chosen[0] if len(chosen) == 1 and rng.random() < 0.6 else chosen
            entry["cfg"] = cfg if rng.random() < 0.97 else {}
    if rng.random() < 0.03:
        entry["extra"] = 1
    return entry


def _algorithm(rng: random.Random, algorithm_imports: list[str]) -> Any:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(METHODS)
    if roll < 0.35:
        return None
    algorithm: dict[str, Any] = {}
    if algorithm_imports and rng.random() < 0.3:
        algorithm["$import"] = rng.choice(algorithm_imports)
    if rng.random() < 0.9:
        algorithm["method"] = rng.choice(METHODS)
    options = METHOD_OPTIONS.get(algorithm.get("method", "max"), {})
    for option, values in options.items():
        if rng.random() < 0.5:
            algorithm[option] = rng.choice(values)
    if rng.random() < 0.1:
        algorithm["layerwise"] = rng.choice([True, {"enable": True}])
    return algorithm


@st.composite
def models(draw: st.DrawFn) -> dict[str, Any]:
    """The structure of a case: snippets, the recipe and how it is laid out."""
    rng = draw(st.randoms(use_true_random=True))
    count = draw(st.integers(0, 4))
    paths = draw(st.permutations(SNIPPET_PATHS))[:count]
    kinds = ["attributes", "entry", "entry_list", "algorithm"]
    snippets = [Snippet(path, draw(st.sampled_from(kinds))) for path in paths]
    in_lib = draw(st.booleans())
    if in_lib:
        snippets.append(Snippet("lib:numerics/e4m3", "attributes"))
    model: dict[str, Any] = {"rng": rng, "snippets": snippets, "in_lib": in_lib}
    model["builtin"] = draw(st.lists(st.sampled_from(sorted(BUILTIN_SNIPPETS)), max_size=2))
    model["odd_import"] = draw(st.sampled_from(ODD_IMPORT_PATHS)) if rng.random() < 0.15 else None
    model["layout"] = draw(
        st.sampled_from(["file", "file", "file", "yml", "noext", "dir", "snippet", "flat"])
    )
    model["entries"] = draw(st.integers(0, 5))
    model["style"] = draw(st.randoms(use_true_random=True))
    model["mutations"] = draw(st.integers(1, 3)) if draw(st.integers(0, 9)) < 2 else 0
    model["oddity"] = draw(st.integers(0, 72))
    return model


def _import_names(rng: random.Random, available: dict[str, str]) -> dict[str, str]:
    """Local import names for a file: some of the available snippets, maybe misnamed."""
    chosen = {}
    for path in available:
        if rng.random() < 0.6:
            name = re.sub(r"[^a-z0-9]", "_", path.rsplit("/", 1)[-1].lower()) or "x"
            if name in chosen:
                name += str(len(chosen))
            chosen[name] = path
    return chosen


def build_case(model: dict[str, Any]) -> Case:
    """The files of a case from its model."""
    rng: random.Random = model["rng"]
    case = Case()
    style = Style(model["style"])
    snippets: list[Snippet] = model["snippets"]
    kinds = {s.path: s.kind for s in snippets}
    kinds.update({name: BUILTIN_SNIPPETS[name] for name in model["builtin"]})
    if model["odd_import"] is not None:
        kinds[model["odd_import"]] = rng.choice(["attributes", "entry_list"])

    def importable(for_path: str | None) -> dict[str, str]:
        # A snippet imports those after it (sometimes any: a cycle), the recipe imports all.
        order = [s.path for s in snippets]
        result = {}
        for path, kind in kinds.items():
            if path == for_path and rng.random() > 0.05:
                continue
            earlier = for_path in order and path in order
            if earlier and order.index(path) <= order.index(for_path) and rng.random() > 0.1:
                continue
            visible = path.split(":", 1)[-1] if path.startswith("lib:") else path
            result[visible] = kind
        return result

    def names_of_kind(imports: dict[str, str], *wanted: str) -> list[str]:
        return [name for name, path in imports.items() if kinds.get(path) in wanted]

    for snippet in snippets:
        imports = _import_names(rng, importable(snippet.path))
        attribute_names = names_of_kind(imports, "attributes")
        if snippet.kind == "attributes":
            body: Any = _attributes(rng, rng.randint(1, 4))
            if attribute_names and rng.random() < 0.4:
                body["$import"] = rng.choice(attribute_names)
            documents = [{"imports": imports, **body} if imports else body]
        elif snippet.kind == "entry":
            body = _entry(rng, [], attribute_names)
            documents = [{"imports": imports, **body} if imports else body]
        elif snippet.kind == "algorithm":
            body = _algorithm(rng, names_of_kind(imports, "algorithm"))
            if not isinstance(body, dict):
                body = {"method": body}
            documents = [{"imports": imports, **body} if imports else body]
        else:
            entries = [_entry(rng, [], attribute_names) for _ in range(rng.randint(0, 3))]
            for name in names_of_kind(imports, "entry", "entry_list"):
                if rng.random() < 0.5:
                    entries.insert(rng.randint(0, len(entries)), {"$import": name})
            documents = (
                [{"imports": imports}, entries] if imports or rng.random() < 0.7 else [entries]
            )
        file = snippet.path.replace("lib:", "lib/")
        case.files[file + rng.choice([".yaml", ".yaml", ".yml"])] = style.file(documents)

    imports = _import_names(rng, importable(None))
    attribute_names = names_of_kind(imports, "attributes")
    entries: list[Any] = []
    if rng.random() < 0.8:
        entries.append({"quantizer_name": "*", "enable": False})
    for _ in range(model["entries"]):
        entries.append(_entry(rng, [], attribute_names))
    for name in names_of_kind(imports, "entry", "entry_list"):
        if rng.random() < 0.7:
            entries.insert(rng.randint(0, len(entries)), {"$import": name})
    if rng.random() < 0.05:
        entries.append({"$import": "undeclared"})
    if rng.random() < 0.03:
        entries.append(rng.choice([7, "x", None, [1]]))
    quantize: dict[str, Any] = {}
    algorithm = _algorithm(rng, names_of_kind(imports, "algorithm"))
    if algorithm is not None or rng.random() < 0.1:
        quantize["algorithm"] = algorithm
    if rng.random() < 0.97:
        quantize["quant_cfg"] = entries
    if rng.random() < 0.05:
        quantize["effective_bits"] = rng.choice([4.5, 8, "x"])
    metadata: dict[str, Any] = {"recipe_type": "ptq" if rng.random() < 0.95 else "qat"}
    if rng.random() < 0.7:
        metadata["description"] = _text(rng) if rng.random() < 0.5 else "A test recipe."
    recipe: dict[str, Any] = {}
    if imports:
        recipe["imports"] = imports
    if rng.random() < 0.97:
        recipe["metadata"] = metadata
    recipe["quantize"] = quantize
    if rng.random() < 0.03:
        recipe["extra"] = True

    layout = model["layout"]
    if layout == "dir":
        head = {key: value for key, value in recipe.items() if key != "quantize"}
        case.files["dirrec/recipe.yml"] = style.file([head])
        case.files["dirrec/quantize.yml"] = style.file([quantize])
        case.target = "dirrec"
    elif layout == "snippet" and snippets:
        snippet = snippets[0]
        name = next(f for f in case.files if f.startswith(snippet.path.replace("lib:", "lib/")))
        case.target = name
        case.files["recipe.yaml"] = style.file([recipe])
    elif layout == "flat":
        case.files["recipe.yaml"] = style.file([recipe])
        case.target = rng.choice(["recipe.flat.json", "flat.json"])
        case.files[case.target] = _flat_document(rng, entries)
    else:
        suffix = ".yml" if layout == "yml" else ".yaml"
        case.files["recipe" + suffix] = style.file([recipe])
        case.target = {"noext": "recipe", "yml": "recipe.yml"}.get(layout, "recipe.yaml")
    if model["in_lib"]:
        case.path = ["lib"]
    for _ in range(model["mutations"]):
        name = rng.choice(sorted(case.files))
        case.files[name] = mutate(case.files[name], rng)
    _oddity(case, model["oddity"], rng)
    return case


def _flat_document(rng: random.Random, entries: list[Any]) -> bytes:
    """A flat recipe: mostly valid, its fingerprint mostly right, written as JSON."""
    flat_entries = []
    for entry in entries:
        if not isinstance(entry, dict) or "$import" in entry:
            continue
        cfg = entry.get("cfg")
        if isinstance(cfg, dict):
            cfg = {**attribute_defaults(), **{str(k): v for k, v in cfg.items() if k != "$import"}}
        flat_entries.append(
            {
                "quantizer_name": entry.get("quantizer_name"),
                "parent_class": entry.get("parent_class"),
                "enable": entry.get("enable", cfg is not None),
                "cfg": cfg if isinstance(cfg, dict) else None,
            }
        )
    flat: dict[str, Any] = {
        "$schema": schema_id("flat"),
        "metadata": {"recipe_type": "ptq", "description": _text(rng)},
        "quantize": {
            "algorithm": {"method": rng.choice(METHODS)},
            "quant_cfg": flat_entries,
            "effective_bits": rng.choice([None, 4.5, 1e-7, 16]),
        },
    }
    flat = _string_keys(flat)
    wrong = "sha256:" + "0" * 64
    try:
        flat["fingerprint"] = qrecipe.fingerprint(flat) if rng.random() < 0.8 else wrong
    except ValueError:  # values no flat recipe may hold (integers beyond 2^53)
        flat["fingerprint"] = wrong
    roll = rng.random()
    try:
        if roll < 0.6:
            text = qrecipe.pretty_json(flat)
        elif roll < 0.8:
            text = qrecipe.canonical_bytes(flat).decode()
        else:
            raise ValueError  # written by the json module instead
    except ValueError:  # the canonical forms refuse what no flat recipe may hold
        text = json.dumps(flat, indent=rng.choice([None, 1, 4]), ensure_ascii=rng.random() < 0.5)
    return text.encode("utf-8", "surrogatepass")


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _oddity(case: Case, roll: int, rng: random.Random) -> None:
    """Now and then, something unusual in the file system."""
    if roll == 0:
        case.links["snippets/link.yaml"] = "fp8.yaml"
    elif roll == 1:
        case.links["snippets/link.yaml"] = "../../outside.yaml"
        case.files["../outside.yaml"] = b"num_bits: 8\n"
    elif roll == 2:
        case.links["snippets/loop.yaml"] = "loop.yaml"
    elif roll == 3:
        case.fifos.append("snippets/pipe.yaml")
    elif roll == 4:
        case.directories.append("snippets/dir.yaml")
    elif roll == 5:
        case.sparse["snippets/big.yaml"] = 4 << 30
    elif roll == 6:
        case.files["snippets/big.yaml"] = b"num_bits: 8\n" + b"#" * (1 << 20)
    elif roll == 7:
        case.files["snippets/empty.yaml"] = b""
    elif roll == 8:
        case.target = "recipe" + "x" * rng.choice([200, 300])
    elif roll == 9:
        # Not "/" (validate walks a directory target: the whole file system is no case), nor
        # "-" (standard input, which the fuzzer's drivers use to talk).
        case.target = rng.choice(["", ".", "..", "./", "general/ptq/fp8_default-kv_fp8"])
    elif roll == 10:
        case.path = rng.choice([["missing"], ["recipe.yaml"], ["lib", "lib"], ["."]])
    elif roll == 11:
        case.links["recipe.yaml"] = "recipe.yaml"
        case.files.pop("recipe.yaml", None)
    elif roll == 12:
        case.files["../outside/recipe.yaml"] = case.files.get("recipe.yaml", b"a: 1\n")
        case.target = "../outside/recipe.yaml"
    elif roll in (13, 14, 15, 16):
        _amplification(case, roll, rng)
    elif roll == 17:  # a checkpoint directory: its flat recipe is the target
        flat = next((name for name in case.files if name.endswith(".json")), None)
        data = case.files.pop(flat) if flat else b'{"$schema": 1}\n'
        case.files["ckpt/recipe.flat.json"] = data
        case.target = rng.choice(["ckpt", "ckpt/", "./ckpt"])


_RECIPE_HEAD = "metadata:\n  recipe_type: ptq\nquantize:\n  quant_cfg:\n"


def _amplification(case: Case, roll: int, rng: random.Random) -> None:
    """A recipe that asks for more work than the limits allow (or just less)."""
    if roll == 13:  # one list snippet imported again and again: too many values
        entries = rng.choice([1500, 2000])
        case.files["snippets/many.yaml"] = (
            "imports: {}\n---\n" + "- {quantizer_name: '*', enable: false}\n" * entries
        ).encode()
        times = rng.choice([10, 40])
        text = "imports:\n  many: snippets/many\n" + _RECIPE_HEAD + "    - $import: many\n" * times
    elif roll == 14:  # long strings imported again and again: too much text
        case.files["snippets/long.yaml"] = (
            "imports: {}\n---\n- quantizer_name: '" + "x" * 200_000 + "'\n  enable: false\n"
        ).encode()
        times = rng.choice([15, 25])
        text = "imports:\n  long: snippets/long\n" + _RECIPE_HEAD + "    - $import: long\n" * times
    elif roll == 15:  # nesting, block or flow
        depth = rng.choice([63, 64, 65, 300, 5000])
        inner = "- " * depth + "x" if rng.random() < 0.5 else "[" * depth + "]" * depth
        text = _RECIPE_HEAD + "    - quantizer_name: '*'\n      cfg:\n        backend_extra_args:\n"
        text += (
            "          deep: " + ("\n" + " " * 12 if inner.startswith("-") else "") + inner + "\n"
        )
    else:  # more imports than allowed
        times = rng.choice([999, 1001])
        case.files["snippets/one.yaml"] = b"quantizer_name: '*'\nenable: false\n"
        text = "imports:\n  one: snippets/one\n" + _RECIPE_HEAD + "    - $import: one\n" * times
    case.files["recipe.yaml"] = text.encode()
    case.target = "recipe.yaml"
    case.path = []


# ---------------------------------------------------------------------------- rendering

_PLAIN_SAFE = re.compile(r"[A-Za-z_/][A-Za-z0-9_.*/()\- ]*")
_YAML11_SPECIAL = re.compile(
    r"(?i:yes|no|true|false|on|off|null|~|y|n)"
    r"|[-+]?[0-9._:]+([eE][-+]?[0-9]+)?|[-+]?\.(?i:inf|nan)|<<|="
)


class Style:
    """How one case writes YAML: drawn once, applied to every file."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.indent = rng.choice([2, 2, 2, 4, 3, 1])
        self.flow = rng.choice([0.0, 0.1, 0.3, 0.9])
        self.quote = rng.choice(["'", '"', "", ""])
        self.risky = rng.choice([0.0, 0.0, 0.0, 0.05, 0.3])
        self.comments = rng.choice([0.0, 0.0, 0.1, 0.3])
        self.indentless = rng.random() < 0.3
        self.crlf = rng.random() < 0.1
        self.bom = rng.random() < 0.05
        self.anchors = rng.random() < 0.15
        self.tags = rng.choice([0.0, 0.0, 0.0, 0.05])
        self.block_scalars = rng.random() < 0.3
        self.explicit_start = rng.random() < 0.2
        self.wrap = rng.choice([0.0, 0.0, 0.2])
        self.seen: dict[str, str] = {}

    # scalars
    def scalar(self, value: Any, context: str) -> str:
        rng = self.rng
        text = self._scalar(value, context)
        if self.tags and rng.random() < self.tags and context != "key":
            tag = {bool: "!!bool", int: "!!int", float: "!!float", str: "!!str"}.get(type(value))
            if value is None:
                tag = "!!null"
            text = (
                f"{tag or '!!str' if rng.random() < 0.8 else rng.choice(['!foo', '!!int'])} {text}"
            )
        return text

    def _scalar(self, value: Any, context: str) -> str:
        rng = self.rng
        if value is None:
            return rng.choice(["null", "~", "Null", "null"]) if context != "flow-empty" else ""
        if value is True:
            return rng.choice(["true", "True", "yes", "on", "TRUE"]) if self.risky else "true"
        if value is False:
            return rng.choice(["false", "no", "Off"]) if self.risky else "false"
        if isinstance(value, int):
            if self.risky and rng.random() < self.risky and 0 <= value < 4096:
                return rng.choice([hex(value), f"0{value:o}", f"{value:,}".replace(",", "_")])
            return str(value)
        if isinstance(value, float):
            if math.isinf(value) or math.isnan(value):
                return ".inf"
            text = repr(value)
            if self.risky and rng.random() < self.risky:
                return rng.choice([text, f"{value:e}", f"{value:.3E}"])
            if "e" in text and "." not in text:
                mantissa, exponent = text.split("e")
                text = f"{mantissa}.0e{exponent}"
            return text
        return self.string(str(value), context)

    def string(self, text: str, context: str) -> str:
        written = self._string(text, context)
        if context == "block" and " " in written and self.rng.random() < self.wrap:
            # Continued on the next line (indented by the caller): YAML folds it back.
            space = self.rng.choice([i for i, c in enumerate(written) if c == " "])
            written = written[:space] + "\n" + written[space + 1 :]
        return written

    def _string(self, text: str, context: str) -> str:
        rng = self.rng
        plain_ok = bool(_PLAIN_SAFE.fullmatch(text)) and not _YAML11_SPECIAL.fullmatch(text)
        if context == "flow" and any(c in text for c in ",[]{}#"):
            plain_ok = False
        if plain_ok and not text.endswith(" ") and self.quote == "":
            return text
        if self.risky and rng.random() < self.risky and "\n" not in text and context != "key":
            return text  # written plain anyway: both readers must agree on what it means
        if (
            self.block_scalars
            and context == "block"
            and "\n" in text.rstrip("\n")
            and rng.random() < 0.7
        ):
            return self.block_scalar(text)
        if self.quote == "'" and all(c >= " " and c not in "\x7f\x85\u2028\u2029" for c in text):
            return "'" + text.replace("'", "''") + "'"
        return self.double_quoted(text)

    def double_quoted(self, text: str) -> str:
        rng = self.rng
        out = []
        for ch in text:
            code = ord(ch)
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append(rng.choice(["\\t", "\t"]))
            elif code < 0x20 or 0x7F <= code <= 0x9F or ch in "\u2028\u2029\ufeff":
                out.append(
                    rng.choice([f"\\x{code:02x}", f"\\u{code:04X}"])
                    if code < 0x100
                    else f"\\u{code:04x}"
                )
            elif code > 0xFFFF and rng.random() < 0.3:
                out.append(f"\\U{code:08X}")
            elif code > 0x7F and rng.random() < 0.2:
                out.append(f"\\u{code:04x}" if code <= 0xFFFF else ch)
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'

    def block_scalar(self, text: str) -> str:
        body = text.rstrip("\n")
        trailing = len(text) - len(body)
        chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
        style = self.rng.choice(["|", ">"])
        return f"{style}{chomp}\n" + "\n".join(body.split("\n")) + "\n" * (max(trailing - 1, 0))

    # collections
    def flow_value(self, value: Any) -> str:
        if isinstance(value, dict):
            items = [f"{self.key(k, flow=True)}: {self.flow_value(v)}" for k, v in value.items()]
            return "{" + ", ".join(items) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self.flow_value(v) for v in value) + "]"
        return self.scalar(value, "flow")

    def key(self, key: Any, *, flow: bool = False) -> str:
        if isinstance(key, int):
            return str(key) if self.rng.random() < 0.9 else f"'{key}'"
        text = self.scalar(key, "key")
        return text if not flow or not any(c in text for c in ",[]{}") else self.double_quoted(key)

    def block(self, value: Any, lines: list[str], prefix: str, column: int) -> None:
        """Append ``value`` in block style. ``prefix`` starts its first line ("key:" or "- ",
        indented); ``column`` is where that key or dash is."""
        rng = self.rng
        anchor = ""
        if isinstance(value, (dict, list)) and value and self.anchors:
            canonical = repr(value)
            if canonical in self.seen and rng.random() < 0.5:
                lines.append(_join(prefix, "*" + self.seen[canonical]))
                return
            if rng.random() < 0.2:
                self.seen[canonical] = f"a{len(self.seen)}"
                anchor = "&" + self.seen[canonical]
        if not isinstance(value, (dict, list)) or not value or rng.random() < self.flow:
            if isinstance(value, (dict, list)):
                text = self.flow_value(value)
            else:
                text = self.scalar(value, "block")
            head, *rest = text.split("\n")
            lines.append(_join(prefix, " ".join(part for part in (anchor, head) if part)))
            inner = " " * (column + self.indent)
            lines.extend(inner + line if line else "" for line in rest)
            if not rest and self.comments and rng.random() < self.comments:
                lines[-1] += " # note"
            return
        child = column + self.indent
        if isinstance(value, dict):
            items = list(value.items())
            if prefix.endswith("- ") and not anchor and rng.random() < 0.7:
                # compact: the first key on the line of the dash, the others under it
                key, item = items[0]
                self.block(item, lines, prefix + self.key(key) + ":", column + 2)
                items, child = items[1:], column + 2
            elif prefix or anchor:
                lines.append(_join(prefix, anchor) if prefix else anchor)
            for key, item in items:
                if self.comments and rng.random() < self.comments:
                    lines.append(" " * child + "# comment")
                self.block(item, lines, " " * child + self.key(key) + ":", child)
            return
        if prefix or anchor:
            lines.append(_join(prefix, anchor) if prefix else anchor)
        if self.indentless and prefix.endswith(":") and not anchor:
            child = column
        for item in value:
            self.block(item, lines, " " * child + "- ", child)

    def document(self, value: Any) -> str:
        lines: list[str] = []
        if isinstance(value, (dict, list)) and value:
            self.block(value, lines, "", -self.indent)
        else:
            lines.append(
                self.flow_value(value)
                if isinstance(value, (dict, list))
                else self.scalar(value, "block")
            )
        return "\n".join(lines) + "\n"

    def file(self, documents: list[Any]) -> bytes:
        self.seen = {}  # anchors belong to one file
        parts = []
        for index, document in enumerate(documents):
            if index or self.explicit_start:
                parts.append("---\n")
            parts.append(self.document(document))
        text = "".join(parts)
        if self.crlf:
            text = text.replace("\n", "\r\n")
        data = text.encode("utf-8", "surrogatepass")
        return b"\xef\xbb\xbf" + data if self.bom else data


def _join(prefix: str, text: str) -> str:
    if not text:
        return prefix.rstrip()
    return f"{prefix} {text}" if prefix.endswith(":") else prefix + text


# ---------------------------------------------------------------------------- mutations

PALETTE = [
    " ", "  ", "\n", "- ", "-", ":", ": ", "#", " #", '"', "'", "[", "]", "{", "}", ",",
    "&a ", "*a", "!!str ", "!!int ", "!foo ", "|", ">-", "---\n", "...\n", "%YAML 1.1\n",
    "%TAG ! x\n", "? ", "\\", "\\n", "\\x41", "\\u00e9", "\\ud800", "yes", "0x_", "0b_",
    "1e-5", "~", "<<", "\t", "\u00e9", "\U0001f600", "\r\n", "\r", "\x85", "\u2028",
    "\ufeff", "\x00", "\x07", "$import: x\n", "  - x\n", "a: b: c", "\x80", "\xc3",
]  # fmt: skip


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few characters (or bytes) inserted, deleted or duplicated."""
    text = data.decode("utf-8", "surrogateescape")
    for _ in range(rng.randint(1, 3)):
        where = rng.randrange(len(text) + 1)
        roll = rng.random()
        if roll < 0.55:
            text = text[:where] + rng.choice(PALETTE) + text[where:]
        elif roll < 0.7:
            text = text[:where] + text[where + rng.randint(1, 4) :]
        elif roll < 0.85:
            lines = text.split("\n")
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k])
            text = "\n".join(lines)
        else:
            lines = text.split("\n")
            k = rng.randrange(len(lines))
            lines[k] = " " * rng.randint(1, 3) + lines[k] if rng.random() < 0.5 else lines[k][1:]
            text = "\n".join(lines)
    out = bytearray()
    for ch in text:  # characters standing for raw bytes become those bytes
        if ch in "\x80\xc3":
            out.append(ord(ch))
        else:
            out += ch.encode("utf-8", "surrogateescape")
    return bytes(out)


def cases() -> st.SearchStrategy[Case]:
    """Generated cases."""
    return models().map(build_case)
