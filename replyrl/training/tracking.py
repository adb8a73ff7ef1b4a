"""dvclive logging for Trainer-based stages, into a folder the stage declares in dvc.yaml.

transformers' `DVCLiveCallback` is used with three changes a resumable DVC stage needs: metrics are
logged against the trainer's global step (the stock callback counts log calls, so the train and eval
rows of one step land on different x values); a run resumed from a checkpoint first replays the
checkpoint's log history, because DVC wiped the folder before rerunning the stage; and the
TrainingArguments dump (`params.yaml`) is not written, since the stage saves the exact params it
used beside its model.

Declare in dvc.yaml ``<live_dir>/plots/metrics`` as plots and ``<live_dir>/metrics.json`` as
metrics (both ``cache: false``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers.integrations import DVCLiveCallback

from dvclive import Live
from replyrl.models.precision import process_state


class StepDVCLiveCallback(DVCLiveCallback):
    """`DVCLiveCallback` whose x axis is `state.global_step`, with resumed history replayed."""

    def setup(self, args, state, model):
        self._initialized = True

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        super().on_train_begin(args, state, control, model=model, **kwargs)
        if state.is_world_process_zero:
            for logs in state.log_history:
                logs = dict(logs)
                self._log(args, state, control, logs.pop("step"), logs)

    def on_log(self, args, state, control, model=None, logs=None, **kwargs):
        if state.is_world_process_zero:
            self._log(args, state, control, state.global_step, logs or {})

    def _log(self, args, state, control, step: int, logs: dict[str, Any]) -> None:
        self.live.step = step
        # The parent maps names (eval_loss -> eval/loss), skips non-scalars and ends with next_step().
        super().on_log(args, state, control, logs=logs)

    def write_summary(self, metrics: Mapping[str, Any]) -> None:
        """Add run-level numbers (best eval loss, minutes...) to `<live_dir>/metrics.json`."""
        if self.live is not None:
            self.live.summary.update(metrics)
            self.live.make_summary()


def dvclive_callback(live_dir: str | Path) -> StepDVCLiveCallback:
    """Callback writing only into ``live_dir``: no `dvc.yaml` edits, no DVC experiment commits.

    Only the main process opens the folder (Live() wipes it); the others never log.
    """
    live = Live(str(live_dir), dvcyaml=False, save_dvc_exp=False) if process_state().is_main_process else None
    return StepDVCLiveCallback(live=live)
