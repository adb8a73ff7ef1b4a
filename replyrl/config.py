"""One dataclass per stage, mirroring that stage's section of ``params.yaml``.

Fields carry a ``help`` string (as TRL's configs do) and ``__post_init__`` checks values. Unknown
keys are rejected with the file and key named, so a typo in params.yaml stops the run instead of
being ignored. Field names follow TRL/transformers where a value is passed straight through.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read the whole params file."""
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of stage sections at the top level")
    return params


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _check_type(value, option, where)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{where}: {value!r} is not of type {hint}")
    if hint is type(None):
        if value is None:
            return None
        raise TypeError(f"{where}: expected null, got {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(hint, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise TypeError(f"{where}: expected a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        return [_check_type(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected a mapping, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise TypeError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build dataclass ``cls`` from ``data``; ``where`` names the source (e.g. ``params.yaml: sft``)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def load_section(cls: type[T], name: str, path: str | Path = PARAMS_FILE) -> T:
    """Load section ``name`` of the params file into ``cls``; a missing section means all defaults."""
    params = load_params(path)
    return from_dict(cls, params.get(name) or {}, f"{path}: {name}")


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict view of a config, for logging and for the params JSON saved beside models."""
    return dataclasses.asdict(config)


# ----------------------------------------------------------------------------------------------
# prompt: shared by SFT, GRPO and evaluation (a train/eval prompt mismatch is a known failure)


@dataclass
class PromptConfig:
    template: str = field(
        default="Generate an engaging Twitter reply to this tweet:\n\n{tweet}\n\nReply:",
        metadata={"help": "User-turn text; `{tweet}` is replaced by the tweet."},
    )
    use_chat_template: bool = field(
        default=True, metadata={"help": "Wrap the text as one user turn in the tokenizer's chat template, if it has one."}
    )

    def __post_init__(self) -> None:
        if "{tweet}" not in self.template:
            raise ValueError(f"prompt.template must contain '{{tweet}}', got {self.template!r}")


# ----------------------------------------------------------------------------------------------
# prepare / split


@dataclass
class PrepareConfig:
    source: str = field(
        default="sample",
        metadata={"help": "`sample` for the built-in chitchat corpus, or a path/glob of JSONL files."},
    )
    sample_size: int = field(default=6000, metadata={"help": "Number of (message, reply) pairs drawn for the sample."})
    sample_seed: int = field(default=0, metadata={"help": "Seed for drawing the sample and simulating its likes."})
    max_chars: int = field(default=500, metadata={"help": "Rows whose tweet or reply is longer are rejected."})
    max_reject_fraction: float = field(
        default=0.2, metadata={"help": "Fail the stage if a larger fraction of input rows is rejected."}
    )

    def __post_init__(self) -> None:
        if self.sample_size <= 0:
            raise ValueError(f"prepare.sample_size must be > 0, got {self.sample_size}")
        if self.max_chars <= 0:
            raise ValueError(f"prepare.max_chars must be > 0, got {self.max_chars}")
        if not 0.0 <= self.max_reject_fraction <= 1.0:
            raise ValueError(f"prepare.max_reject_fraction must be in [0, 1], got {self.max_reject_fraction}")


@dataclass
class SplitConfig:
    seed: int = field(default=42, metadata={"help": "Seed of the grouped, stratified split."})
    test_fraction: float = field(default=0.1, metadata={"help": "Share of tweets held out for the test set."})
    split_ratio: float = field(
        default=0.5, metadata={"help": "Share of the non-test tweets that go to phase 1 (SFT); the rest to phase 2."}
    )

    def __post_init__(self) -> None:
        for name in ("test_fraction", "split_ratio"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"split.{name} must be in (0, 1), got {value}")


# ----------------------------------------------------------------------------------------------
# base / encoder


@dataclass
class BaseConfig:
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "`smollm2-135m-instruct` (offline, packaged), a Hugging Face id or a local folder."},
    )


@dataclass
class EncoderConfig:
    model: str = field(
        default="all-MiniLM-L6-v2",
        metadata={"help": "`all-MiniLM-L6-v2` (offline, packaged), a sentence-transformers id or a local folder."},
    )
    batch_size: int = field(default=64, metadata={"help": "Sentences per encoder batch."})
