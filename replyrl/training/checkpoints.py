"""Resumable training runs: resume a killed run from its last checkpoint, but only if nothing it
depends on changed; write the result atomically; run a quick dry run that keeps nothing.

Checkpoints live outside DVC outs (DVC deletes a stage's outs before rerunning it), in a folder such
as `checkpoints/sft/<variant>/seed_<seed>/`. Next to them sits `fingerprint.json`: a hash of the exact
params and the content of the inputs. A rerun with the same fingerprint continues from the last
checkpoint; any difference wipes the folder and starts fresh, saying why. `ResumableRun` wraps this
for the `sft` and `grpo` stages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import Trainer
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import sort_checkpoints

from replyrl.io import atomic_path
from replyrl.models.precision import process_state

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "fingerprint.json"


def content_digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, in sorted order)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: input to fingerprint does not exist")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def run_fingerprint(params: Mapping[str, Any], inputs: Sequence[str | Path]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the params used and a digest of each input path."""
    return {
        "params": json.loads(json.dumps(params, sort_keys=True, default=str)),
        "inputs": {str(p): content_digest(p) for p in inputs},
    }


def _describe_change(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    if old is None:
        return f"no {FINGERPRINT_FILE}"
    changed = [f"params.{k}" for k in sorted(set(old.get("params", {})) | set(new["params"]))
               if old.get("params", {}).get(k) != new["params"].get(k)]
    changed += [f"input {k}" for k in sorted(set(old.get("inputs", {})) | set(new["inputs"]))
                if old.get("inputs", {}).get(k) != new["inputs"].get(k)]
    return "changed: " + ", ".join(changed) if changed else "fingerprint format changed"


def _last_complete_checkpoint(checkpoint_dir: Path, remove_incomplete: bool) -> str | None:
    # Trainer writes trainer_state.json last, so a checkpoint without it was cut short by the kill.
    for checkpoint in reversed(sort_checkpoints(str(checkpoint_dir))):
        if Path(checkpoint, TRAINER_STATE_NAME).exists():
            return checkpoint
        logger.warning("ignoring incomplete checkpoint %s", checkpoint)
        if remove_incomplete:
            shutil.rmtree(checkpoint)
    return None


def resume_checkpoint(checkpoint_dir: str | Path, fingerprint: dict[str, Any]) -> str | None:
    """Return the checkpoint to pass as `trainer.train(resume_from_checkpoint=...)`, or None.

    If ``checkpoint_dir`` holds checkpoints made under another fingerprint they are deleted (and the
    differing keys logged), so a stale optimizer state is never mixed into a new run. Safe under
    `accelerate launch`: the main process cleans up first, the other ranks then read the same state.
    """
    checkpoint_dir = Path(checkpoint_dir)
    fingerprint_file = checkpoint_dir / FINGERPRINT_FILE
    state = process_state()
    with state.main_process_first():
        if state.is_main_process:
            old = json.loads(fingerprint_file.read_text(encoding="utf-8")) if fingerprint_file.exists() else None
            if old != fingerprint and checkpoint_dir.exists() and any(checkpoint_dir.glob("checkpoint-*")):
                logger.warning("discarding checkpoints in %s (%s); starting fresh",
                               checkpoint_dir, _describe_change(old, fingerprint))
                shutil.rmtree(checkpoint_dir)
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            fingerprint_file.write_text(json.dumps(fingerprint, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        last = _last_complete_checkpoint(checkpoint_dir, remove_incomplete=state.is_main_process)
    if last is not None:
        logger.info("resuming from %s", last)
    return last


class ResumableRun:
    """The checkpoint folder a training run uses, the checkpoint it resumes from, and how it ends.

    Use as a context manager. In a dry run the checkpoints and the dvclive folder go to a scratch
    folder that is deleted on exit, nothing is resumed and :meth:`finish` writes nothing.
    """

    def __init__(self, checkpoints: str | Path, fingerprint: dict[str, Any], dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self._scratch = tempfile.TemporaryDirectory(prefix="replyrl-dry-run-") if dry_run else None
        self.checkpoints = Path(self._scratch.name, "checkpoints") if self._scratch else Path(checkpoints)
        self.resume = None if dry_run else resume_checkpoint(self.checkpoints, fingerprint)

    def __enter__(self) -> ResumableRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()

    @property
    def resumed_from_step(self) -> int:
        return int(Path(self.resume).name.split("-")[-1]) if self.resume else 0

    def live_dir(self, live: str | Path | None) -> Path | None:
        """Where dvclive writes: ``live``, or the scratch folder in a dry run."""
        return Path(self._scratch.name, "live") if self._scratch else (Path(live) if live is not None else None)

    def finish(self, trainer: Trainer, out: str | Path | None, write: Callable[[Path], None]) -> bool:
        """After training: ``write(tmp)`` fills ``out`` atomically, then the checkpoints are deleted.

        Only the main process writes (under `accelerate launch` all wait for it); a dry run or
        ``out`` None writes nothing and keeps the checkpoints. Returns whether this process wrote.
        """
        trainer.accelerator.wait_for_everyone()
        if self.dry_run or out is None or not trainer.is_world_process_zero():
            return False
        with atomic_path(out) as tmp:
            write(tmp)
        logger.info("process %d of %d wrote %s", trainer.accelerator.process_index, trainer.accelerator.num_processes, out)
        # A finished run must not "resume" into a no-op when the stage is forced to rerun.
        shutil.rmtree(self.checkpoints)
        return True
