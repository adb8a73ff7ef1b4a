"""The `replyrl` command (also `python -m replyrl`).

    replyrl params              every param of params.yaml, with its value, default and help
    replyrl params grpo         one section
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import textwrap
import typing
from typing import Any

from replyrl.configs.loader import PARAMS_FILE, SECTIONS, ConfigError, describe_type, load_section

# params.yaml section -> the dataclass in replyrl/configs/<section>.py that reads it.
SECTION_CLASSES = {
    "prompt": "PromptConfig", "prepare": "PrepareConfig", "split": "SplitConfig", "base": "BaseConfig",
    "encoder": "EncoderConfig", "reward": "RewardConfig", "sft": "SFTStageConfig", "grpo": "GRPOStageConfig",
    "evaluate": "EvaluateConfig",
}


def section_class(section: str) -> type:
    return getattr(importlib.import_module(f"replyrl.configs.{section}"), SECTION_CLASSES[section])


def describe(config: Any, prefix: str) -> list[str]:
    """One entry per leaf param: ``key = value  (default ...)`` and its help, indented."""
    lines = []
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        key, value = f"{prefix}.{f.name}", getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            lines += describe(value, key)
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        changed = "" if value == default else f"   (default {default!r})"
        lines.append(f"{key} = {value!r}{changed}")
        text = f"{f.metadata.get('help', '')} Allowed: {describe_type(hints[f.name])}."
        lines += textwrap.wrap(text, width=100, initial_indent="    ", subsequent_indent="    ")
    return lines


def params_command(args: argparse.Namespace) -> None:
    sections = args.sections or list(SECTION_CLASSES)
    for section in sections:
        config = load_section(section_class(section), section, args.params)
        print(f"# {section}  (replyrl/configs/{section}.py)")
        print("\n".join(describe(config, section)), end="\n\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="replyrl", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("params", help="Print every param of the params file with its value and help.")
    params.add_argument("sections", nargs="*", choices=[s for s in SECTIONS if s in SECTION_CLASSES],
                        metavar="SECTION", help=f"Sections to show (default: all): {', '.join(SECTION_CLASSES)}.")
    params.add_argument("--params", default=PARAMS_FILE, help="Parameters file to read (default: params.yaml).")
    args = parser.parse_args(argv)
    try:
        params_command(args)
    except ConfigError as e:
        print(f"replyrl: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
