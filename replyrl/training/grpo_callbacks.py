"""Callbacks of the `grpo` stage: sample generations for a person to read, and the KL alarm."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

from replyrl.io import read_jsonl, write_jsonl
from replyrl.sampling import SamplingConfig, generate_replies
from replyrl.training.grpo_rewards import RewardFunc

logger = logging.getLogger(__name__)


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
        # A resumed run redoes the steps after its checkpoint: drop samples taken after it.
        old = read_jsonl(self.path) if self.path.exists() else []
        self.rows = [row for row in old if row["step"] <= state.global_step]
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
        scores = {f.__name__: f(**columns) for f in self.reward_funcs}
        for i, reply in enumerate(columns["completions"]):
            self.rows.append({
                "step": step, "group_id": columns["group_id"][i], "tweet": columns["tweet"][i], "reply": reply,
                "rewards": {name: float(values[i]) for name, values in scores.items()},
            })
        write_jsonl(self.path, self.rows)


class KLAlarm(TrainerCallback):
    """Warn when the mean KL to the warm-start exceeds ``threshold`` (the original recipe: > 10 means trouble)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def on_log(self, args, state, control, logs=None, **kwargs):
        kl = (logs or {}).get("kl")
        if kl is not None and kl > self.threshold:
            logger.warning("KL %.3g > grpo.kl_alarm %.3g at step %d: the policy is drifting far from the warm-start",
                           kl, self.threshold, state.global_step)
