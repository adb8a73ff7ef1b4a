"""Read `params.yaml` into the per-stage config dataclasses of `replyrl.configs`.

Each section of the params file has one module here with one dataclass (nested ones for sub-sections).
Fields carry a ``help`` string, printed by ``python -m replyrl params``; ``__post_init__`` checks
values. Anything wrong in the file (an unknown key, a value of the wrong type, a value out of range)
raises :class:`ConfigError` with one line naming the file, the key, the value and what is allowed;
stage scripts print that line instead of a traceback (see `replyrl.cli.run_stage`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")
PARAMS_FILE = "params.yaml"
# Top-level keys of the params file: `seeds` and `launcher` (read by dvc.yaml only), then one section per
# stage (a module of this package each).
SECTIONS = ("seeds", "launcher", "prompt", "prepare", "split", "base", "encoder", "reward", "yardstick", "sft", "grpo", "evaluate")

# `bf16: auto | true | false` (and other auto-or-boolean params): true/false are YAML booleans, as the
# README writes them.
AutoBool = bool | Literal["auto"]
Bf16 = AutoBool


class ConfigError(ValueError):
    """A bad params file or value; the message is one line meant for the user, not a traceback."""


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read the whole params file; an unknown top-level section is an error."""
    try:
        with open(path, encoding="utf-8") as f:
            params = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the params file ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping of stage sections at the top level")
    unknown = sorted(set(params) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; valid sections are {list(SECTIONS)}")
    return params


def load_seeds(path: str | Path = PARAMS_FILE) -> list[int]:
    """The training seeds (top-level ``seeds``): a non-empty list of distinct integers."""
    seeds = load_params(path).get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds) or len(set(seeds)) < len(seeds):
        raise ConfigError(f"{path}: seeds: {seeds!r} is not allowed; expected a non-empty list of distinct integers")
    return seeds


def describe_type(hint: Any) -> str:
    """A type hint as a user reads it: `int`, `a list of str`, `true, false or 'auto'`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [describe_type(option) for option in typing.get_args(hint)]
        return ", ".join(options[:-1]) + " or " + options[-1]
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(hint))
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return f"a list of {describe_type(item)}"
    if hint is bool:
        return "a boolean (true/false)"
    if hint is type(None):
        return "null"
    if dataclasses.is_dataclass(hint) or origin is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _convert(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against ``hint`` (ints widen to float); TypeError when it does not fit."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _convert(value, option, where)
            except TypeError:
                continue
        raise TypeError
    if origin is Literal:
        if value in typing.get_args(hint) and type(value) in {type(v) for v in typing.get_args(hint)}:
            return value
        raise TypeError
    if hint is type(None):
        if value is None:
            return None
        raise TypeError
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError
        return from_dict(hint, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise TypeError
        (item_hint,) = typing.get_args(hint)[:1] or (Any,)
        return [_checked(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise TypeError
    return value


def _checked(value: Any, hint: Any, where: str) -> Any:
    try:
        return _convert(value, hint, where)
    except TypeError:
        raise ConfigError(f"{where}: {value!r} is not allowed; expected {describe_type(hint)}") from None


def from_dict(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build dataclass ``cls`` from ``data``; ``where`` names the source (e.g. ``params.yaml: sft``).

    A check that fails in ``__post_init__`` is re-raised as a :class:`ConfigError` naming the file.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    kwargs = {k: _checked(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # a failed __post_init__ check names the key; add the file
        raise ConfigError(f"{where.split(': ')[0]}: {e}") from None


def load_section(cls: type[T], name: str, path: str | Path = PARAMS_FILE) -> T:
    """Load section ``name`` of the params file into ``cls``; a missing section means all defaults."""
    section = load_params(path).get(name)
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"{path}: {name}: {section!r} is not allowed; expected a mapping")
    return from_dict(cls, section or {}, f"{path}: {name}")


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict view of a config, for logging and for the params JSON saved beside models."""
    return dataclasses.asdict(config)


def help_field(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with a ``help`` string (as TRL's configs declare them); lists take a factory."""
    if isinstance(default, list):
        items = list(default)
        return dataclasses.field(default_factory=lambda: list(items), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def check(condition: bool, key: str, value: Any, allowed: str) -> None:
    """Raise the standard one-line error unless ``condition``: `<key>: <value> is not allowed; <allowed>`."""
    if not condition:
        raise ConfigError(f"{key}: {value!r} is not allowed; {allowed}")


def check_positive(config: Any, section: str, names: typing.Iterable[str]) -> None:
    """Every field in ``names`` must be > 0."""
    for name in names:
        check(getattr(config, name) > 0, f"{section}.{name}", getattr(config, name), "must be > 0")


def check_sampling(section: str, temperature: float, top_p: float) -> None:
    """Sampling settings shared by every place that samples."""
    check(temperature > 0, f"{section}.temperature", temperature, "must be > 0")
    check(0.0 < top_p <= 1.0, f"{section}.top_p", top_p, "must be in (0, 1]")
