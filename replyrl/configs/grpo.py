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
GRPO_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo")
GRPO_SCALE_REWARDS = ("group", "batch", "none")
GRPO_OBJECTIVES = ("group", "max_at_k", "polychromic")
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
    kl_coeff: float = help_field(
        0.1, "KL coefficient, passed to TRL as `beta` (TRL's default 0 drops the KL term and reference)."
    )
    loss_type: str = help_field(
        "dapo", "TRL's token aggregation: `dapo` = mean over the batch's tokens (no length bias); "
                "`grpo` = per-sequence mean first (favours short positive replies).",
    )
    scale_rewards: str = help_field("group", "Divide advantages by the std of the `group`, the `batch`, or `none`.")
    advantage_clip: float = help_field(10.0, "Clip advantages to [-c, c] (the recipe's safeguard).")
    epsilon: float = help_field(0.2, "PPO ratio clip; inactive with num_iterations=1.")
    num_iterations: int = help_field(1, "Updates per batch of rollouts (GRPO's mu).")
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
        for name in ("mix_heuristic_weight", "mix_learned_weight", "diversity_weight", "kl_coeff", "epsilon"):
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
        check_sampling("grpo", self.temperature, self.top_p)
        check(0 < self.vllm_gpu_memory_utilization <= 1, "grpo.vllm_gpu_memory_utilization",
              self.vllm_gpu_memory_utilization, "must be in (0, 1]")
        check_positive(self, "grpo", ("max_completion_length", "prompts_per_step", "advantage_clip", "num_iterations",
                                      "learning_rate", "max_grad_norm", "gradient_accumulation_steps", "max_steps",
                                      "kl_alarm", "save_steps", "logging_steps", "sample_every", "sample_prompts"))

    def check_objective(self, objective: str) -> None:
        """The set-objective params must suit ``objective`` (each run's, or one given by hand to the stage)."""
        check(objective in GRPO_OBJECTIVES, "objective", objective, f"choose one of {GRPO_OBJECTIVES}")
        if objective != "group":
            low = 2 if objective == "polychromic" else 1
            # k = G: every subset is the whole group, so every advantage is 0 and only the KL term would train.
            check(low <= self.objective_k < self.num_generations, "grpo.objective_k", self.objective_k,
                  f"must be in {low}..num_generations - 1 ({self.num_generations - 1}) for objective {objective}")
        check(objective != "polychromic" or comb(self.num_generations, self.objective_k) <= MAX_SUBSETS,
              "grpo.objective_k", self.objective_k,
              f"C(num_generations, objective_k) must be <= {MAX_SUBSETS} (the polychromic objective enumerates subsets)")
