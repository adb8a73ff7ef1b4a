"""The GRPO trainer of the `grpo` stage: TRL's `GRPOTrainer` with the recipe's safeguards, and its config.

Hand-off (a known trap: resuming GRPO "from" a saved SFT adapter often silently trains a fresh
adapter on the bare base): the trainer gets the warm-start already merged into plain weights and
adds a NEW LoRA adapter on top. Its B matrices start at zero, so at step 0 the policy is exactly the
warm-start, and the reference policy (the same model with the adapter disabled) stays the
warm-start for the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from datasets import Dataset
from peft import LoraConfig
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from trl.models import unwrap_model_for_generation

from replyrl.configs.grpo import TRL_LOSS_SWITCHES, GRPOStageConfig
from replyrl.configs.loader import to_dict
from replyrl.models.precision import precision_kwargs
from replyrl.models.shared_prefix import add_shared_prefix_forward
from replyrl.sampling import SamplingConfig, sample_token_ids
from replyrl.training.grpo_rewards import RewardFunc
from replyrl.training.set_advantages import set_objective_advantages

# The original recipe's metric names (alias -> TRL's name), logged beside TRL's; dvclive turns
# `train_x` into `train/x`. The penalty is the KL term as it enters the loss: kl_coeff (TRL's beta) * kl.
RECIPE_NAMES = {"train_policy_loss": "loss", "train_avg_reward": "reward", "train_reward_std": "reward_std",
                "train_kl_penalty": "kl"}


Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalised embeddings, one row per text
# Called like a TRL reward function (completions=..., plus the dataset's columns as keyword lists), but
# only logged as `<name>/mean`: never in the rewards, the advantages or the loss (e.g. the sample's gold).
Monitor = Callable[..., Sequence[float]]


@dataclass
class SetObjective:
    """A set-level objective (`replyrl.training.set_advantages`) and what it needs beyond the rewards."""

    name: str  # "max_at_k" or "polychromic"
    k: int
    threshold: float | None = None  # max_at_k: rewards become 0/1 passes (Pass@k)
    embed: Embed | None = None  # polychromic: embeds the completions
    estimator: str = "marginal"  # max_at_k: one of set_advantages.MAX_AT_K_ESTIMATORS
    k_schedule: Sequence[tuple[int, int]] = ()  # (first optimizer step, k), steps increasing: k annealed

    def k_at(self, step: int) -> int:
        """The k in use at optimizer step ``step`` (0-based): the last scheduled k whose step has come, else k."""
        return next((k for start, k in reversed(self.k_schedule) if start <= step), self.k)


class ReplyGRPOTrainer(GRPOTrainer):
    """`GRPOTrainer` plus seven things TRL has no option for.

The policy and reference log-probs run each group's prompt once (`replyrl.models.shared_prefix`). Rollouts come from `replyrl.sampling` (same distribution as TRL's `generate` path, each group's prompt
prefilled once, a nucleus step without a full-vocabulary sort); vLLM, continuous batching and
sampling options the sampler lacks (min_p, repetition_penalty, generation_kwargs) keep TRL's paths.

    Set-level advantages (`objective`): TRL computes only per-completion, group-normalised advantages,
    so with a set objective they are recomputed from the same gathered rewards and rescaled to the size
    of TRL's advantages of the same batch (`_set_advantages`). Advantage clipping
    (the original recipe's safeguard), a hard stop on a non-finite loss before it reaches the weights,
    the original recipe's metric names beside TRL's, and `monitors`: scores of every rollout that are
    logged but never trained on (the over-optimisation picture of Gao et al. 2022).
    """

    def __init__(self, *args: Any, advantage_clip: float, objective: SetObjective | None = None,
                 monitors: Mapping[str, Monitor] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The fused-head outputs TRL's __init__ asks for (the entropy feeds its metrics and masks).
        add_shared_prefix_forward(self.model, temperature=self.temperature, cast_lm_head_to_fp32=self.args.cast_lm_head_to_fp32,
                                  outputs=("log_probs", "entropy"))
        if self.ref_model is not None:
            add_shared_prefix_forward(self.ref_model, temperature=self.temperature,
                                      cast_lm_head_to_fp32=self.args.cast_lm_head_to_fp32)
        self.advantage_clip = advantage_clip
        self.objective = objective
        self.monitors = dict(monitors or {})

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if (self.use_vllm or self.use_transformers_continuous_batching or images is not None or multimodal_fields
                or self.min_p is not None or self.repetition_penalty != 1.0 or self.args.generation_kwargs):
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        sampling = SamplingConfig(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k or 0,
                                  max_new_tokens=self.max_completion_length)
        with (
            unwrap_model_for_generation(
                self.model_wrapped, self.accelerator, gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped_model,
            torch.no_grad(),
            self._dist.summon_full_params(self.model_wrapped, recurse=False),
        ):
            completion_ids = sample_token_ids(unwrapped_model, prompt_ids, sampling, self.eos_token_ids,
                                              self._tokenizer.pad_token_id)
        return completion_ids, None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        # Kept for the set advantages: every process's rewards (TRL gathers them) and completions.
        self._gathered = (rewards_per_func, gather_object(list(completions)) if self.objective else None)
        # Per-rollout columns for `rollouts()`, through TRL's completion log (it gathers them over processes
        # after this call); the length and truncation are TRL's own (`completions/clipped_ratio`).
        eos_and_pad = [*self.eos_token_ids, self._tokenizer.pad_token_id]
        self._log_completion_extra("tweet", [example["tweet"] for example in inputs])
        self._log_completion_extra("completion_tokens", [len(ids) for ids in completion_ids_list])
        self._log_completion_extra("truncated", [ids[-1] not in eos_and_pad for ids in completion_ids_list])
        if self.monitors:
            columns = {key: [example[key] for example in inputs] for key in inputs[0]
                       if key not in ("prompt", "completion", "completion_ids")}
            mode = "train" if self.model.training else "eval"
            for name, monitor in self.monitors.items():
                values = [float(v) for v in monitor(completions=completions, **columns)]
                self._log_completion_extra(name, values)
                self._metrics[mode][f"{name}/mean"].append(float(np.mean(gather_object(values))))
        return rewards_per_func

    def _scale(self, advantages: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Divide by the rewards' std as TRL scales its group advantages (`scale_rewards`): per group or over
        the batch of ``groups`` (the rewards the objective sees)."""
        if self.scale_rewards == "group":
            return advantages / (groups.std(dim=1, keepdim=True) + 1e-4)
        if self.scale_rewards == "batch":
            return advantages / (groups.std() + 1e-4)
        return advantages

    def _set_advantages(self, local: int) -> torch.Tensor:
        """This process's ``local`` advantages under ``self.objective`` (scaled as the class docstring says)."""
        rewards_per_func, completions = self._gathered
        if torch.isnan(rewards_per_func).any():
            # TRL drops unscored completions from its group statistics; a subset's max or diversity cannot.
            raise ValueError(f"objective {self.objective.name} needs every completion scored by every reward")
        rewards = (rewards_per_func * self.reward_weights.to(rewards_per_func.device)).sum(dim=1)
        groups = rewards.view(-1, self.num_generations).double().cpu().numpy()
        if self.objective.threshold is not None:
            groups = (groups >= self.objective.threshold).astype(np.float64)
        embeddings = None
        if self.objective.embed is not None:
            embeddings = self.objective.embed(completions).reshape(*groups.shape, -1)
        k = self.objective.k_at(self.state.global_step)
        advantages = torch.as_tensor(
            set_objective_advantages(self.objective.name, groups, k, embeddings, self.objective.estimator),
            dtype=torch.float64,
        )
        groups = torch.as_tensor(groups)
        # Two steps. (1) max_at_k is divided by the rewards' std as TRL divides its group advantages, so its
        # weighting of prompts is TRL's times the objective's own (for Pass@k, how close a prompt is to
        # saturation); polychromic is not (tied rewards still differ in diversity: a division by their
        # std ~0 would blow it up), so its weighting is its own (a prompt's reward level times diversity).
        # For verl_passk, (1) under scale_rewards group is verl's own norm_adv_by_std_in_grpo. pkpo skips it:
        # the std of the sampled rewards would bias its unbiased estimate (an independent review measured
        # E[update] / gradient = (3.0, 4.2, 2.6) on a 3-outcome policy), and PKPO divides by nothing.
        if self.objective.name == "max_at_k" and self.objective.estimator != "pkpo":
            advantages = self._scale(advantages, groups)
        # (2) One factor for the whole batch gives the advantages the RMS of TRL's group advantages of the
        # same rewards (the k = 1 objective, r - mean r, scaled as in (1)): every objective takes steps of
        # plain GRPO's size, so comparing objectives compares where the credit goes, not a learning rate
        # (a max@k step otherwise shrinks as k grows). At k = 1 the factor is 1: max_at_k is plain GRPO
        # (pkpo's k = 1 advantages, (r - mean r) / (G - 1), become it too). verl scales by (1) only.
        reference = self._scale(groups - groups.mean(dim=1, keepdim=True), groups)
        rms, reference_rms = advantages.square().mean().sqrt(), reference.square().mean().sqrt()
        if rms > 0:
            advantages = advantages * (reference_rms / rms)
        advantages = advantages.float().flatten().to(rewards.device)
        start = self.accelerator.process_index * local
        return advantages[start : start + local]

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        if self.objective is not None:
            output["advantages"] = self._set_advantages(len(output["advantages"]))
            self._metrics[mode][f"advantages/{self.objective.name}_abs_mean"].append(
                output["advantages"].abs().mean().item())
            self._metrics[mode]["objective_k"].append(self.objective.k_at(self.state.global_step))
        advantages = output["advantages"]
        # `_metrics` is the buffer TRL averages into each log line; subclasses add their metrics there.
        clipped = (advantages.abs() > self.advantage_clip).float().mean().item()
        self._metrics[mode]["advantages/clipped_frac"].append(clipped)
        output["advantages"] = advantages.clamp(-self.advantage_clip, self.advantage_clip)
        # TRL's completion log got its group advantages: replace them with the ones the loss uses.
        used = self.accelerator.gather(output["advantages"]).tolist()
        for _ in used:
            self._logs["advantages"].pop()
        self._logs["advantages"].extend(used)
        return output

    def rollouts(self) -> list[dict[str, Any]]:
        """The last generation's rollouts, every process's, one row each: tweet, completion, each reward
        (``rewards/<name>``) and their weighted total (``reward``), each monitor, the advantage the loss
        used, the completion's length in tokens and whether it hit ``max_completion_length`` without EOS."""
        logs, extra = self._logs, self._logs["extra"]
        weights = self.reward_weights.tolist()
        rows = []
        for i, completion in enumerate(logs["completion"]):
            rewards = [logs["rewards"][name][i] for name in self.reward_func_names]
            rows.append({
                "tweet": extra["tweet"][i], "completion": completion,
                **{f"rewards/{name}": r for name, r in zip(self.reward_func_names, rewards)},
                "reward": float(np.nansum(np.multiply(weights, rewards))),  # TRL's total: a None reward adds 0
                **{name: extra[name][i] for name in self.monitors},
                "advantage": logs["advantages"][i],
                "completion_tokens": extra["completion_tokens"][i], "truncated": extra["truncated"][i],
            })
        return rows

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
        **{name: getattr(config, name) for name in TRL_LOSS_SWITCHES},
        disable_dropout=True,  # dropout would make policy and reference log-probs differ at step 0
        # Rollouts: one generate call per optimizer step covering every prompt's whole group. Each device
        # takes prompts_per_step whole groups per micro-batch; steps_per_generation (not a fixed
        # generation_batch_size) keeps TRL's batch arithmetic right for any number of processes.
        num_generations=config.num_generations,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        steps_per_generation=config.gradient_accumulation_steps,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=0,
        use_vllm=config.use_vllm,
        vllm_mode=config.vllm_mode,
        vllm_gpu_memory_utilization=config.vllm_gpu_memory_utilization,
        **({"vllm_server_base_url": config.vllm_server_base_url} if config.vllm_server_base_url else {}),
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
    embed: Embed | None = None,
    monitors: Mapping[str, Monitor] | None = None,
    objective: str = "group",
) -> ReplyGRPOTrainer:
    """Trainer for a plain (already merged) warm-start ``model``; a new LoRA adapter is added on top.

    ``objective`` is a run's (`GRPORun.objective`): ``group`` or a set objective with ``config.objective_k``
    (annealed by ``config.objective_k_schedule``) and, for max_at_k, ``config.max_at_k_estimator``.
    ``embed`` is needed by the polychromic objective only; ``monitors`` are logged, never trained on.
    """
    tokenizer.padding_side = "left"  # TRL generates from left-padded prompts
    args = grpo_args(config, output_dir, seed, reward_weights)
    if args.bf16:
        # TRL generates and scores the reference outside its bf16 autocast, so only bf16 weights put
        # those (about half of a step) on the hardware's bf16 units. Policy and reference share these
        # weights: the reference is the warm-start rounded to bf16; the LoRA weights stay float32.
        model = model.to(torch.bfloat16)
    lora = LoraConfig(task_type="CAUSAL_LM", **to_dict(config.lora))  # dropout 0: see disable_dropout above
    set_objective = None
    if objective != "group":
        uses_k = config.uses_k(objective)  # verl_passk has none: it always takes the whole group's max (max@G)
        set_objective = SetObjective(
            objective, config.objective_k if uses_k else config.num_generations,
            config.objective_threshold if objective == "max_at_k" else None,
            embed if objective == "polychromic" else None,
            config.max_at_k_estimator if objective == "max_at_k" else "marginal",
            [(item.step, item.k) for item in config.objective_k_schedule or []] if uses_k else (),
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
        monitors=monitors,
        objective=set_objective,
    )
