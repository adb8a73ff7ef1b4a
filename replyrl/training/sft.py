"""LoRA SFT of the base policy on (tweet, reply) rows: baseline (TRL `SFTTrainer`) or polychromic.

Both methods share everything here: the data (prompt built by `replyrl.prompts.build_prompt`, so the
training prompt is the evaluation prompt; loss on the reply + EOS only), a validation split carved
from the training file, LoRA, best-checkpoint selection by validation CE, dvclive logging, and
resumable checkpoints. The method only picks the trainer class and its extra config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset
from peft import LoraConfig
from sklearn.model_selection import GroupShuffleSplit
from transformers import PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer

from replyrl.config import PromptConfig, RewardConfig, SFTStageConfig, to_dict
from replyrl.data.schema import group_key
from replyrl.io import atomic_path, read_jsonl, save_figure, write_json
from replyrl.models.base import load_base
from replyrl.models.encoder import load_encoder
from replyrl.models.policy import write_lineage
from replyrl.prompts import build_prompt
from replyrl.rewards import load_reward
from replyrl.training.checkpoints import resume_checkpoint, run_fingerprint
from replyrl.training.polychromic import PolychromicSFTConfig, PolychromicSFTTrainer
from replyrl.training.precision import precision_kwargs
from replyrl.training.tracking import dvclive_callback

logger = logging.getLogger(__name__)

PARAMS_FILE = "params.json"


@dataclass
class SFTPaths:
    """Where a run reads and writes. With ``out`` None the adapter is not saved (and checkpoints stay)."""

    base: Path
    train_file: Path
    checkpoints: Path
    live: Path
    out: Path | None = None
    encoder: Path | None = None  # polychromic only
    plot: Path | None = None  # PNG of the loss curves, for offline viewing


def load_sft_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read training rows; each needs non-empty string ``tweet`` and ``reply`` fields."""
    rows = read_jsonl(path)
    if not rows:
        raise ValueError(f"{path}: no rows to train on")
    for number, row in enumerate(rows, 1):
        for name in ("tweet", "reply"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise ValueError(f"{path}: row {number}: field {name!r} must be a non-empty string, got {row.get(name)!r}")
    return rows


def split_validation(
    rows: Sequence[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out ``fraction`` of the tweets (all replies of a tweet on one side) for validation."""
    groups = [group_key(row) for row in rows]
    if len(set(groups)) < 2:
        raise ValueError(f"need at least 2 distinct tweets to carve a validation split, got {len(set(groups))}")
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    train_idx, val_idx = next(splitter.split(rows, groups=groups))
    return [rows[i] for i in train_idx], [rows[i] for i in val_idx]


def prompt_completion_dataset(
    rows: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, prompt: PromptConfig
) -> Dataset:
    """TRL prompt-completion rows; TRL appends EOS to the completion and masks the prompt in the loss.

    The raw `tweet` is kept for the polychromic quality score (plain SFT drops the column).
    """
    return Dataset.from_list(
        [{"prompt": build_prompt(tokenizer, row["tweet"], prompt), "completion": row["reply"], "tweet": row["tweet"]}
         for row in rows]
    )


def lora_config(config: SFTStageConfig) -> LoraConfig:
    return LoraConfig(task_type="CAUSAL_LM", **to_dict(config.lora))


def trainer_config(
    config: SFTStageConfig, method: str, data: str, seed: int, output_dir: Path
) -> SFTConfig | PolychromicSFTConfig:
    """The TRL config of one run: `sft.train` knobs, epochs for ``data``, and the method's own fields."""
    train = to_dict(config.train)
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        seed=seed,
        num_train_epochs=getattr(config.epochs, data),
        eval_strategy="steps",
        save_strategy="steps",
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        completion_only_loss=True,
        report_to="none",  # dvclive is added as a callback, writing only into the stage's plots folder
        **precision_kwargs(train.pop("bf16")),
        **train,
    )
    if method == "baseline":
        return SFTConfig(**kwargs)
    polychromic = to_dict(config.polychromic)
    polychromic.pop("quality")  # picks the quality function, not a trainer setting
    return PolychromicSFTConfig(**kwargs, **polychromic)


def dry_run_config(config: SFTStageConfig) -> SFTStageConfig:
    """Two optimiser steps that still exercise logging, evaluation, saving and the set term."""
    train = dataclasses.replace(config.train, max_steps=2, logging_steps=1, eval_steps=1, save_steps=1)
    polychromic = dataclasses.replace(config.polychromic, generation_steps=1)
    return dataclasses.replace(config, train=train, polychromic=polychromic)


def run_record(
    config: SFTStageConfig, method: str, data: str, seed: int, paths: SFTPaths, prompt: PromptConfig,
    reward: RewardConfig | None,
) -> dict[str, Any]:
    """The exact params a run used: saved as params.json and hashed for checkpoint resume."""
    record: dict[str, Any] = {
        "method": method,
        "data": data,
        "seed": seed,
        "base": str(paths.base),
        "train_file": str(paths.train_file),
        "validation_fraction": config.validation_fraction,
        "train": to_dict(config.train),
        "lora": to_dict(config.lora),
        "epochs": getattr(config.epochs, data),
        "prompt": to_dict(prompt),
    }
    if method == "polychromic":
        record["polychromic"] = to_dict(config.polychromic)
        if config.polychromic.quality == "heuristic":
            record["reward.heuristic"] = to_dict(reward.heuristic)
    return record


def _polychromic_kwargs(config: SFTStageConfig, paths: SFTPaths, reward: RewardConfig | None) -> dict[str, Any]:
    """The trainer's extra arguments: the encoder for diversity and the quality function."""
    if paths.encoder is None:
        raise ValueError("polychromic SFT needs an encoder folder (paths.encoder)")
    encoder = load_encoder(paths.encoder)
    quality_fn = None
    if config.polychromic.quality == "heuristic":
        if reward is None:
            raise ValueError("sft.polychromic.quality is 'heuristic' but no reward config was given")
        quality_fn = load_reward("heuristic", reward, encoder)
    return {"encoder": encoder, "quality_fn": quality_fn}


def plot_losses(log_history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """PNG of train/eval loss (and, for polychromic, CE and set diversity): `dvc plots` HTML needs the network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key: str) -> tuple[list[int], list[float]]:
        rows = [row for row in log_history if key in row]
        return [row["step"] for row in rows], [row[key] for row in rows]

    polychromic = any("polychromic/set_diversity" in row for row in log_history)
    fig, axes = plt.subplots(1, 2 if polychromic else 1, figsize=(12 if polychromic else 6, 4), squeeze=False)
    losses = axes[0][0]
    for key, label in [("loss", "train loss"), ("ce_loss", "train CE"), ("eval_loss", "eval loss (CE)")]:
        steps, values = series(key)
        if steps:
            losses.plot(steps, values, marker="o" if key == "eval_loss" else None, label=label)
    losses.set(xlabel="step", title="loss")
    losses.legend()
    if polychromic:
        diversity = axes[0][1]
        diversity.plot(*series("polychromic/set_diversity"), label="set diversity")
        diversity.plot(*series("polychromic/set_score"), label="f(set)")
        diversity.set(xlabel="step", title="sampled sets")
        diversity.legend()
    save_figure(fig, path)


def run_sft(
    method: str,
    data: str,
    seed: int,
    paths: SFTPaths,
    config: SFTStageConfig,
    prompt: PromptConfig,
    reward: RewardConfig | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Train one SFT variant; write the adapter folder to ``paths.out`` unless ``dry_run``.

    The folder holds the LoRA adapter, the tokenizer, `params.json` and `lineage.json`, so
    `replyrl.models.policy.load_policy(paths.out)` loads the tuned policy. Returns run metrics.
    """
    if method not in ("baseline", "polychromic"):
        raise ValueError(f"unknown SFT method {method!r}; choose 'baseline' or 'polychromic'")
    if dry_run:
        config = dry_run_config(config)
    record = run_record(config, method, data, seed, paths, prompt, reward)
    logger.info("sft run: %s", record)

    model, tokenizer = load_base(paths.base)
    rows = load_sft_rows(paths.train_file)
    train_rows, val_rows = split_validation(rows, config.validation_fraction, seed)
    logger.info("%s: %d training rows, %d validation rows", paths.train_file, len(train_rows), len(val_rows))

    with contextlib.ExitStack() as stack:
        checkpoints, live = paths.checkpoints, paths.live
        if dry_run:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sft-dry-run-")))
            checkpoints, live = scratch / "checkpoints", scratch / "live"
        args = trainer_config(config, method, data, seed, checkpoints)
        trainer_cls, extra = (SFTTrainer, {}) if method == "baseline" else (
            PolychromicSFTTrainer, _polychromic_kwargs(config, paths, reward))
        inputs = [paths.base, paths.train_file] + ([paths.encoder] if method == "polychromic" else [])
        resume = resume_checkpoint(checkpoints, run_fingerprint(record, inputs))
        live_callback = dvclive_callback(live)
        trainer = trainer_cls(
            model=model,
            args=args,
            train_dataset=prompt_completion_dataset(train_rows, tokenizer, prompt),
            eval_dataset=prompt_completion_dataset(val_rows, tokenizer, prompt),
            processing_class=tokenizer,
            peft_config=lora_config(config),
            callbacks=[live_callback],
            **extra,
        )
        result = trainer.train(resume_from_checkpoint=resume)
        state = trainer.state
        metrics = {
            "best_eval_loss": state.best_metric,
            "best_step": state.best_global_step,
            "steps": state.global_step,
            "resumed_from_step": int(Path(resume).name.split("-")[-1]) if resume else 0,
            "train_minutes": result.metrics["train_runtime"] / 60,  # this call only, when resumed
            "train_rows": len(train_rows),
            "validation_rows": len(val_rows),
        }
        live_callback.write_summary(metrics)

    trainer.accelerator.wait_for_everyone()
    if not dry_run and paths.out is not None and trainer.is_world_process_zero():
        with atomic_path(paths.out) as tmp:
            # load_best_model_at_end put the best checkpoint's adapter back into the model.
            trainer.model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_json(tmp / PARAMS_FILE, record)
            write_lineage(tmp, paths.base, [])
        if paths.plot is not None:
            plot_losses(trainer.state.log_history, paths.plot)
        # A finished run must not "resume" into a no-op when the stage is forced to rerun.
        shutil.rmtree(paths.checkpoints)
    return metrics
