"""README.md and docs/*.md: generated figures match the committed metrics, links and paths exist, commands parse."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import pytest

from replyrl import docs_figures
from replyrl.__main__ import main as replyrl_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = docs_figures.doc_files(ROOT)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A path in backticks under a folder git tracks (not a pipeline output, which a fresh clone lacks).
TRACKED = ("replyrl/", "stages/", "tests/", "benchmarks/", "docs/")
TOP_FILES = {"params.yaml", "dvc.yaml", "dvc.lock", "Makefile", "requirements.txt", "constraints.txt",
             "pyproject.toml", "README.md"}
FENCE = re.compile(r"^```(bash|sh|shell|console|)\n(.*?)^```", re.S | re.M)  # shell blocks only


def doc_ids() -> list[str]:
    return [str(path.relative_to(ROOT)) for path in DOCS]


def test_docs_exist():
    # The README and one page per topic (issue 27).
    names = {path.name for path in DOCS}
    assert {"README.md", "stages.md", "data.md", "yardstick.md", "statistics.md", "performance.md", "gpu.md",
            "set-objectives.md", "training.md"} <= names


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_generated_blocks_match_the_committed_metrics():
    evaluation = json.loads((ROOT / docs_figures.EVALUATION_METRICS).read_text(encoding="utf-8"))
    missing = [key for key in docs_figures.NEW_EVALUATION_KEYS if key not in evaluation]
    if missing:
        pytest.skip(f"{docs_figures.EVALUATION_METRICS} predates the generated blocks (no {missing}): rerun the "
                    "evaluate stage, then `python -m replyrl docs`")
    stale = docs_figures.sync(ROOT, check=True)
    assert not stale, f"generated figures differ from the metrics in {stale}: run `python -m replyrl docs`"


def test_every_doc_has_only_known_blocks():
    # An unknown marker name would raise; each block appears in some file.
    blocks = dict.fromkeys(docs_figures.BLOCKS, "x")
    seen = set()
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        docs_figures.replace_blocks(text, blocks, str(path))
        seen |= {m.group("name") for m in docs_figures.MARKERS.finditer(text)}
    assert seen == set(docs_figures.BLOCKS)


def test_replace_blocks_and_check_on_a_copy(tmp_path):
    # sync rewrites a stale block and then finds nothing to do; --check reports without writing.
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/evaluation.json").write_text(json.dumps({"n_seeds": 3, "primary.diff": 0.1}))
    doc = tmp_path / "README.md"
    doc.write_text("intro\n<!-- generated:primary -->\nold\n<!-- /generated:primary -->\nend\n")
    assert docs_figures.sync(tmp_path, check=True) == [doc]
    assert "old" in doc.read_text()
    assert docs_figures.sync(tmp_path) == [doc]
    assert "difference +0.100" in doc.read_text() and "n/a" in doc.read_text()  # missing keys: n/a
    assert docs_figures.sync(tmp_path, check=True) == []


@pytest.mark.parametrize("doc", doc_ids())
def test_links_and_paths_exist(doc):
    path = ROOT / doc
    text = path.read_text(encoding="utf-8")
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        if not (path.parent / target.split("#")[0]).exists():
            missing.append(target)
    for name in re.findall(r"`([^`\s]+)`", text):
        name = re.sub(r":\d+$", "", name)
        if any(c in name for c in "<>*{}$") or "..." in name:
            continue  # a pattern, not a path
        if name.startswith(TRACKED) or name in TOP_FILES:
            if not (ROOT / name).exists():
                missing.append(name)
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def commands(text: str) -> list[str]:
    """Shell commands of the fenced blocks: continuation lines joined, `$ ` prompts and comments dropped."""
    out = []
    for _, block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ")
            line = re.sub(r"\s+#.*$", "", line)
            if line and not line.startswith("#"):
                out.append(line)
    return out


def _argv(line: str) -> list[str] | None:
    try:
        argv = shlex.split(line)
    except ValueError:
        return None
    if argv and argv[0].startswith(".venv/bin/"):
        argv[0] = argv[0].removeprefix(".venv/bin/")
    if ">" in argv[:-1]:  # a redirect of the output to a file is the shell's, not the command's
        argv = argv[:argv.index(">")]
    return argv


@pytest.fixture(scope="module")
def dvc_parser():
    from dvc.cli import DvcParserError
    from dvc.cli.parser import get_main_parser

    return get_main_parser(), DvcParserError


@pytest.mark.parametrize("doc", doc_ids())
def test_commands_parse(doc, dvc_parser):
    parser, parser_error = dvc_parser
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    bad = []
    for line in commands((ROOT / doc).read_text(encoding="utf-8")):
        argv = _argv(line)
        if not argv:
            continue
        if argv[0] == "make":
            bad += [f"{line} (no target {t})" for t in argv[1:] if t not in targets]
        elif argv[0] == "dvc":
            try:  # dvc's parser prints its help and raises DvcParserError on a bad command
                with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                    parser.parse_args(argv[1:])
            except (SystemExit, parser_error):
                bad.append(line)
        elif argv[0] == "replyrl" or argv[:3] == ["python", "-m", "replyrl"]:
            args = argv[1:] if argv[0] == "replyrl" else argv[3:]
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    replyrl_main([args[0], "--help"] if args else ["--help"])
            except SystemExit as e:
                if e.code:
                    bad.append(line)
    assert not bad, f"{doc}: commands that do not parse: {bad}"
