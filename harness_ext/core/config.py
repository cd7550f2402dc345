"""The one strict YAML/dict -> dataclass parser, used by experiment files and training configs.

Config is data: a dataclass whose fields carry their help text (``metadata["help"]``) and, for a
string with a fixed set of values, ``metadata["choices"]`` (or a ``typing.Literal`` type).
`parse_dataclass` builds one from a mapping and collects every problem instead of stopping at the
first, each tied to its field path (``arms[1].train.preset``) so a caller can point at the YAML line
(`yaml_line_map`, `line_of`):

* unknown keys, with a did-you-mean;
* missing required fields;
* values of the wrong type: int, float (an int is accepted), bool, str, ``X | None``, unions,
  ``list[X]``, ``dict[str, X]``, nested dataclasses, Literal-like choices.

``ParseStyle.text`` accepts strings for the other scalar types too, parsed as a command line's
``key=value`` would be (``"3"``, ``"1e-5"``, ``"true"``, ``"null"``).

A bad value of a field that has a default (or a value in `base`) keeps that value, so later checks
still run on a usable object; a required field that cannot be built leaves the whole object unbuilt.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from harness_ext.core.errors import did_you_mean

T = TypeVar("T")
_NULL_WORDS = ("null", "none", "~")
_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off")


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a config: the field path, what is wrong with its value, how to fix it."""

    field: str
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class ParseStyle:
    """How problems are worded and how lenient scalars are."""

    #: the noun in "unknown <kind> 'x'"
    kind: str = "key"
    #: the fix for an unknown key (default: the keys allowed at that place)
    unknown_fix: str | None = None
    #: accept strings for int/float/bool/None, as typed on a command line
    text: bool = False


@dataclass
class Parsed(Generic[T]):
    """What `parse_dataclass` made: the object (None when it could not be built) and every problem."""

    value: T | None
    problems: list[FieldProblem]


class _BadValue(Exception):
    """A value could not be converted; its problem is recorded. The field's default can stand in."""


class _Broken(Exception):
    """A mapping or list could not be built; its problems are recorded. Nothing can stand in."""


def join(where: str, key: object) -> str:
    """The field path of `key` inside `where` (``arms[0]`` + ``train`` -> ``arms[0].train``)."""
    return f"{where}.{key}" if where else str(key)


def type_name(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_dataclass(cls: type[T], data: dict[str, Any], *, where: str = "", style: ParseStyle = ParseStyle(),
                    base: T | None = None) -> Parsed[T]:
    """Build `cls` from `data` (on top of `base`'s values when given), collecting every problem."""
    problems: list[FieldProblem] = []
    try:
        value = _parse(cls, data, where, style, problems, base)
    except _Broken:
        value = None
    return Parsed(value, problems)


def _parse(cls: type, data: dict[str, Any], where: str, style: ParseStyle, problems: list[FieldProblem],
           base: Any = None) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            problems.append(FieldProblem(join(where, key), f"unknown {style.kind} '{key}'.{did_you_mean(str(key), fields)}",
                                         fix=style.unknown_fix or f"allowed keys here: {', '.join(fields)}"))
    kwargs = {name: getattr(base, name) for name in fields} if base is not None else {}
    broken = False
    for name, f in fields.items():
        required = base is None and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name in data:
            try:
                kwargs[name] = _convert(data[name], hints[name], _Field(join(where, name), name, f), style, problems)
            except _BadValue:
                broken = broken or required
            except _Broken:
                broken = True
        elif required:
            problems.append(FieldProblem(where or "(top level)",
                                         f"missing required key '{name}' ({f.metadata.get('help', '')}).",
                                         fix=f"add `{name}:`"))
            broken = True
    if broken:
        raise _Broken
    return cls(**kwargs)


@dataclass(frozen=True)
class _Field:
    """Where a value sits: its path, its key, and the dataclass field it fills (for choices and default)."""

    path: str
    key: str
    spec: Any = None

    def inner(self, path: str) -> _Field:
        return _Field(path, path.rsplit(".", 1)[-1])


def _convert(value: Any, tp: Any, at: _Field, style: ParseStyle, problems: list[FieldProblem]) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, tp, at, style, problems)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(FieldProblem(at.path, f"expected a mapping of {tp.__name__} fields, got {value!r}."))
            raise _BadValue
        return _parse(tp, value, at.path, style, problems)
    if origin in (list, dict):
        return _convert_container(value, tp, at, style, problems)
    if tp is Any:
        return value
    if origin is typing.Literal:
        return _check_choice(value, typing.get_args(tp), at, problems)
    out = _convert_scalar(value, tp, at, style, problems)
    choices = at.spec.metadata.get("choices") if at.spec is not None else None
    return _check_choice(out, choices, at, problems) if choices else out


def _convert_union(value: Any, tp: Any, at: _Field, style: ParseStyle, problems: list[FieldProblem]) -> Any:
    args = typing.get_args(tp)
    optional = type(None) in args
    if value is None and optional:
        return None
    if optional and style.text and isinstance(value, str) and value.strip().lower() in _NULL_WORDS:
        return None
    inner = [a for a in args if a is not type(None)]
    if len(inner) == 1:
        return _convert(value, inner[0], at, style, problems)
    for arm in inner:  # the first arm that takes the value wins
        trial: list[FieldProblem] = []
        try:
            out = _convert(value, arm, at, style, trial)
        except (_BadValue, _Broken):
            continue
        if not trial:
            return out
    names = " or ".join(type_name(a) for a in args)
    problems.append(FieldProblem(at.path, f"expected {names}, got {value!r}."))
    raise _BadValue


def _convert_container(value: Any, tp: Any, at: _Field, style: ParseStyle, problems: list[FieldProblem]) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if not isinstance(value, list if origin is list else dict):
        problems.append(FieldProblem(at.path, f"expected a {'list' if origin is list else 'mapping'}, got {value!r}."))
        raise _BadValue
    items = enumerate(value) if origin is list else value.items()
    out: dict[Any, Any] = {}
    broken = False
    for k, v in items:
        path = f"{at.path}[{k}]" if origin is list else join(at.path, k)
        try:
            out[k] = _convert(v, args[-1] if args else Any, at.inner(path), style, problems)
        except (_BadValue, _Broken):
            broken = True
    if broken:
        raise _Broken
    return list(out.values()) if origin is list else {str(k): v for k, v in out.items()}


def _convert_scalar(value: Any, tp: Any, at: _Field, style: ParseStyle, problems: list[FieldProblem]) -> Any:
    if tp not in (int, float, bool, str):
        return value
    if value is None:
        fix = f"give a value of type {tp.__name__}." if style.text else None
        problems.append(FieldProblem(at.path, f"{at.key} may not be null." if style.text
                                     else f"expected {tp.__name__}, got None.", fix))
        raise _BadValue
    if not style.text:
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            problems.append(FieldProblem(at.path, f"expected {type_name(tp)}, got {value!r}."))
            raise _BadValue
        return value
    try:
        return _from_text(value, tp)
    except (TypeError, ValueError):
        default = getattr(at.spec, "default", dataclasses.MISSING) if at.spec is not None else dataclasses.MISSING
        example = f", e.g. {at.key}={default!r}" if default not in (dataclasses.MISSING, None) else ""
        problems.append(FieldProblem(at.path, f"{at.key}={value!r} is not a valid {tp.__name__}.",
                                     f"give {at.key} a value of type {tp.__name__}{example}."))
        raise _BadValue from None


def _from_text(raw: Any, tp: type) -> Any:
    """`raw` (a YAML value or a command-line string) as `tp`; ValueError when it is not one."""
    if isinstance(raw, (list, dict)):
        raise ValueError(raw)
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE_WORDS or text in _FALSE_WORDS:
            return text in _TRUE_WORDS
        raise ValueError(text)
    if tp is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError(raw)
        if isinstance(raw, str) and "e" in raw.lower():
            number = float(raw)
            if not number.is_integer():
                raise ValueError(raw)
            return int(number)
        return int(raw)
    if tp is float:
        if isinstance(raw, bool):
            raise ValueError(raw)
        return float(raw)
    return str(raw)


def _check_choice(value: Any, choices: Any, at: _Field, problems: list[FieldProblem]) -> Any:
    choices = tuple(choices)
    if value in choices:
        return value
    names = [str(c) for c in choices]
    problems.append(FieldProblem(at.path, f"{at.key}='{value}' is not allowed.{did_you_mean(str(value), names)}",
                                 f"use one of: {', '.join(names)}"))
    raise _BadValue


# ---------------------------------------------------------------- YAML locations


def yaml_line_map(text: str) -> dict[str, int]:
    """Field path -> 1-based line of every key and list item in a YAML document (yaml.YAMLError if malformed)."""
    import yaml

    out: dict[str, int] = {}
    _walk(yaml.compose(text), "", out)
    return out


def _walk(node: Any, where: str, out: dict[str, int]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            path = join(where, k.value)
            out[path] = k.start_mark.line + 1
            _walk(v, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{where}[{i}]"
            out[path] = item.start_mark.line + 1
            _walk(item, path, out)


def line_of(field: str, lines: dict[str, int]) -> int | None:
    """The line of `field`, or of its nearest enclosing field that has one."""
    while field:
        if field in lines:
            return lines[field]
        cut = max(field.rfind("."), field.rfind("["))
        field = field[:cut] if cut > 0 else ""
    return None


def read_yaml_mapping(path: str | Path, *, what: str = "config file") -> tuple[dict[str, Any], dict[str, int]]:
    """A YAML file that must hold a mapping, with its field -> line map; InputError when it is
    missing, malformed (naming the line) or not a mapping. An empty file is an empty mapping."""
    import yaml

    from harness_ext.core.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found.", path=path, hint=f"check the {what} path.")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        lines = yaml_line_map(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"malformed YAML: {getattr(exc, 'problem', exc)}.", path=path,
                         line=mark.line + 1 if mark is not None else None, hint="fix the YAML syntax.") from None
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping of option: value, found {type(data).__name__}.", path=path)
    return data, lines
