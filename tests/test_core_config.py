"""The one strict config parser (harness_ext.core.config): types, unions, choices, unknown keys with a
did-you-mean, required keys, text values from a command line, and YAML line locations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from harness_ext.core.config import ParseStyle, line_of, parse_dataclass, read_yaml_mapping, yaml_line_map
from harness_ext.core.errors import InputError


@dataclass
class Inner:
    k: int = 3
    mode: Literal["fast", "slow"] = "fast"


@dataclass
class Outer:
    name: str
    ratio: float = 0.5
    limit: int | None = None
    either: int | str = 0
    tags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    table: dict[str, int] = field(default_factory=dict)
    flag: bool = False
    colour: str = field(default="red", metadata={"choices": ("red", "green")})


def _msgs(parsed):
    return [(p.field, p.message) for p in parsed.problems]


def test_well_typed_mapping_builds_nested_records():
    parsed = parse_dataclass(Outer, {"name": "x", "ratio": 2, "limit": None, "either": "abc", "tags": ["a"],
                                     "inner": {"k": 4, "mode": "slow"}, "items": [{"k": 1}], "table": {"a": 1},
                                     "flag": True, "colour": "green"})
    assert parsed.problems == []
    cfg = parsed.value
    assert cfg.ratio == 2.0 and isinstance(cfg.ratio, float) and cfg.either == "abc"
    assert cfg.inner == Inner(4, "slow") and cfg.items == [Inner(1)] and cfg.table == {"a": 1}


def test_every_problem_is_collected_with_its_path():
    parsed = parse_dataclass(Outer, {"name": "x", "ratoi": 1.0, "limit": "ten", "either": 1.5, "tags": [1],
                                     "inner": {"mode": "medium"}, "items": [{"kk": 1}], "flag": "yes",
                                     "colour": "gren"})
    got = dict(_msgs(parsed))
    assert got["ratoi"] == "unknown key 'ratoi'. Did you mean 'ratio'?"
    assert got["limit"] == "expected int, got 'ten'."
    assert got["either"] == "expected int or str, got 1.5."
    assert got["tags[0]"] == "expected str, got 1."
    assert got["inner.mode"].startswith("mode='medium' is not allowed.")
    assert got["items[0].kk"].startswith("unknown key 'kk'.")
    assert got["flag"] == "expected bool, got 'yes'."
    assert got["colour"] == "colour='gren' is not allowed. Did you mean 'green'?"
    # lists that failed leave the object unbuilt; scalars alone would have kept their defaults
    assert parsed.value is None


def test_bad_scalar_keeps_default_and_missing_required_key_breaks():
    parsed = parse_dataclass(Outer, {"name": "x", "ratio": "half"})
    assert parsed.value is not None and parsed.value.ratio == 0.5
    assert _msgs(parsed) == [("ratio", "expected float, got 'half'.")]
    parsed = parse_dataclass(Outer, {})
    assert parsed.value is None
    assert parsed.problems[0].message.startswith("missing required key 'name'") and parsed.problems[0].fix == "add `name:`"


def test_text_style_parses_command_line_strings():
    style = ParseStyle(kind="option", unknown_fix="see --help", text=True)
    parsed = parse_dataclass(Outer, {"name": "x", "ratio": "1e-5", "limit": "null", "flag": "on",
                                     "inner": {"k": "1e3"}}, style=style)
    assert parsed.problems == []
    cfg = parsed.value
    assert (cfg.ratio, cfg.limit, cfg.flag, cfg.inner.k) == (1e-5, None, True, 1000)
    parsed = parse_dataclass(Outer, {"name": "x", "ratio": "many", "colr": "red"}, style=style)
    assert [(p.field, p.message, p.fix) for p in parsed.problems] == [
        ("colr", "unknown option 'colr'. Did you mean 'colour'?", "see --help"),
        ("ratio", "ratio='many' is not a valid float.", "give ratio a value of type float, e.g. ratio=0.5."),
    ]


def test_base_values_stand_in_for_bad_ones():
    base = Outer(name="b", ratio=0.9)
    parsed = parse_dataclass(Outer, {"ratio": "x"}, base=base)
    assert parsed.value.name == "b" and parsed.value.ratio == 0.9 and len(parsed.problems) == 1


def test_yaml_lines_locate_fields(tmp_path):
    text = "name: x\ninner:\n  k: 4\nitems:\n  - {k: 1}\n  - {k: two}\n"
    lines = yaml_line_map(text)
    assert (lines["name"], lines["inner.k"], lines["items[1]"]) == (1, 3, 6)
    assert line_of("items[1].k", lines) == 6 and line_of("inner.missing", lines) == 2
    path = tmp_path / "c.yaml"
    path.write_text(text)
    data, got = read_yaml_mapping(path)
    assert data["inner"] == {"k": 4} and got == lines
    path.write_text("a: [1\n")
    with pytest.raises(InputError, match=r"c.yaml:\d+: malformed YAML"):
        read_yaml_mapping(path)
    path.write_text("- 1\n")
    with pytest.raises(InputError, match="expected a mapping"):
        read_yaml_mapping(path)
