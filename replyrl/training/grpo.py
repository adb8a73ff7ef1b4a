"""GRPO refinement of an SFT warm-start with TRL's `GRPOTrainer`.

Hand-off (a known trap: resuming GRPO "from" a saved SFT adapter often silently trains a fresh
adapter on the bare base): the warm-start adapter is merged into the base weights, and a NEW LoRA
adapter is trained on top. Its B matrices start at zero, so at step 0 the policy is exactly the
warm-start, and the reference policy (the same model with the adapter disabled) stays the
warm-start for the whole run. The saved folder holds only the new adapter plus a `lineage.json`
naming the base and the merged SFT adapter, so `replyrl.models.policy.load_policy` rebuilds it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from replyrl.config import GRPOStageConfig, PromptConfig, RewardConfig, to_dict
from replyrl.data.schema import group_key
from replyrl.generation import SamplingConfig
from replyrl.io import atomic_path, read_jsonl, save_figure
from replyrl.models.encoder import load_encoder
from replyrl.models.policy import load_policy, read_lineage, write_lineage
from replyrl.prompts import build_prompt
from replyrl.training.checkpoints import resume_checkpoint, run_fingerprint
from replyrl.training.grpo_callbacks import KLAlarm, SampleWriter
from replyrl.training.grpo_rewards import RewardFunc, build_reward_funcs
from replyrl.training.precision import precision_kwargs
from replyrl.training.tracking import dvclive_callback

logger = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
# The original recipe's metric names (alias -> TRL's name), logged beside TRL's; dvclive turns
# `train_x` into `train/x`. The penalty is the KL term as it enters the loss: kl_coeff (TRL's beta) * kl.
RECIPE_NAMES = {"train_policy_loss": "loss", "train_avg_reward": "reward", "train_reward_std": "reward_std",
                "train_kl_penalty": "kl"}


# ---- data


def phase2_dataset(
    rows: Sequence[dict], tokenizer: PreTrainedTokenizerBase, prompt_config: PromptConfig, source: str = "phase-2 data"
) -> Dataset:
    """One row per distinct tweet: ``prompt`` (the exact text the policy sees), ``tweet`` and ``group_id``.

    Phase-2 files hold several replies per tweet; GRPO needs each tweet once. ``group_id`` (the
    tweet's `group_key`) is what the diversity bonus groups completions by.
    """
    seen: set[str] = set()
    prompts, tweets, ids = [], [], []
    for i, row in enumerate(rows, 1):
        if not isinstance(row.get("tweet"), str) or not row["tweet"].strip():
            raise ValueError(f"{source}: row {i}: field 'tweet' must be a non-empty string, got {row.get('tweet')!r}")
        key = group_key(row)
        if key in seen:
            continue
        seen.add(key)
        prompts.append(build_prompt(tokenizer, row["tweet"], prompt_config))
        tweets.append(row["tweet"])
        ids.append(key)
    if not prompts:
        raise ValueError(f"{source}: no rows")
    return Dataset.from_dict({"prompt": prompts, "tweet": tweets, "group_id": ids})


# ---- trainer


class ReplyGRPOTrainer(GRPOTrainer):
    """`GRPOTrainer` plus three things TRL has no option for.

    Advantage clipping (the original recipe's safeguard), a hard stop on a non-finite loss before
    it reaches the weights, and the original recipe's metric names beside TRL's.
    """

    def __init__(self, *args: Any, advantage_clip: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.advantage_clip = advantage_clip

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        advantages = output["advantages"]
        mode = "train" if self.model.training else "eval"
        # `_metrics` is the buffer TRL averages into each log line; subclasses add their metrics there.
        clipped = (advantages.abs() > self.advantage_clip).float().mean().item()
        self._metrics[mode]["advantages/clipped_frac"].append(clipped)
        output["advantages"] = advantages.clamp(-self.advantage_clip, self.advantage_clip)
        return output

    def training_step(
        self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        # Raised before the optimizer step, so the weights (and every checkpoint) stay the last good ones.
        if not torch.isfinite(loss).all():
            raise FloatingPointError(
                f"non-finite GRPO loss ({loss.item()}) at step {self.state.global_step + 1}; no update was applied. "
                f"Checkpoints in {self.args.output_dir} hold the last good state; lower grpo.learning_rate or "
                "check the reward before rerunning"
            )
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training:
            # TRL merges its metric buffer into `logs` inside its own log(); read the same buffer here so
            # the aliases also land in `state.log_history` (replayed into the plots on resume).
            buffer = self._metrics["train"]
            for alias, key in RECIPE_NAMES.items():
                values = [v for v in buffer.get(key, []) if not math.isnan(v)]
                value = logs.get(key, sum(values) / len(values) if values else None)
                if value is not None:
                    logs[alias] = self.beta * value if alias == "train_kl_penalty" else value
        super().log(logs, start_time)


def grpo_args(
    config: GRPOStageConfig, output_dir: str | Path, seed: int, reward_weights: Sequence[float]
) -> GRPOConfig:
    """TRL config with every field whose default changed across TRL versions set explicitly."""
    per_device = config.prompts_per_step * config.num_generations
    return GRPOConfig(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        # objective
        beta=config.kl_coeff,
        loss_type=config.loss_type,
        scale_rewards=config.scale_rewards,
        epsilon=config.epsilon,
        num_iterations=config.num_iterations,
        reward_weights=list(reward_weights),
        multi_objective_aggregation="sum_then_normalize",  # the recipe: one weighted reward, then group advantages
        mask_truncated_completions=False,
        disable_dropout=True,  # dropout would make policy and reference log-probs differ at step 0
        # rollouts: one generate call per optimizer step covering every prompt's whole group
        num_generations=config.num_generations,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        generation_batch_size=per_device * config.gradient_accumulation_steps,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=0,
        # optimisation
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        max_grad_norm=config.max_grad_norm,
        max_steps=config.max_steps,
        activation_checkpointing=config.activation_checkpointing,
        **precision_kwargs(config.bf16),
        # checkpoints and logs
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=config.logging_steps,
        report_to="none",  # dvclive is attached as a callback writing only to the stage's folder
        log_completions=False,
        remove_unused_columns=False,  # the reward functions need the `tweet` and `group_id` columns
        shuffle_dataset=True,
        disable_tqdm=False,
    )


def build_trainer(
    config: GRPOStageConfig,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dataset: Dataset,
    reward_funcs: Sequence[RewardFunc],
    reward_weights: Sequence[float],
    output_dir: str | Path,
    seed: int,
    callbacks: Sequence[TrainerCallback] = (),
) -> ReplyGRPOTrainer:
    """Trainer for a plain (already merged) warm-start ``model``; a new LoRA adapter is added on top."""
    tokenizer.padding_side = "left"  # TRL generates from left-padded prompts
    args = grpo_args(config, output_dir, seed, reward_weights)
    if args.bf16:
        # TRL generates and scores the reference outside its bf16 autocast, so only bf16 weights put
        # those (about half of a step) on the hardware's bf16 units. Policy and reference share these
        # weights: the reference is the warm-start rounded to bf16; the LoRA weights stay float32.
        model = model.to(torch.bfloat16)
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.lora_alpha,
        lora_dropout=0.0,  # see disable_dropout above
        target_modules=list(config.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    return ReplyGRPOTrainer(
        model=model,
        reward_funcs=list(reward_funcs),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=list(callbacks),
        advantage_clip=config.advantage_clip,
    )


# ---- run, save, summarise


def save_policy(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, warm_start: str | Path, out_dir: str | Path
) -> None:
    """Write the GRPO adapter + tokenizer + lineage (base, then the merged warm-start chain) into ``out_dir``."""
    lineage = read_lineage(warm_start)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_lineage(out_dir, lineage["base"], [*lineage["merged"], warm_start])


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def summarize(log_history: Sequence[dict[str, Any]], reward_names: Sequence[str], kl_alarm: float) -> dict[str, Any]:
    """Stage metrics from the trainer's log history (which survives resumes): reward trend, KL, safeguards."""
    logs = [row for row in log_history if "reward" in row]
    if not logs:
        return {"steps": 0}
    # 10% of the logged steps, rounded up: 14 demo steps compare two steps at each end, not one.
    tenth = math.ceil(len(logs) / 10)

    def trend(key: str, name: str) -> dict[str, float | None]:
        values = [row[key] for row in logs if row.get(key) is not None]
        return {f"{name}/mean": _mean(values), f"{name}/final": values[-1] if values else None,
                f"{name}/first_10pct": _mean(values[:tenth]), f"{name}/last_10pct": _mean(values[-tenth:])}

    # `reward` is the weighted total GRPO maximises; `reward/<name>` each term before weighting.
    metrics: dict[str, Any] = {"steps": logs[-1]["step"], **trend("reward", "reward")}
    metrics["reward/delta"] = metrics["reward/last_10pct"] - metrics["reward/first_10pct"]
    for name in reward_names:
        metrics.update(trend(f"rewards/{name}/mean", f"reward/{name}"))
    metrics.update(trend("completions/mean_length", "completion_tokens"))
    kls = [row["kl"] for row in logs if row.get("kl") is not None]
    metrics.update({"kl/mean": _mean(kls), "kl/max": max(kls, default=None), "kl/final": kls[-1] if kls else None,
                    "kl/alarm_steps": sum(kl > kl_alarm for kl in kls)})
    metrics["frac_reward_zero_std/mean"] = _mean([row["frac_reward_zero_std"] for row in logs])
    metrics["train_time_s"] = float(sum(row.get("step_time", 0.0) for row in logs))
    return metrics


def plot_history(
    log_history: Sequence[dict[str, Any]], reward_names: Sequence[str], kl_alarm: float, path: str | Path
) -> None:
    """PNG of the run for offline viewing (`dvc plots` HTML needs the network): rewards, KL, reply length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = [row for row in log_history if "reward" in row]
    steps = [row["step"] for row in logs]
    fig, (rewards, kl, length) = plt.subplots(1, 3, figsize=(15, 4))
    for key, label in [("reward", "total (weighted)"), *((f"rewards/{n}/mean", n) for n in reward_names)]:
        rewards.plot(steps, [row.get(key) for row in logs], label=label)
    rewards.set(xlabel="step", title="mean reward per step")
    rewards.legend()
    kl.plot(steps, [row.get("kl") for row in logs])
    kl.axhline(kl_alarm, color="r", ls="--", lw=0.8, label=f"kl_alarm {kl_alarm:g}")
    kl.set_yscale("symlog", linthresh=1e-3)  # typical KLs (1e-3..1) and the alarm (10) on one axis; step 0 is 0
    kl.set(xlabel="step", title="KL to the warm-start")
    kl.legend()
    length.plot(steps, [row.get("completions/mean_length") for row in logs])
    length.set(xlabel="step", title="mean reply length (tokens)")
    save_figure(fig, path)


def train_grpo(
    config: GRPOStageConfig,
    *,
    warm_start: str | Path,
    rows: Sequence[dict],
    prompt_config: PromptConfig,
    reward_funcs: Sequence[RewardFunc],
    reward_weights: Sequence[float],
    seed: int,
    checkpoint_dir: str | Path,
    out_dir: str | Path,
    live_dir: str | Path | None,
    fingerprint: dict[str, Any],
    plot_path: str | Path | None = None,
    source: str = "phase-2 data",
    dry_run: bool = False,
) -> dict[str, Any]:
    """Train a new LoRA adapter with GRPO on top of the merged ``warm_start``; return the stage metrics.

    ``rows`` are phase-2 records (``tweet``, optional ``tweet_id``) read from ``source`` (named in
    errors). Resumes from ``checkpoint_dir`` when its fingerprint matches. ``dry_run`` runs one step
    in a temporary folder and writes nothing else: a quick end-to-end check of data, rewards and model.
    """
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if dry_run:
            config = dataclasses.replace(config, max_steps=1)
            checkpoint_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="grpo-dry-run-"))
        model, tokenizer = load_policy(warm_start, merge=True)
        dataset = phase2_dataset(rows, tokenizer, prompt_config, source)
        last = None if dry_run else resume_checkpoint(checkpoint_dir, fingerprint)
        picks = dataset.select(range(min(config.sample_prompts, len(dataset))))
        samples = SampleWriter(
            Path(checkpoint_dir, SAMPLES_FILE), picks["tweet"], picks["group_id"], picks["prompt"], reward_funcs,
            SamplingConfig(num_samples=2, temperature=config.temperature, top_p=config.top_p,
                           max_new_tokens=config.max_completion_length),
            config.sample_every,
        )
        callbacks: list[TrainerCallback] = [samples, KLAlarm(config.kl_alarm)]
        if live_dir is not None and not dry_run:
            callbacks.append(dvclive_callback(live_dir))
        trainer = build_trainer(config, model, tokenizer, dataset, reward_funcs, reward_weights, checkpoint_dir, seed,
                                callbacks)
        logger.info("GRPO on %d phase-2 tweets: %d prompts x %d generations per step, %d steps, reward weights %s",
                    len(dataset), config.prompts_per_step, config.num_generations, config.max_steps,
                    dict(zip(trainer.reward_func_names, reward_weights)))
        trainer.train(resume_from_checkpoint=last)

        metrics = summarize(trainer.state.log_history, trainer.reward_func_names, config.kl_alarm)
        metrics["wall_time_s"] = time.perf_counter() - started
        metrics["resumed_from_step"] = int(Path(last).name.split("-")[-1]) if last else 0
    trainer.accelerator.wait_for_everyone()
    if dry_run or not trainer.is_world_process_zero():  # under `accelerate launch` one process writes
        return metrics
    with atomic_path(out_dir) as tmp:
        save_policy(trainer.model, tokenizer, warm_start, tmp)
        shutil.copy(samples.path, Path(tmp, SAMPLES_FILE))
    # As in `sft`: a finished run must not "resume" into a no-op when the stage is forced to rerun.
    shutil.rmtree(checkpoint_dir)
    if plot_path is not None:
        plot_history(trainer.state.log_history, trainer.reward_func_names, config.kl_alarm, plot_path)
    if metrics.get("kl/alarm_steps"):
        logger.warning("KL exceeded grpo.kl_alarm=%s at %d logged steps (max %.3g)",
                       config.kl_alarm, metrics["kl/alarm_steps"], metrics["kl/max"])
    return metrics


def run_grpo_stage(
    config: GRPOStageConfig,
    prompt_config: PromptConfig,
    reward_config: RewardConfig,
    *,
    warm_start: str | Path,
    data: str | Path,
    encoder_dir: str | Path,
    reward_model_dir: str | Path,
    checkpoint_dir: str | Path,
    out_dir: str | Path,
    live_dir: str | Path,
    plot_path: str | Path,
    seed: int,
    encoder_batch_size: int = 64,
    dry_run: bool = False,
) -> dict[str, Any]:
    """The `grpo` stage: load the rewards and phase-2 data named by the paths, then `train_grpo`."""
    weights = config.reward_weights()
    encoder = load_encoder(encoder_dir)
    funcs = build_reward_funcs(list(weights), reward_config, encoder, reward_model_dir, encoder_batch_size)
    # Anything that changes the run's outcome must change the fingerprint, or a stale checkpoint resumes.
    inputs = [warm_start, data, encoder_dir] + ([reward_model_dir] if "learned" in weights else [])
    params = {"grpo": to_dict(config), "prompt": to_dict(prompt_config), "reward": to_dict(reward_config), "seed": seed}
    return train_grpo(
        config, warm_start=warm_start, rows=read_jsonl(data), prompt_config=prompt_config, reward_funcs=funcs,
        reward_weights=list(weights.values()), seed=seed, checkpoint_dir=checkpoint_dir, out_dir=out_dir,
        live_dir=live_dir, fingerprint=run_fingerprint(params, inputs), plot_path=plot_path, source=str(data),
        dry_run=dry_run,
    )
