"""`sft`: baseline LoRA SFT and polychromic SFT.

dvc.yaml lists per matrix item only the keys that item reads (sft.train, sft.lora,
sft.validation_fraction, sft.epochs.<data>, sft.<method>), so a change under sft.polychromic reruns
only the polychromic variants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from replyrl.configs.loader import Bf16, check, check_positive, check_sampling, help_field
from replyrl.configs.lora import LoraParams

SFT_METHODS = ("baseline", "polychromic")
SFT_DATA = ("full", "phase1")
POLYCHROMIC_QUALITY = ("heuristic", "none")


@dataclass
class SFTTrainConfig:
    """Optimiser and loop knobs shared by both methods; names are `trl.SFTConfig` fields."""

    learning_rate: float = help_field(1e-3, "Peak AdamW learning rate (LoRA weights).")
    lr_scheduler_type: str = help_field("cosine", "transformers scheduler name.")
    warmup_steps: float = help_field(0.05, "Linear warmup: a step count, or a fraction (< 1) of all steps.")
    weight_decay: float = help_field(0.0, "AdamW weight decay.")
    max_grad_norm: float = help_field(1.0, "Gradient clipping norm.")
    per_device_train_batch_size: int = help_field(8, "Training rows per device per micro-batch.")
    per_device_eval_batch_size: int = help_field(16, "Validation rows per device per batch.")
    gradient_accumulation_steps: int = help_field(1, "Micro-batches per optimiser step.")
    max_length: int = help_field(256, "Prompt + reply tokens kept (longer rows are cut at the end).")
    max_steps: int = help_field(24, "Optimiser steps; -1 trains for `sft.epochs.<data>` epochs (full scale).")
    logging_steps: int = help_field(4, "Log train metrics every N steps.")
    eval_steps: int = help_field(24, "Validation loss every N steps (and at the last step).")
    save_steps: int = help_field(24, "Checkpoint every N steps (a multiple of eval_steps, for best-model selection).")
    save_total_limit: int = help_field(2, "Checkpoints kept (the best one is always kept).")
    train_sampling_strategy: str = help_field(
        "group_by_length", "`group_by_length` batches rows of similar length (less padding), or `random`."
    )
    gradient_checkpointing: bool = help_field(False, "Recompute activations in backward: saves memory, costs ~20% time.")
    bf16: Bf16 = help_field("auto", "bf16 autocast: `auto` (where natively supported), true or false.")

    def __post_init__(self) -> None:
        check_positive(self, "sft.train", ("learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size",
                                           "gradient_accumulation_steps", "max_length", "logging_steps", "eval_steps",
                                           "save_steps", "save_total_limit"))
        check(self.max_steps > 0 or self.max_steps == -1, "sft.train.max_steps", self.max_steps,
              "must be > 0, or -1 to train by epochs")
        check(self.save_steps % self.eval_steps == 0, "sft.train.save_steps", self.save_steps,
              f"must be a multiple of eval_steps ({self.eval_steps}): the best checkpoint is chosen among evaluated ones")


@dataclass
class SFTLoraConfig(LoraParams):
    SECTION: ClassVar[str] = "sft.lora"

    lora_dropout: float = help_field(0.05, "Dropout on the LoRA input.")


@dataclass
class SFTEpochsConfig:
    """Epochs per training file, used when `sft.train.max_steps` is -1."""

    full: float = help_field(3.0, "Epochs over full_train.jsonl (original recipe: 3).")
    phase1: float = help_field(2.0, "Epochs over the phase-1 warm-start data (original recipe: 2).")

    def __post_init__(self) -> None:
        check_positive(self, "sft.epochs", SFT_DATA)


@dataclass
class BaselineSFTConfig:
    """Plain SFT has no knobs beyond sft.train/sft.lora; the (empty) section exists so dvc.yaml can list
    `sft.${item.method}` for every matrix item."""


@dataclass
class PolychromicTermConfig:
    """The set-level term's knobs; `replyrl.training.polychromic.PolychromicSFTConfig` inherits them."""

    polychromic_coef: float = help_field(0.3, "λ: weight of the set-advantage term in the loss.")
    num_generations: int = help_field(4, "Replies sampled per prompt to form a set (>= 3).")
    generation_steps: int = help_field(4, "Compute the term every N optimiser steps.")
    max_generation_prompts: int = help_field(2, "At most this many prompts of a micro-batch get sets.")
    temperature: float = help_field(1.0, "Sampling temperature of the sets.")
    top_p: float = help_field(0.95, "Nucleus mass of the sets.")
    max_completion_length: int = help_field(24, "Longest sampled reply, in tokens.")

    def check_term(self) -> None:
        """The checks, callable from a subclass whose own `__post_init__` (TRL's) comes first."""
        check(self.polychromic_coef >= 0, "sft.polychromic.polychromic_coef", self.polychromic_coef, "must be >= 0")
        check(self.num_generations >= 3, "sft.polychromic.num_generations", self.num_generations,
              "must be >= 3 (leave-one-out needs a pair left)")
        check_positive(self, "sft.polychromic", ("generation_steps", "max_generation_prompts", "max_completion_length"))
        check_sampling("sft.polychromic", self.temperature, self.top_p)


@dataclass
class PolychromicSFTParams(PolychromicTermConfig):
    quality: str = help_field(
        "heuristic", "Per-reply quality in f(set): `heuristic` (reward.heuristic) or `none` (1)."
    )

    def __post_init__(self) -> None:
        self.check_term()
        check(self.quality in POLYCHROMIC_QUALITY, "sft.polychromic.quality", self.quality,
              f"choose one of {POLYCHROMIC_QUALITY}")


@dataclass
class SFTStageConfig:
    datasets: list[str] = help_field(
        ["phase1"], "Training data of the sft matrix: `phase1` (the GRPO warm-starts) and/or `full` (all training "
                    "data, the recipe's one-phase arm). The CPU demo trains phase1 only: at its max_steps a full run "
                    "sees no more rows than a phase-1 run, only others (README).",
    )
    validation_fraction: float = help_field(
        0.01, "Share of the training groups (conversations, else tweets) held out, whole, for eval loss."
    )
    train: SFTTrainConfig = field(default_factory=SFTTrainConfig)
    lora: SFTLoraConfig = field(default_factory=SFTLoraConfig)
    epochs: SFTEpochsConfig = field(default_factory=SFTEpochsConfig)
    baseline: BaselineSFTConfig = field(default_factory=BaselineSFTConfig)
    polychromic: PolychromicSFTParams = field(default_factory=PolychromicSFTParams)

    def __post_init__(self) -> None:
        check(0.0 < self.validation_fraction < 1.0, "sft.validation_fraction", self.validation_fraction,
              "must be in (0, 1)")
        check(bool(self.datasets) and set(self.datasets) <= set(SFT_DATA) and len(set(self.datasets)) == len(self.datasets),
              "sft.datasets", self.datasets, f"must list some of {SFT_DATA}, each once")
