"""The one config mechanism of the project: YAML files with ``extends:``, dotted overrides, strict keys.

Build configs (``datasets_scripts.build``) and training configs (``racl.training.config``) are both
read here, so both accept ``extends: base.yaml``, ``section.key=value`` overrides on the command
line, and fail on an unknown key or a wrong type with one :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the offending key."""


class _Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where a float needs a dot (``1e-5`` is a string); here it is a float, as in YAML 1.2,
    in config files and overrides alike, whatever reads the value (a dataclass field or ``model.overrides``)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"), list("-+0123456789."))


def load_yaml(text: str):
    """YAML text as the project's configs read it (exponent floats included); every config reader goes through here."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects


def fail(where: str, key: str, problem: str):
    raise ConfigError(f"{where}: `{key}`: {problem}")


def merge_mappings(base: dict, extra: dict) -> dict:
    """``base`` updated by ``extra``: mappings merge key by key, anything else (lists too) replaces."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge_mappings(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_overrides(pairs: list[str]) -> dict:
    """``["training.max_steps=10", "model.overrides.aggregation=gated"]`` → nested dict (values parsed as YAML)."""
    nested: dict = {}
    for pair in pairs:
        if "=" not in pair or not pair.split("=", 1)[0]:
            raise ConfigError(f"override {pair!r} must look like section.key=value")
        dotted, raw = pair.split("=", 1)
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {pair!r} sets a key inside {part!r}, which another override sets to a value")
        node[leaf] = load_yaml(raw)
    return nested


def read_yaml(path: str | os.PathLike, _seen: tuple = ()) -> tuple[dict, str]:
    """A config file's mapping and text, with ``extends:`` resolved.

    ``extends: base.yaml`` (relative to the file) starts from that config: mappings merge key by
    key, anything else (lists included) replaces the base's value. The text of a config that
    extends another is the merged mapping as YAML, so a card or a run folder shows all of it.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    if "extends" not in raw:
        return raw, text
    base_name = raw.pop("extends")
    if not isinstance(base_name, str) or not base_name:
        fail(str(path), "extends", f"expected a file name, got {base_name!r}")
    base_path = (path.parent / base_name).resolve()
    if base_path in (path.resolve(), *_seen):
        fail(str(path), "extends", f"{base_name} is this config or extends it (a cycle)")
    if not base_path.is_file():
        fail(str(path), "extends", f"{base_name}: no such config file")
    base, _ = read_yaml(base_path, (*_seen, path.resolve()))
    merged = merge_mappings(base, raw)
    return merged, f"# {path.name}, merged with the config it extends ({base_name})\n" + yaml.safe_dump(merged, sort_keys=False)


def read_model_config(path: str | os.PathLike) -> dict:
    """A model config of ``configs/model/`` (RACLConfig keys as JSON) with ``"extends"`` resolved.

    JSON is YAML, so the reader of the YAML configs serves: a variant names the config it starts from
    and only the keys it changes. ``model_type`` is dropped (it names the class, not a field).
    """
    raw, _ = read_yaml(path)
    return {k: v for k, v in raw.items() if k != "model_type"}


def load_mapping(path: str | os.PathLike | None, overrides: list[str] | None = None) -> tuple[dict, str]:
    """:func:`read_yaml` (an empty mapping for no file), then the dotted ``overrides`` merged on top."""
    raw, text = read_yaml(path) if path is not None else ({}, "")
    if overrides:
        raw = merge_mappings(raw, parse_overrides(overrides))
        text = yaml.safe_dump(raw, sort_keys=False)
    return raw, text


def check_keys(where: str, section: str, mapping, known: set[str]) -> dict:
    """``mapping`` if it is a mapping whose keys are all in ``known``, else a ConfigError naming the key."""
    if not isinstance(mapping, dict):
        fail(where, section or "<top level>", f"expected a mapping, got {type(mapping).__name__}")
    for key in mapping:
        if key not in known:
            fail(where, f"{section}.{key}" if section else str(key), f"unknown key (known: {', '.join(sorted(known))})")
    return mapping


def _coerce(where: str, key: str, value, expected):
    """Check ``value`` against a dataclass field type; ints are accepted for floats."""
    union = isinstance(expected, types.UnionType) or typing.get_origin(expected) is typing.Union
    options = typing.get_args(expected) if union else (expected,)
    for option in options:
        if option is type(None) and value is None:
            return None
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (str, bool, dict, list) and isinstance(value, option):
            return value
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    fail(where, key, f"must be {names}, got {type(value).__name__} {value!r}")


def build_dataclass(cls, values, where: str, prefix: str = "", choices: dict | None = None):
    """A (nested) dataclass from a mapping, strictly: known keys only, values of the annotated types.

    ``choices`` maps dotted keys to their allowed values.
    """
    choices = choices or {}
    hints = typing.get_type_hints(cls)
    check_keys(where, prefix.rstrip("."), values, {f.name for f in dataclasses.fields(cls)})
    kwargs = {}
    for name, value in values.items():
        key = prefix + name
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = build_dataclass(hints[name], value, where, key + ".", choices)
            continue
        kwargs[name] = _coerce(where, key, value, hints[name])
        if key in choices and kwargs[name] not in choices[key]:
            fail(where, key, f"must be one of {', '.join(map(str, choices[key]))}, got {value!r}")
    return cls(**kwargs)


__all__ = ["ConfigError", "fail", "merge_mappings", "parse_overrides", "read_yaml", "load_yaml", "load_mapping", "check_keys", "build_dataclass"]
