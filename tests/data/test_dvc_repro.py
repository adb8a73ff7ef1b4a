"""`dvc repro split` end to end in a throw-away copy of the repository (small sample, ~30 s)."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from replyrl.io import read_json

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
OUTPUTS = [
    "data/prepared/pairs.jsonl",
    "data/prepared/rejected.jsonl",
    "metrics/prepare.json",
    "data/processed/phases/training_data_phase1_sft.jsonl",
    "data/processed/phases/training_data_phase2_grpo.jsonl",
    "data/processed/full_train.jsonl",
    "data/processed/test_data.jsonl",
    "data/processed/phases/phase_split_statistics.json",
    "plots/phase_split_distributions.png",
]


def _copy_repo(dest: Path) -> None:
    """Tracked and not-ignored files only: no outputs, cache or lock file from the real checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = REPO_ROOT / name
        if name == "dvc.lock" or not src.is_file() or name.startswith(("metrics/", "plots/", "data/")):
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name)


def _set_param(repo: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _dvc(repo: Path, *args: str) -> str:
    # The stages run `python`: put the venv first, and import replyrl from the copy, not the checkout.
    env = os.environ | {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(repo), "DVC_NO_ANALYTICS": "1"
    }
    proc = subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _digests(repo: Path) -> dict[str, str]:
    return {name: hashlib.sha256((repo / name).read_bytes()).hexdigest() for name in OUTPUTS}


def test_dvc_repro_split_runs_once_and_reruns_only_what_changed(tmp_path):
    repo = tmp_path / "repo"
    _copy_repo(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _set_param(repo, "prepare", "sample_size", 400)

    log = _dvc(repo, "repro", "split")
    assert "Running stage 'prepare'" in log and "Running stage 'split'" in log
    statistics = read_json(repo / "data/processed/phases/phase_split_statistics.json")
    assert statistics["rows"]["total"] == read_json(repo / "metrics/prepare.json")["rows_kept"]
    assert sum(statistics["tweet_overlap"].values()) == 0
    assert sum(statistics["group_overlap"].values()) == 0  # the sample groups by conversation
    first = _digests(repo)

    # Nothing changed: nothing runs.
    log = _dvc(repo, "repro", "split")
    assert "Running stage" not in log

    # Forcing both stages again reproduces every output byte for byte.
    _dvc(repo, "repro", "--force", "split")
    assert _digests(repo) == first

    # A split-only param reruns split but not prepare.
    _set_param(repo, "split", "test_fraction", 0.2)
    log = _dvc(repo, "repro", "split")
    assert "Running stage 'split'" in log and "Running stage 'prepare'" not in log
    rerun = read_json(repo / "data/processed/phases/phase_split_statistics.json")
    assert rerun["rows"]["test"] > statistics["rows"]["test"]
