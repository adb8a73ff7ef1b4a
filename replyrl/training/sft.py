"""LoRA SFT of the base policy on (tweet, reply) rows: baseline (TRL `SFTTrainer`) or polychromic.

Both methods share everything here: the data (prompt built by `replyrl.prompts.build_prompt`, so the
training prompt is the evaluation prompt; loss on the reply + EOS only), a validation split carved
from the training file, LoRA, best-checkpoint selection by validation CE, dvclive logging, and
resumable checkpoints. The method only picks the trainer class and its extra config.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset
from peft import LoraConfig
from transformers import PreTrainedTokenizerBase
from trl import SFTConfig

from replyrl.configs.loader import to_dict
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.reward import RewardConfig
from replyrl.configs.sft import SFT_METHODS, PolychromicTermConfig, SFTStageConfig
from replyrl.data.groups import holdout_groups
from replyrl.io import read_jsonl, write_json
from replyrl.models.base import load_base
from replyrl.models.encoder import load_encoder
from replyrl.models.lora import check_lora_targets
from replyrl.models.policy import save_adapter
from replyrl.models.precision import describe_machine, precision_kwargs
from replyrl.prompts import build_prompt
from replyrl.rewards import load_reward
from replyrl.training.checkpoints import ResumableRun, run_fingerprint
from replyrl.training.polychromic import PolychromicSFTConfig, PolychromicSFTTrainer
from replyrl.training.report import plot_sft_losses
from replyrl.training.sft_trainer import ReplySFTTrainer
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
        eval_on_start=True,  # the validation loss before any step: what training changed, not just where it ended
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
    term = {f.name: getattr(config.polychromic, f.name) for f in dataclasses.fields(PolychromicTermConfig)}
    return PolychromicSFTConfig(**kwargs, **term)


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


def run_sft(
    config: SFTStageConfig,
    paths: SFTPaths,
    *,
    method: str,
    data: str,
    seed: int,
    prompt: PromptConfig,
    reward: RewardConfig | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Train one SFT variant (``method`` on the ``data`` file, one seed); return its run metrics.

    The adapter folder ``paths.out`` holds the LoRA adapter, the tokenizer, `params.json` and
    `lineage.json`, so `replyrl.models.policy.load_policy(paths.out)` loads the tuned policy.
    ``dry_run`` trains two steps in a scratch folder and writes nothing.
    """
    if method not in SFT_METHODS:
        raise ValueError(f"unknown SFT method {method!r}; choose one of {SFT_METHODS}")
    if dry_run:
        config = dry_run_config(config)
    record = run_record(config, method, data, seed, paths, prompt, reward)
    logger.info("sft run: %s", record)

    model, tokenizer = load_base(paths.base)
    check_lora_targets(model, config.lora.target_modules, f"{config.lora.SECTION}.target_modules")
    train_rows, val_rows = holdout_groups(load_sft_rows(paths.train_file), config.validation_fraction, seed)
    logger.info("%s: %d training rows, %d validation rows", paths.train_file, len(train_rows), len(val_rows))
    inputs = [paths.base, paths.train_file] + ([paths.encoder] if method == "polychromic" else [])
    with ResumableRun(paths.checkpoints, run_fingerprint(record, inputs), dry_run) as run:
        trainer_cls, extra = (ReplySFTTrainer, {}) if method == "baseline" else (
            PolychromicSFTTrainer, _polychromic_kwargs(config, paths, reward))
        live_callback = dvclive_callback(run.live_dir(paths.live))
        trainer = trainer_cls(
            model=model,
            args=trainer_config(config, method, data, seed, run.checkpoints),
            train_dataset=prompt_completion_dataset(train_rows, tokenizer, prompt),
            eval_dataset=prompt_completion_dataset(val_rows, tokenizer, prompt),
            processing_class=tokenizer,
            peft_config=lora_config(config),
            callbacks=[live_callback],
            **extra,
        )
        result = trainer.train(resume_from_checkpoint=run.resume)
        state = trainer.state
        eval_losses = [entry["eval_loss"] for entry in state.log_history if "eval_loss" in entry]
        metrics = {
            "start_eval_loss": eval_losses[0] if eval_losses else None,  # step 0 (absent when resumed)
            "best_eval_loss": state.best_metric,
            "best_step": state.best_global_step,
            "steps": state.global_step,
            "resumed_from_step": run.resumed_from_step,
            "train_minutes": result.metrics["train_runtime"] / 60,  # this call only, when resumed
            "train_rows": len(train_rows),
            "validation_rows": len(val_rows),
        }
        live_callback.write_summary(metrics)
        logger.info("%d steps in %.1f min on %s", state.global_step, metrics["train_minutes"], describe_machine())

        def write(folder: Path) -> None:
            # load_best_model_at_end put the best checkpoint's adapter back into the model.
            save_adapter(trainer.model, tokenizer, folder, paths.base, [])
            write_json(folder / PARAMS_FILE, record)

        if run.finish(trainer, paths.out, write) and paths.plot is not None:
            plot_sft_losses(state.log_history, paths.plot)
    return metrics
