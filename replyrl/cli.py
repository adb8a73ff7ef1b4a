"""Pieces every stage script shares: the argument parser skeleton, logging set-up and the entry point."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from types import SimpleNamespace

from replyrl.configs.loader import ConfigError, load_section, to_dict

# Nothing may be fetched from a model hub at run time; stage scripts import this module first.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def stage_parser(description: str) -> argparse.ArgumentParser:
    """An argparse parser with the options every stage has (``--params``)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Every param the stage reads, with its help: python -m replyrl params")
    parser.add_argument("--params", default="params.yaml", help="Parameters file to read (default: params.yaml).")
    return parser


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def start_stage(parser: argparse.ArgumentParser, sections: dict[str, type]) -> tuple[argparse.Namespace, SimpleNamespace]:
    """Parse the arguments, set up logging, load each params ``section`` into its class and log it all.

    Returns the arguments and the configs by section name (``params.grpo``, ``params.prompt``, ...).
    """
    args = parser.parse_args()
    setup_logging()
    params = {name: load_section(cls, name, args.params) for name, cls in sections.items()}
    logging.getLogger(parser.prog).info("arguments %s, params %s", vars(args), {k: to_dict(v) for k, v in params.items()})
    return args, SimpleNamespace(**params)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a bad params file ends it with one line on stderr (exit 2), not a traceback."""
    try:
        main()
    except ConfigError as e:
        print(f"{os.path.basename(sys.argv[0])}: error: {e}", file=sys.stderr)
        sys.exit(2)
