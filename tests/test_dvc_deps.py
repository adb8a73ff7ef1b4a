"""dvc.yaml's code deps match the code: each stage lists exactly the import closure of its script.

A module missing from a stage's deps means an edit to it does not rerun the stage (stale results);
an extra one means an unrelated edit reruns it (a 30-minute `dvc repro` for a comment).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("replyrl",)  # first-party code lives here and in stages/


def module_file(name: str) -> Path | None:
    """The file of first-party module ``name`` (a package's ``__init__.py``), or None for third-party ones."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` in ``path`` may load (``from a import b`` may mean module ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
    return {".".join(name.split(".")[:i]) for name in names for i in range(1, name.count(".") + 2)}


def import_closure(script: Path) -> set[str]:
    """Repo-relative paths of ``script`` and every first-party file it imports, transitively."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(f for f in map(module_file, imported_modules(path)) if f is not None)
    return {(p.relative_to(REPO_ROOT) if p.is_relative_to(REPO_ROOT) else p).as_posix() for p in seen}


def stage_code_deps() -> list[tuple[str, str, set[str]]]:
    """(stage, script, listed code deps) for every stage of dvc.yaml."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    rows = []
    for name, stage in stages.items():
        script = re.search(r"(stages/\w+\.py)", stage["cmd"]).group(1)
        code = {d for d in stage["deps"] if d.endswith(".py") and d.startswith(("stages/", *PACKAGES))}
        rows.append((name, script, code))
    return rows


@pytest.mark.parametrize(("stage", "script", "listed"), stage_code_deps(), ids=lambda v: v if isinstance(v, str) else "")
def test_stage_deps_are_the_import_closure_of_its_script(stage: str, script: str, listed: set[str]):
    closure = import_closure(REPO_ROOT / script)
    assert not closure - listed, f"{stage}: imported but not in deps: {sorted(closure - listed)}"
    assert not listed - closure, f"{stage}: in deps but not imported: {sorted(listed - closure)}"


def test_closure_follows_imports_inside_functions_and_packages(tmp_path: Path):
    # A stage whose only first-party import sits inside a function still depends on that module,
    # and on the __init__ of each package on the way to it.
    script = tmp_path / "stage.py"
    script.write_text("def main():\n    from replyrl.training.report import plot_sft_losses\n")
    closure = import_closure(script)
    assert {"replyrl/__init__.py", "replyrl/training/__init__.py", "replyrl/training/report.py", "replyrl/io.py"} <= closure
    assert "replyrl/training/grpo.py" not in closure


def test_grpo_runs_read_every_grpo_param_but_the_run_list():
    # The run's init and objective are in its cmd, so adding a run to grpo.runs reruns no other run;
    # every other grpo key changes every run. dvc.yaml lists them one by one: keep it in step.
    from replyrl.configs.grpo import GRPOStageConfig

    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    listed = {p.removeprefix("grpo.") for p in stages["grpo"]["params"] if isinstance(p, str) and p.startswith("grpo")}
    fields = {f.name for f in dataclasses.fields(GRPOStageConfig)}
    assert listed == fields - {"runs"}
