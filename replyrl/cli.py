"""Pieces every stage script shares: the argument parser skeleton and logging set-up."""

from __future__ import annotations

import argparse
import logging
import os

# Nothing may be fetched from a model hub at run time; stage scripts import this module first.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def stage_parser(description: str) -> argparse.ArgumentParser:
    """An argparse parser with the options every stage has (``--params``)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="Parameters file to read.")
    return parser


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
