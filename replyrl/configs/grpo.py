"""`grpo`: refine each SFT warm-start against the reward with TRL's `GRPOTrainer`.

Names follow TRL's `GRPOConfig` where a value is passed through; the help says where the original
recipe differs from these CPU-demo values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import comb
from typing import ClassVar

from replyrl.configs.loader import Bf16, check, check_positive, check_sampling, help_field
from replyrl.configs.lora import LoraParams

GRPO_REWARD_TYPES = ("heuristic", "learned", "mix")
GRPO_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
CLIPPED_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "luspo")  # PPO's clipped ratio: epsilon, epsilon_high, delta
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")
# TRL 1.16's loss switches: GRPOStageConfig fields that `grpo_args` passes to GRPOConfig under the same name.
TRL_LOSS_SWITCHES = (
    "epsilon_high", "delta", "importance_sampling_level", "mask_truncated_completions", "top_entropy_quantile",
    "entropy_coef", "use_adaptive_entropy", "entropy_target", "entropy_coef_min", "entropy_coef_max",
    "entropy_coef_delta", "sapo_temperature_pos", "sapo_temperature_neg", "vespo_k_pos", "vespo_lambda_pos",
    "vespo_k_neg", "vespo_lambda_neg",
)
GRPO_SCALE_REWARDS = ("group", "batch", "none")
GRPO_OBJECTIVES = ("group", "max_at_k", "polychromic")
MAX_AT_K_ESTIMATORS = ("marginal", "pkpo", "verl_passk")  # replyrl.training.set_advantages
VLLM_MODES = ("colocate", "server")
SFT_METHODS = ("baseline", "polychromic")  # the warm-starts: models/sft/<method>_phase1
MAX_SUBSETS = 5000  # polychromic enumerates the C(G, k) subsets of each group, in Python


@dataclass
class GRPOLoraConfig(LoraParams):
    """The NEW adapter trained on the merged warm-start."""

    SECTION: ClassVar[str] = "grpo.lora"

    def __post_init__(self) -> None:
        super().__post_init__()
        # Dropout would make the policy's and the reference's log-probs differ at step 0 (see disable_dropout).
        check(self.lora_dropout == 0.0, "grpo.lora.lora_dropout", self.lora_dropout, "must be 0 in RL")


@dataclass
class GRPORun:
    """One GRPO run of the matrix (trained for every seed): a warm-start and an objective."""

    name: str = help_field(help="Folder and model name: models/grpo/<name>/seed_<s>, evaluated as grpo_<name>.")
    init: str = help_field(help="Warm-start: the phase-1 SFT of this method (models/sft/<init>_phase1).")
    objective: str = help_field(
        help="`group`: TRL's group-normalised reward (plain GRPO); `max_at_k`: the unbiased max@k set objective "
                 "(PKPO; Pass@k with objective_threshold); `polychromic`: mean reward x diversity of k-subsets. "
                 "Set objectives credit each reply with its marginal contribution to the k-subsets that hold it.",
    )

    def __post_init__(self) -> None:
        check(re.fullmatch(r"[a-z0-9_]+", self.name or "") is not None, "grpo.runs[].name", self.name,
              "must be lower-case letters, digits and _ (it names folders and metric keys)")
        check(self.init in SFT_METHODS, f"grpo.runs[{self.name}].init", self.init, f"choose one of {SFT_METHODS}")
        check(self.objective in GRPO_OBJECTIVES, f"grpo.runs[{self.name}].objective", self.objective,
              f"choose one of {GRPO_OBJECTIVES}")

    @property
    def model(self) -> str:
        """The evaluated model's name: `data/generations/grpo_<name>/` and the metric keys."""
        return f"grpo_{self.name}"


DEFAULT_RUNS = [GRPORun("from_baseline", "baseline", "group"), GRPORun("from_polychromic", "polychromic", "group")]


@dataclass
class ObjectiveKStep:
    """An item of `grpo.objective_k_schedule`: the set objectives' k from an optimizer step on."""

    step: int = help_field(help="First optimizer step that uses this k (0-based: the trainer's global_step).")
    k: int = help_field(help="k from that step on (the range objective_k allows for each run's objective).")


@dataclass
class GRPOStageConfig:
    runs: list[GRPORun] = help_field(
        DEFAULT_RUNS, "The GRPO runs (warm-start x objective), each trained for every seed; a list, so the default "
                      "need not train the full product. The verdicts compare each set objective with the `group` run "
                      "from the same warm-start.",
    )
    # reward
    reward_type: str = help_field("heuristic", "`heuristic`, `learned`, or `mix` (the two weighted by the mix_* weights).")
    mix_heuristic_weight: float = help_field(0.5, "Heuristic's weight when reward_type=mix.")
    mix_learned_weight: float = help_field(0.5, "Learned reward's weight when reward_type=mix.")
    diversity_weight: float = help_field(
        0.1, "Weight of the diversity bonus (mean encoder distance to the group's other replies); 0 = off."
    )
    overlong_weight: float = help_field(
        0.1, "Weight of TRL's soft overlong punishment (DAPO, Yu et al. 2025, eq. 13; "
             "`trl.rewards.get_soft_overlong_punishment`): 0 up to max_completion_length - overlong_cache_tokens "
             "tokens, then falling linearly to -1 at max_completion_length; 0 = off. Demo 0.1: without it GRPO "
             "lengthens the replies until about half are cut at the cap (docs/ablations.md).",
    )
    overlong_cache_tokens: int = help_field(
        8, "DAPO's L_cache: the last tokens before max_completion_length over which the punishment grows.")
    # rollouts (the recipe: n_generations 4, temperature 0.8, top_p 0.9)
    num_generations: int = help_field(4, "Replies sampled per prompt (the GRPO group).")
    temperature: float = help_field(0.8, "Sampling temperature of the rollouts.")
    top_p: float = help_field(0.9, "Nucleus sampling threshold of the rollouts.")
    max_completion_length: int = help_field(32, "Max new tokens per reply.")
    prompts_per_step: int = help_field(
        4, "Distinct prompts per micro-batch on each device (process), each sampled num_generations times."
    )
    # vLLM rollouts (GPU only, off by default): TRL's own vLLM path replaces replyrl's sampler
    use_vllm: bool = help_field(False, "Generate the rollouts with vLLM through TRL (needs a CUDA GPU and `vllm`).")
    vllm_mode: str = help_field(
        "colocate", "`colocate`: vLLM shares the training GPUs; `server`: a separate `trl vllm-serve` process."
    )
    vllm_gpu_memory_utilization: float = help_field(0.3, "colocate: share of each GPU's memory vLLM may take.")
    vllm_server_base_url: str | None = help_field(
        None, "server: the `trl vllm-serve` URL (e.g. http://10.0.0.2:8000); null = TRL's default host and port."
    )
    # set objectives (the runs' `objective`)
    objective_k: int = help_field(2, "k of the set objectives (1 <= k <= num_generations; polychromic needs k >= 2).")
    objective_threshold: float | None = help_field(
        None, "max_at_k only: score a reply 1 if its reward >= this, else 0 (Pass@k); null = the reward itself."
    )
    max_at_k_estimator: str = help_field(
        "marginal", "max_at_k only, its advantage (docs/set-objectives.md): `marginal` = a reply's marginal "
                    "contribution to the k-subsets' max (the runs so far); `pkpo` = PKPO's s^(loo-1) (arXiv "
                    "2505.15201, Eq. 33: each subset's max minus the best of its other k - 1); `verl_passk` = verl's "
                    "grpo_passk (the best reply gets best - second best, the others 0: max@num_generations, no k).",
    )
    objective_k_schedule: list[ObjectiveKStep] | None = help_field(
        None, "Anneal the set objectives' k, as PKPO (arXiv 2505.15201) does from a high k to k = 1: a list of "
              "{step: N, k: K}, each K used from optimizer step N on (objective_k before the first N), steps "
              "increasing; each K in objective_k's range. Unused by verl_passk. null = objective_k throughout.",
    )
    kl_coeff: float = help_field(
        0.1, "KL coefficient, passed to TRL as `beta` (TRL's default 0 drops the KL term and reference)."
    )
    loss_type: str = help_field(
        "dapo", "TRL's policy loss. The clipped PPO loss, aggregated: `dapo` = mean over the batch's tokens (DAPO, "
                "arXiv 2503.14476; no length bias); `grpo` = per-sequence mean first (favours short positive replies); "
                "`dr_grpo` = sum / (replies x max_completion_length) (Dr. GRPO, 2503.20783); `bnpo` = mean over the "
                "micro-batch's tokens; `luspo` = per-sequence sum (LUSPO, 2602.05261; needs importance_sampling_level "
                "sequence). Other losses: `cispo` = detached IS weight capped at epsilon_high, times the log-prob "
                "(MiniMax-M1, 2506.13585; needs epsilon_high); `sapo` = a sigmoid gate instead of the clip (SAPO, "
                "2511.20347); `vespo` = a Gamma weight of the sequence ratio instead of the clip (VESPO, 2602.10693). "
                "With num_iterations 1 every ratio is 1: cispo and vespo then train as dapo, sapo as grpo.",
    )
    scale_rewards: str = help_field("group", "Divide advantages by the std of the `group`, the `batch`, or `none`.")
    advantage_clip: float = help_field(10.0, "Clip advantages to [-c, c] (the recipe's safeguard).")
    epsilon: float = help_field(0.2, "PPO ratio clip; inactive with num_iterations=1.")
    num_iterations: int = help_field(1, "Updates per batch of rollouts (GRPO's mu).")
    # TRL 1.16's loss switches, under GRPOConfig's names and defaults (passed through as they are)
    epsilon_high: float | None = help_field(
        None, "Upper ratio clip 1 + epsilon_high (DAPO's clip-higher, arXiv 2503.14476, uses 0.28; needs "
              "num_iterations > 1); null = epsilon (TRL's default). loss_type cispo: the cap of the IS weight itself, "
              "required (ScaleRL, 2510.13786, uses 5.0).",
    )
    delta: float | None = help_field(
        None, "Two-sided clip: the ratio is also capped at delta where the advantage is negative (INTELLECT-2, "
              "arXiv 2505.07291); must be > 1 + epsilon_high; needs num_iterations > 1; null = off (TRL's default).",
    )
    importance_sampling_level: str = help_field(
        "token", "`token` (TRL's default): one ratio per token; `sequence`: one per reply, the geometric mean of its "
                 "token ratios (GSPO, arXiv 2507.18071, with loss_type grpo; TRL warns that dapo, bnpo, dr_grpo "
                 "and cispo then weight each reply by its length).",
    )
    mask_truncated_completions: bool = help_field(
        False, "Leave replies cut at max_completion_length (no EOS) out of the loss (DAPO's overlong filtering, "
               "arXiv 2503.14476); TRL's default false.",
    )
    top_entropy_quantile: float = help_field(
        1.0, "Train on the top fraction of completion tokens by entropy only, in [0, 1] (Beyond the 80/20 Rule, "
             "arXiv 2506.01939, uses 0.2); 1 = every token (TRL's default).",
    )
    entropy_coef: float = help_field(
        0.0, "Entropy bonus: the loss minus entropy_coef x the mean token entropy; the start value with "
             "use_adaptive_entropy. 0 = off (TRL's default).",
    )
    use_adaptive_entropy: bool = help_field(
        False, "Skywork-OR1's adaptive entropy control (arXiv 2505.22312): the bonus applies while the entropy is "
               "<= entropy_target and entropy_coef moves by entropy_coef_delta each step. TRL's default false.",
    )
    entropy_target: float = help_field(
        0.2, "use_adaptive_entropy: target mean token entropy in nats (TRL's default 0.2 engages only near collapse; "
             "set it near the `entropy` logged early in training).",
    )
    entropy_coef_min: float = help_field(0.0, "use_adaptive_entropy: lowest entropy_coef (TRL's default).")
    entropy_coef_max: float = help_field(1.0, "use_adaptive_entropy: highest entropy_coef (TRL's default).")
    entropy_coef_delta: float = help_field(0.005, "use_adaptive_entropy: entropy_coef's step (TRL's default).")
    sapo_temperature_pos: float = help_field(
        1.0, "loss_type sapo: gate temperature for positive advantages (SAPO, arXiv 2511.20347; TRL's default).",
    )
    sapo_temperature_neg: float = help_field(
        1.05, "loss_type sapo: gate temperature for non-positive advantages (SAPO; TRL's default).",
    )
    vespo_k_pos: float = help_field(
        2.0, "loss_type vespo: power k of the Gamma weight w^k e^(-lambda w), advantages >= 0 (VESPO, arXiv "
             "2602.10693; TRL's default).",
    )
    vespo_lambda_pos: float = help_field(3.0, "loss_type vespo: decay lambda, advantages >= 0 (TRL's default).")
    vespo_k_neg: float = help_field(3.0, "loss_type vespo: power k, negative advantages (TRL's default).")
    vespo_lambda_neg: float = help_field(2.0, "loss_type vespo: decay lambda, negative advantages (TRL's default).")
    # optimisation
    learning_rate: float = help_field(1e-3, "AdamW learning rate of the LoRA weights (recipe: 1e-5; see README).")
    lr_scheduler_type: str = help_field("constant", "transformers scheduler name.")
    max_grad_norm: float = help_field(1.0, "Gradient-norm clip.")
    gradient_accumulation_steps: int = help_field(1, "Micro-batches per optimizer step.")
    max_steps: int = help_field(5, "Optimizer steps (`--max-steps` overrides).")
    lora: GRPOLoraConfig = field(default_factory=GRPOLoraConfig)
    bf16: Bf16 = help_field(
        "auto", "`auto` (bf16 weights + autocast where the hardware runs bf16 natively), true or false."
    )
    activation_checkpointing: bool = help_field(
        False, "Recompute activations in backward: saves memory, costs ~20% time."
    )
    # safeguards and logging
    kl_alarm: float = help_field(10.0, "Warn, and count in the metrics, when the KL exceeds this.")
    save_steps: int = help_field(5, "Checkpoint every N steps (recipe: 100); reruns resume.")
    logging_steps: int = help_field(1, "Log metrics every N steps.")
    sample_every: int = help_field(5, "Write sample generations every N steps (and at the start and end).")
    sample_prompts: int = help_field(4, "Fixed phase-2 tweets sampled each time.")

    def __post_init__(self) -> None:
        for name, choices in (("reward_type", GRPO_REWARD_TYPES), ("loss_type", GRPO_LOSS_TYPES),
                              ("scale_rewards", GRPO_SCALE_REWARDS), ("vllm_mode", VLLM_MODES)):
            check(getattr(self, name) in choices, f"grpo.{name}", getattr(self, name), f"choose one of {choices}")
        check(self.num_generations >= 2, "grpo.num_generations", self.num_generations,
              "must be >= 2 (advantages compare replies in a group)")
        check(self.overlong_weight == 0 or 0 < self.overlong_cache_tokens <= self.max_completion_length,
              "grpo.overlong_cache_tokens", self.overlong_cache_tokens,
              f"must be in 1..max_completion_length ({self.max_completion_length}) when overlong_weight > 0")
        for name in ("mix_heuristic_weight", "mix_learned_weight", "diversity_weight", "overlong_weight", "kl_coeff",
                     "epsilon"):
            check(getattr(self, name) >= 0, f"grpo.{name}", getattr(self, name), "must be >= 0")
        if self.reward_type == "mix":
            check(self.mix_heuristic_weight + self.mix_learned_weight > 0, "grpo.mix_heuristic_weight",
                  self.mix_heuristic_weight, "reward_type mix needs mix_heuristic_weight + mix_learned_weight > 0")
        names = [run.name for run in self.runs]
        check(len(set(names)) == len(names), "grpo.runs", names, "every run needs its own name")
        pairs = [(run.init, run.objective) for run in self.runs]
        check(len(set(pairs)) == len(pairs), "grpo.runs", pairs, "a warm-start x objective is listed twice")
        for objective in dict.fromkeys(run.objective for run in self.runs):
            self.check_objective(objective)
        check(self.objective_threshold is None or any(run.objective == "max_at_k" for run in self.runs),
              "grpo.objective_threshold", self.objective_threshold,
              "only objective max_at_k takes a threshold, and no run of grpo.runs has it; set it to null")
        check(self.max_at_k_estimator in MAX_AT_K_ESTIMATORS, "grpo.max_at_k_estimator", self.max_at_k_estimator,
              f"choose one of {MAX_AT_K_ESTIMATORS}")
        check(self.max_at_k_estimator == "marginal" or any(run.objective == "max_at_k" for run in self.runs),
              "grpo.max_at_k_estimator", self.max_at_k_estimator,
              "only objective max_at_k has an estimator, and no run of grpo.runs has it; set it to marginal")
        if self.objective_k_schedule is not None:
            steps = [item.step for item in self.objective_k_schedule]
            check(bool(steps) and steps[0] >= 0 and all(a < b for a, b in zip(steps, steps[1:])),
                  "grpo.objective_k_schedule", steps, "needs steps >= 0, increasing (null = objective_k throughout)")
            check(any(self.uses_k(run.objective) for run in self.runs), "grpo.objective_k_schedule", steps,
                  "no run of grpo.runs has a set objective with a k (verl_passk has none); set it to null")
        check_sampling("grpo", self.temperature, self.top_p)
        check(0 < self.vllm_gpu_memory_utilization <= 1, "grpo.vllm_gpu_memory_utilization",
              self.vllm_gpu_memory_utilization, "must be in (0, 1]")
        check_positive(self, "grpo", ("max_completion_length", "prompts_per_step", "advantage_clip", "num_iterations",
                                      "learning_rate", "max_grad_norm", "gradient_accumulation_steps", "max_steps",
                                      "kl_alarm", "save_steps", "logging_steps", "sample_every", "sample_prompts"))
        self.check_loss_switches()

    def check_loss_switches(self) -> None:
        """TRL's loss switches: ranges, and no switch that the chosen loss_type would silently ignore."""
        check(self.importance_sampling_level in IMPORTANCE_SAMPLING_LEVELS, "grpo.importance_sampling_level",
              self.importance_sampling_level, f"choose one of {IMPORTANCE_SAMPLING_LEVELS}")
        clipped = self.loss_type in CLIPPED_LOSS_TYPES
        if self.loss_type == "cispo":
            # TRL caps the IS weight at epsilon_high itself, not at 1 + epsilon_high: null (= epsilon, 0.2) would
            # cap every weight near 1 at 0.2, a smaller learning rate rather than a clip.
            check(self.epsilon_high is not None and self.epsilon_high >= 1, "grpo.epsilon_high", self.epsilon_high,
                  "loss_type cispo caps the IS weight at epsilon_high itself: set it >= 1 (ScaleRL uses 5.0)")
        elif self.epsilon_high is not None:
            check(self.epsilon_high >= self.epsilon, "grpo.epsilon_high", self.epsilon_high,
                  f"must be >= epsilon ({self.epsilon}): clip-higher widens the upper side only")
        for name in ("epsilon_high", "delta"):
            value = getattr(self, name)
            if value is None or (name == "epsilon_high" and self.loss_type == "cispo"):
                continue
            check(clipped, f"grpo.{name}", value, f"loss_type {self.loss_type} has no ratio clip; set it to null")
            # With one update per batch TRL takes the detached log-probs as the old ones: every ratio is exactly 1.
            check(self.num_iterations > 1, f"grpo.{name}", value,
                  "clips nothing with num_iterations 1 (every ratio is 1); raise num_iterations or set it to null")
        if self.delta is not None:
            upper = 1 + (self.epsilon if self.epsilon_high is None else self.epsilon_high)
            check(self.delta > upper, "grpo.delta", self.delta, f"must be > 1 + epsilon_high ({upper})")
        # LUSPO is GSPO's sequence ratio with a length factor; VESPO builds its sequence weight from the token
        # ratios itself (TRL only warns for both).
        check(self.loss_type != "luspo" or self.importance_sampling_level == "sequence",
              "grpo.importance_sampling_level", self.importance_sampling_level,
              "loss_type luspo needs importance_sampling_level sequence")
        check(self.loss_type != "vespo" or self.importance_sampling_level == "token",
              "grpo.importance_sampling_level", self.importance_sampling_level,
              "loss_type vespo computes its sequence weight itself: use importance_sampling_level token")
        check(0 <= self.top_entropy_quantile <= 1, "grpo.top_entropy_quantile", self.top_entropy_quantile,
              "must be in [0, 1]")
        for name in ("entropy_coef", "entropy_target", "entropy_coef_min", "entropy_coef_delta", "vespo_k_pos",
                     "vespo_k_neg"):
            check(getattr(self, name) >= 0, f"grpo.{name}", getattr(self, name), "must be >= 0")
        check_positive(self, "grpo", ("sapo_temperature_pos", "sapo_temperature_neg", "vespo_lambda_pos",
                                      "vespo_lambda_neg"))
        check(self.entropy_coef_min <= self.entropy_coef_max, "grpo.entropy_coef_max", self.entropy_coef_max,
              f"must be >= entropy_coef_min ({self.entropy_coef_min})")
        if self.use_adaptive_entropy:
            check(self.entropy_coef_min <= self.entropy_coef <= self.entropy_coef_max, "grpo.entropy_coef",
                  self.entropy_coef, f"use_adaptive_entropy starts from it: must be in [entropy_coef_min, "
                  f"entropy_coef_max] ([{self.entropy_coef_min}, {self.entropy_coef_max}])")
            check(self.entropy_coef_delta > 0, "grpo.entropy_coef_delta", self.entropy_coef_delta,
                  "must be > 0 with use_adaptive_entropy (else the coefficient never moves)")

    def check_objective(self, objective: str) -> None:
        """The set-objective params must suit ``objective`` (each run's, or one given by hand to the stage)."""
        check(objective in GRPO_OBJECTIVES, "objective", objective, f"choose one of {GRPO_OBJECTIVES}")
        ks = [("grpo.objective_k", self.objective_k)]
        ks += [(f"grpo.objective_k_schedule[{i}].k", item.k) for i, item in enumerate(self.objective_k_schedule or [])]
        for key, k in ks:
            if objective != "group":
                low = 2 if objective == "polychromic" else 1
                # k = G: every subset is the whole group, so every marginal advantage is 0 and only the KL term
                # would train (pkpo at k = G is verl_passk, which has its own name).
                check(low <= k < self.num_generations, key, k,
                      f"must be in {low}..num_generations - 1 ({self.num_generations - 1}) for objective {objective}")
            check(objective != "polychromic" or comb(self.num_generations, k) <= MAX_SUBSETS, key, k,
                  f"C(num_generations, k) must be <= {MAX_SUBSETS} (the polychromic objective enumerates subsets)")

    def uses_k(self, objective: str) -> bool:
        """Whether ``objective``'s advantages depend on k (verl_passk's are always over the whole group)."""
        return objective == "polychromic" or (objective == "max_at_k" and self.max_at_k_estimator != "verl_passk")
