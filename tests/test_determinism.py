"""Property tests: resolution is deterministic and independent of how mappings are written."""

import random

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qrecipe
from qrecipe.language.api import Resolver
from qrecipe.language.flatten import flatten
from qrecipe.language.library import Library, Located

attributes = st.fixed_dictionaries(
    {},
    optional={
        "num_bits": st.sampled_from([4, 8, "e4m3", "E4M3", "e2m1", [4, 3]]),
        "axis": st.sampled_from([None, 0, -1, [0, 1]]),
        "unsigned": st.booleans(),
        "narrow_range": st.booleans(),
        "calibrator": st.sampled_from(["max", "histogram"]),
        "effective_bits": st.sampled_from([None, 4.5, 8, 0.25]),
        "trt_high_precision_dtype": st.sampled_from(["Float", "Half", "BFloat16"]),
    },
).filter(lambda cfg: cfg and cfg != {"enable": True})
entries = st.lists(
    st.fixed_dictionaries(
        {"quantizer_name": st.text("*abc_.[]", min_size=1, max_size=12)},
        optional={
            "parent_class": st.sampled_from(["nn.Linear", "nn.Embedding"]),
            "enable": st.booleans(),
            "cfg": attributes,
        },
    ).filter(lambda e: "cfg" in e or "enable" in e),
    max_size=6,
)
recipes = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"recipe_type": st.just("ptq")},
            # PyYAML writes NEL, LS and PS unescaped; the accepted YAML refuses them unescaped
            # (YAML 1.1 reads them as line breaks, YAML 1.2 does not), as its own tests show.
            optional={
                "description": st.text(
                    st.characters(exclude_characters="\x85\u2028\u2029"), max_size=20
                )
            },
        ),
        "quantize": st.fixed_dictionaries(
            {"quant_cfg": entries},
            optional={
                "algorithm": st.sampled_from(
                    [None, "max", "mse", {"method": "mse", "step_size": 0.5}]
                )
            },
        ),
    }
)


def shuffled(value, rng):
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def resolve_text(tmp_path, name, text):
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    resolver = Resolver(Library(use_env=False, cwd=tmp_path))
    return flatten(resolver.resolve(Located(file, resolver.library.roots[-1])))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(recipe=recipes, seed=st.integers(0, 2**16))
def test_key_order_and_layout_do_not_change_the_bytes(tmp_path, recipe, seed):
    rng = random.Random(seed)
    block = yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True)
    flow = yaml.safe_dump(shuffled(recipe, rng), default_flow_style=True, allow_unicode=True)
    first = resolve_text(tmp_path, "a.yaml", block)
    second = resolve_text(tmp_path, "b.yaml", flow)
    assert qrecipe.canonical_bytes(first) == qrecipe.canonical_bytes(second)
    assert qrecipe.pretty_json(first) == qrecipe.pretty_json(
        resolve_text(tmp_path, "a.yaml", block)
    )
    assert first["fingerprint"] == qrecipe.fingerprint(first)
