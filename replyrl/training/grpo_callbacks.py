"""Callbacks of the `grpo` stage: sample generations and training rollouts for a person to read, and the
KL alarm."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

from replyrl.io import atomic_path, read_jsonl, write_jsonl
from replyrl.sampling import SamplingConfig, generate_replies
from replyrl.training.grpo_rewards import RewardFunc

logger = logging.getLogger(__name__)


def rows_up_to(path: Path, step: int) -> list[dict[str, Any]]:
    """The rows of ``path`` (JSONL, if any) up to ``step``: a run resumed from the checkpoint of ``step``
    redoes the later steps, whose rows are written again."""
    return [row for row in read_jsonl(path) if row["step"] <= step] if path.exists() else []


class SampleWriter(TrainerCallback):
    """Samples replies to a fixed set of tweets at the start, every ``every`` steps and at the end.

    Rows (step, tweet, reply, each reward) are appended to ``path``, which lives beside the
    checkpoints so that a resumed run keeps the samples of the steps it does not redo. Under
    `accelerate launch` only the main process samples and writes (the file is shared).
    """

    def __init__(
        self,
        path: str | Path,
        tweets: Sequence[str],
        group_ids: Sequence[str],
        prompts: Sequence[str],
        reward_funcs: Sequence[RewardFunc],
        sampling: SamplingConfig,
        every: int,
    ) -> None:
        self.path = Path(path)
        self.tweets, self.group_ids, self.prompts = list(tweets), list(group_ids), list(prompts)
        self.reward_funcs = list(reward_funcs)
        self.sampling = sampling
        self.every = every
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not state.is_world_process_zero:
            return
        self.rows = rows_up_to(self.path, state.global_step)
        self._sample(state.global_step, model, processing_class)

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.is_world_process_zero and state.global_step % self.every == 0:
            self._sample(state.global_step, model, processing_class)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.is_world_process_zero:
            self._sample(state.global_step, model, processing_class)

    def _sample(self, step: int, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        if any(row["step"] == step for row in self.rows):  # e.g. the end of a run that was already finished
            return
        replies = generate_replies(model, tokenizer, self.prompts, self.sampling, batch_size=len(self.prompts))
        n = self.sampling.num_samples
        columns = {
            "prompts": [p for p in self.prompts for _ in range(n)],
            "tweet": [t for t in self.tweets for _ in range(n)],
            "group_id": [g for g in self.group_ids for _ in range(n)],
            "completions": [r for group in replies for r in group],
        }
        # Token ids as TRL passes them to length-based rewards (the overlong punishment): re-tokenised, with
        # the EOS a finished reply ended with (one that stopped short of max_new_tokens).
        cap, eos = self.sampling.max_new_tokens, tokenizer.eos_token_id
        columns["completion_ids"] = [ids + [eos] * (len(ids) < cap) for ids in
                                     tokenizer(columns["completions"], add_special_tokens=False)["input_ids"]]
        scores = {f.__name__: f(**columns) for f in self.reward_funcs}
        for i, reply in enumerate(columns["completions"]):
            self.rows.append({
                "step": step, "group_id": columns["group_id"][i], "tweet": columns["tweet"][i], "reply": reply,
                "rewards": {name: float(values[i]) for name, values in scores.items()},
            })
        write_jsonl(self.path, self.rows)


class RolloutWriter(TrainerCallback):
    """Writes the rollouts trained on at step 1, every ``every`` steps and the last step to ``path`` (CSV).

    One row per rollout: ``step``, then the columns of ``rollouts()`` (`ReplyGRPOTrainer.rollouts`, every
    process's rollouts). ``path`` lives in the dvclive folder, which DVC clears before rerunning the stage,
    so the rows are also kept in ``backup`` (JSONL, beside the checkpoints): a resumed run starts from
    those up to its checkpoint. Under `accelerate launch` only the main process writes.
    """

    def __init__(self, path: str | Path, backup: str | Path, rollouts: Callable[[], list[dict[str, Any]]],
                 every: int) -> None:
        self.path, self.backup = Path(path), Path(backup)
        self.rollouts = rollouts
        self.every = every
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.rows = rows_up_to(self.backup, state.global_step)
            self._write()  # also replaces the file of an earlier run

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        # The trainer's last rollouts are this step's: one generation serves one or more whole steps (grpo_args).
        if state.is_world_process_zero and (step == 1 or step % self.every == 0 or step == state.max_steps):
            self.rows += [{"step": step, **row} for row in self.rollouts()]
            self._write()

    def _write(self) -> None:
        write_jsonl(self.backup, self.rows)
        with atomic_path(self.path) as tmp:
            pd.DataFrame(self.rows).to_csv(tmp, index=False, float_format="%.6g")


class KLAlarm(TrainerCallback):
    """Warn when the mean KL to the warm-start exceeds ``threshold`` (the original recipe: > 10 means trouble)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def on_log(self, args, state, control, logs=None, **kwargs):
        kl = (logs or {}).get("kl")
        if kl is not None and kl > self.threshold:
            logger.warning("KL %.3g > grpo.kl_alarm %.3g at step %d: the policy is drifting far from the warm-start",
                           kl, self.threshold, state.global_step)
