"""The `grpo` stage: refine an SFT warm-start with GRPO against the reward, then save the new adapter.

The warm-start adapter is merged into the base and a new LoRA adapter trained on top (see
`replyrl.training.grpo_trainer`). The saved folder holds only the new adapter plus a `lineage.json`
naming the base and the merged SFT adapter, so `replyrl.models.policy.load_policy` rebuilds it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase, TrainerCallback

from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.loader import to_dict
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.reward import RewardConfig
from replyrl.data.groups import tweet_key
from replyrl.data.schema import CONTEXT_FIELD
from replyrl.io import read_jsonl
from replyrl.models.encoder import encode, load_encoder
from replyrl.models.lora import check_lora_targets
from replyrl.models.policy import load_policy, read_lineage, save_adapter
from replyrl.models.precision import check_vllm, describe_machine
from replyrl.prompts import build_prompt
from replyrl.sampling import SamplingConfig
from replyrl.training.checkpoints import ResumableRun, run_fingerprint
from replyrl.training.grpo_callbacks import KLAlarm, RolloutWriter, SampleWriter
from replyrl.training.grpo_rewards import RewardFunc, build_reward_funcs, reward_weights
from replyrl.training.grpo_trainer import Monitor, build_trainer
from replyrl.training.report import plot_grpo_history, summarize_grpo
from replyrl.training.tracking import dvclive_callback

logger = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
COMPLETIONS_FILE = "completions.csv"  # in the dvclive folder: the rollouts of the sampled steps


@dataclass
class GRPOPaths:
    """Where a run reads and writes. With ``out`` None nothing is saved (and checkpoints stay)."""

    warm_start: Path  # SFT adapter folder with a lineage.json
    data: Path  # phase-2 rows
    checkpoints: Path  # not a DVC out: a killed run resumes from here
    out: Path | None = None
    encoder: Path | None = None  # for the rewards built from params
    reward_model: Path | None = None  # for the learned reward
    live: Path | None = None  # dvclive folder: metrics, plots and the rollouts (COMPLETIONS_FILE)
    plot: Path | None = None  # PNG of the run, for offline viewing


def phase2_dataset(
    rows: Sequence[dict], tokenizer: PreTrainedTokenizerBase, prompt: PromptConfig, source: str = "phase-2 data",
    context: bool = False,
) -> Dataset:
    """One row per distinct tweet: ``prompt`` (the exact text the policy sees), ``tweet`` and ``group_id``.

    Phase-2 files hold several replies per tweet; GRPO needs each tweet once. ``group_id`` (the
    tweet's `tweet_key`) is what the diversity bonus groups completions by. With ``context`` the
    sample's chat ratings (`schema.CONTEXT_FIELD`) come along for a gold monitor; otherwise they stay
    out, so no reward function is ever handed them.
    """
    seen: set[str] = set()
    prompts, tweets, ids, contexts = [], [], [], []
    for i, row in enumerate(rows, 1):
        if not isinstance(row.get("tweet"), str) or not row["tweet"].strip():
            raise ValueError(f"{source}: row {i}: field 'tweet' must be a non-empty string, got {row.get('tweet')!r}")
        key = tweet_key(row)
        if key in seen:
            continue
        seen.add(key)
        prompts.append(build_prompt(tokenizer, row["tweet"], prompt))
        tweets.append(row["tweet"])
        ids.append(key)
        contexts.append(row.get(CONTEXT_FIELD))
    if not prompts:
        raise ValueError(f"{source}: no rows")
    columns = {"prompt": prompts, "tweet": tweets, "group_id": ids}
    if context and None in contexts:
        raise ValueError(f"{source}: every row needs {CONTEXT_FIELD!r} for the monitors, row "
                         f"{contexts.index(None) + 1} of the distinct tweets has none")
    return Dataset.from_dict(columns | ({CONTEXT_FIELD: contexts} if context else {}))


def save_policy(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, warm_start: str | Path, out: str | Path
) -> None:
    """Write the GRPO adapter + tokenizer + lineage (base, then the merged warm-start chain) into ``out``."""
    lineage = read_lineage(warm_start)
    save_adapter(model, tokenizer, out, lineage["base"], [*lineage["merged"], warm_start])


def run_grpo(
    config: GRPOStageConfig,
    paths: GRPOPaths,
    *,
    prompt: PromptConfig,
    reward: RewardConfig,
    seed: int,
    objective: str = "group",
    encoder_batch_size: int = 64,
    reward_funcs: Sequence[tuple[RewardFunc, float]] | None = None,
    monitors: Mapping[str, Monitor] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Train a new LoRA adapter with GRPO on top of the merged warm-start; return the stage metrics.

    ``objective`` is the run's advantage: ``group`` (plain GRPO) or a set objective (`GRPORun`).
    The rewards are the weighted terms of ``config`` (`reward_weights`) built from ``reward``, the
    encoder and the reward model, unless ``reward_funcs`` gives (function, weight) pairs. ``monitors``
    score every rollout for the logs and metrics only (`grpo_trainer.Monitor`). A killed
    run resumes from ``paths.checkpoints`` when params and inputs are unchanged. ``dry_run`` runs one
    step in a scratch folder and writes nothing: a quick end-to-end check of data, rewards and model.
    """
    started = time.perf_counter()
    if config.use_vllm:
        check_vllm("grpo.use_vllm")  # before minutes of loading, not deep inside TRL
    config.check_objective(objective)
    if dry_run:
        config = dataclasses.replace(config, max_steps=1)
    needs_encoder = reward_funcs is None or objective == "polychromic"
    encoder = load_encoder(paths.encoder) if needs_encoder else None
    if reward_funcs is None:
        weights = reward_weights(config)
        funcs = build_reward_funcs(list(weights), reward, encoder, paths.reward_model, encoder_batch_size, config)
        reward_funcs = list(zip(funcs, weights.values()))
    funcs, weights = [f for f, _ in reward_funcs], [w for _, w in reward_funcs]
    # Anything that changes the run's outcome must change the fingerprint, or a stale checkpoint resumes.
    names = [f.__name__ for f in funcs]
    inputs = [p for p in (paths.warm_start, paths.data, paths.encoder) if p is not None]
    inputs += [paths.reward_model] if "learned" in names and paths.reward_model is not None else []
    # grpo.runs is left out: adding a run to the list changes nothing about this one.
    grpo = {key: value for key, value in to_dict(config).items() if key != "runs"}
    params = {"grpo": grpo, "objective": objective, "prompt": to_dict(prompt), "reward": to_dict(reward), "seed": seed}

    model, tokenizer = load_policy(paths.warm_start, merge=True)
    check_lora_targets(model, config.lora.target_modules, f"{config.lora.SECTION}.target_modules")
    dataset = phase2_dataset(read_jsonl(paths.data), tokenizer, prompt, str(paths.data), context=bool(monitors))
    with ResumableRun(paths.checkpoints, run_fingerprint(params, inputs), dry_run) as run:
        picks = dataset.select(range(min(config.sample_prompts, len(dataset))))
        samples = SampleWriter(
            run.checkpoints / SAMPLES_FILE, picks["tweet"], picks["group_id"], picks["prompt"], funcs,
            SamplingConfig(num_samples=2, temperature=config.temperature, top_p=config.top_p,
                           max_new_tokens=config.max_completion_length),
            config.sample_every,
        )
        callbacks: list[TrainerCallback] = [samples, KLAlarm(config.kl_alarm)]
        live = run.live_dir(paths.live)
        if live is not None:
            callbacks.append(dvclive_callback(live))
        trainer = build_trainer(config, model, tokenizer, dataset, funcs, weights, run.checkpoints, seed, callbacks,
                                embed=encoder and functools.partial(encode, encoder, batch_size=encoder_batch_size),
                                monitors=monitors, objective=objective)
        if live is not None:
            trainer.add_callback(RolloutWriter(live / COMPLETIONS_FILE, run.checkpoints / "completions.jsonl",
                                               trainer.rollouts, config.sample_every))
        logger.info("GRPO on %d phase-2 tweets: %d prompts x %d generations per step, %d steps, reward weights %s",
                    len(dataset), config.prompts_per_step, config.num_generations, config.max_steps,
                    dict(zip(trainer.reward_func_names, weights)))
        trainer.train(resume_from_checkpoint=run.resume)

        history = trainer.state.log_history
        metrics = summarize_grpo(history, trainer.reward_func_names, config.kl_alarm, list(monitors or {}))
        metrics["wall_time_s"] = time.perf_counter() - started
        metrics["resumed_from_step"] = run.resumed_from_step
        logger.info("%d steps in %.1f min on %s", trainer.state.global_step, metrics["wall_time_s"] / 60,
                    describe_machine())

        def write(folder: Path) -> None:
            save_policy(trainer.model, tokenizer, paths.warm_start, folder)
            shutil.copy(samples.path, folder / SAMPLES_FILE)

        if run.finish(trainer, paths.out, write) and paths.plot is not None:
            plot_grpo_history(history, trainer.reward_func_names, config.kl_alarm, paths.plot, list(monitors or {}))
    if metrics.get("kl/alarm_steps"):
        logger.warning("KL exceeded grpo.kl_alarm=%s at %d logged steps (max %.3g)",
                       config.kl_alarm, metrics["kl/alarm_steps"], metrics["kl/max"])
    return metrics
