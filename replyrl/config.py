"""One dataclass per stage, mirroring that stage's section of ``params.yaml``.

Fields carry a ``help`` string (as TRL's configs do) and ``__post_init__`` checks values. Unknown
keys are rejected with the file and key named, so a typo in params.yaml stops the run instead of
being ignored. Field names follow TRL/transformers where a value is passed straight through.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read the whole params file."""
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of stage sections at the top level")
    return params


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _check_type(value, option, where)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{where}: {value!r} is not of type {hint}")
    if hint is type(None):
        if value is None:
            return None
        raise TypeError(f"{where}: expected null, got {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(hint, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise TypeError(f"{where}: expected a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        return [_check_type(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected a mapping, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise TypeError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build dataclass ``cls`` from ``data``; ``where`` names the source (e.g. ``params.yaml: sft``)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def load_section(cls: type[T], name: str, path: str | Path = PARAMS_FILE) -> T:
    """Load section ``name`` of the params file into ``cls``; a missing section means all defaults."""
    params = load_params(path)
    return from_dict(cls, params.get(name) or {}, f"{path}: {name}")


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict view of a config, for logging and for the params JSON saved beside models."""
    return dataclasses.asdict(config)


# ----------------------------------------------------------------------------------------------
# prompt: shared by SFT, GRPO and evaluation (a train/eval prompt mismatch is a known failure)


@dataclass
class PromptConfig:
    template: str = field(
        default="Generate an engaging Twitter reply to this tweet:\n\n{tweet}\n\nReply:",
        metadata={"help": "User-turn text; `{tweet}` is replaced by the tweet."},
    )
    use_chat_template: bool = field(
        default=True, metadata={"help": "Wrap the text as one user turn in the tokenizer's chat template, if it has one."}
    )

    def __post_init__(self) -> None:
        if "{tweet}" not in self.template:
            raise ValueError(f"prompt.template must contain '{{tweet}}', got {self.template!r}")


# ----------------------------------------------------------------------------------------------
# prepare / split


@dataclass
class PrepareConfig:
    source: str = field(
        default="sample",
        metadata={"help": "`sample` for the built-in chitchat corpus, or a path/glob of JSONL files."},
    )
    sample_size: int = field(default=6000, metadata={"help": "Number of (message, reply) pairs drawn for the sample."})
    sample_seed: int = field(default=0, metadata={"help": "Seed for drawing the sample and simulating its likes."})
    max_chars: int = field(default=500, metadata={"help": "Rows whose tweet or reply is longer are rejected."})
    max_reject_fraction: float = field(
        default=0.2, metadata={"help": "Fail the stage if a larger fraction of input rows is rejected."}
    )

    def __post_init__(self) -> None:
        if self.sample_size <= 0:
            raise ValueError(f"prepare.sample_size must be > 0, got {self.sample_size}")
        if self.max_chars <= 0:
            raise ValueError(f"prepare.max_chars must be > 0, got {self.max_chars}")
        if not 0.0 <= self.max_reject_fraction <= 1.0:
            raise ValueError(f"prepare.max_reject_fraction must be in [0, 1], got {self.max_reject_fraction}")


@dataclass
class SplitConfig:
    seed: int = field(default=42, metadata={"help": "Seed of the grouped, stratified split."})
    test_fraction: float = field(default=0.1, metadata={"help": "Share of tweets held out for the test set."})
    split_ratio: float = field(
        default=0.5, metadata={"help": "Share of the non-test tweets that go to phase 1 (SFT); the rest to phase 2."}
    )

    def __post_init__(self) -> None:
        for name in ("test_fraction", "split_ratio"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"split.{name} must be in (0, 1), got {value}")


# ----------------------------------------------------------------------------------------------
# base / encoder


@dataclass
class BaseConfig:
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "`smollm2-135m-instruct` (offline, packaged), a Hugging Face id or a local folder."},
    )


@dataclass
class EncoderConfig:
    model: str = field(
        default="all-MiniLM-L6-v2",
        metadata={"help": "`all-MiniLM-L6-v2` (offline, packaged), a sentence-transformers id or a local folder."},
    )
    batch_size: int = field(default=64, metadata={"help": "Sentences per encoder batch."})


# ----------------------------------------------------------------------------------------------
# reward: the original recipe's heuristic, and a learned engagement model on frozen embeddings


# The additive components of the heuristic; the generic multiplier scales their weighted sum.
HEURISTIC_WEIGHTS = ("relevance_weight", "length_weight", "sentiment_weight", "unique_words_weight", "punctuation_weight")


@dataclass
class HeuristicRewardConfig:
    # Weights of the additive components; they sum to 0.8 in the original recipe, whose remaining
    # "20% generic" part is really the multiplier below, so the best possible reply scores 0.8.
    relevance_weight: float = field(default=0.30, metadata={"help": "Weight of the tweet-reply encoder cosine."})
    length_weight: float = field(default=0.15, metadata={"help": "Weight of the reply-length score."})
    sentiment_weight: float = field(default=0.15, metadata={"help": "Weight of TextBlob polarity alignment."})
    unique_words_weight: float = field(default=0.10, metadata={"help": "Weight of the unique-word ratio."})
    punctuation_weight: float = field(default=0.10, metadata={"help": "Weight of the punctuation-density score."})
    # length
    length_min_chars: int = field(default=50, metadata={"help": "Shortest reply (chars) with a full length score."})
    length_max_chars: int = field(default=150, metadata={"help": "Longest reply (chars) with a full length score."})
    length_outside_score: float = field(default=0.6, metadata={"help": "Length score outside that range."})
    # punctuation
    punctuation_chars: str = field(default="!?.", metadata={"help": "Characters counted as punctuation."})
    punctuation_max_ratio: float = field(
        default=0.1, metadata={"help": "Punctuation characters / all characters below this scores 1.0."}
    )
    punctuation_over_score: float = field(default=0.5, metadata={"help": "Punctuation score at or above that ratio."})
    # generic replies
    generic_phrases: list[str] = field(
        default_factory=lambda: ["thanks", "agree", "this", "nice", "great"],
        metadata={"help": "Phrases (whole words, case-insensitive) that mark a short reply as generic."},
    )
    generic_max_chars: int = field(
        default=30, metadata={"help": "Only replies shorter than this (characters) can be generic."}
    )
    generic_multiplier: float = field(
        default=0.5, metadata={"help": "The whole score is multiplied by this for a generic reply."}
    )
    # Not in the original recipe: GRPO learned to copy the tweet back (a copy maximises relevance and
    # sentiment alignment, scoring ~0.77 of 0.8). echo_multiplier: 1.0 restores the recipe's formula.
    echo_min_similarity: float = field(
        default=0.8,
        metadata={"help": "A reply whose character similarity to the tweet (difflib ratio, lower-cased) is at "
                          "least this counts as an echo of the tweet."},
    )
    echo_multiplier: float = field(
        default=0.5, metadata={"help": "The whole score is multiplied by this for an echo; 1.0 = off."}
    )

    def __post_init__(self) -> None:
        for name in HEURISTIC_WEIGHTS:
            if getattr(self, name) < 0:
                raise ValueError(f"reward.heuristic.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.length_min_chars <= self.length_max_chars:
            raise ValueError(
                "reward.heuristic needs 0 <= length_min_chars <= length_max_chars, "
                f"got {self.length_min_chars} and {self.length_max_chars}"
            )
        for name in ("length_outside_score", "punctuation_over_score", "generic_multiplier", "echo_min_similarity",
                     "echo_multiplier"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"reward.heuristic.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.punctuation_max_ratio <= 1.0:
            raise ValueError(
                f"reward.heuristic.punctuation_max_ratio must be in (0, 1], got {self.punctuation_max_ratio}"
            )
        if not self.punctuation_chars:
            raise ValueError("reward.heuristic.punctuation_chars must not be empty")
        if any(not p.strip() for p in self.generic_phrases):
            raise ValueError(f"reward.heuristic.generic_phrases must not contain blanks, got {self.generic_phrases}")

    @property
    def max_score(self) -> float:
        """Best possible total: every component at 1.0 and no generic penalty (0.8 by default)."""
        return sum(getattr(self, name) for name in HEURISTIC_WEIGHTS)


@dataclass
class LearnedRewardConfig:
    hidden_sizes: list[int] = field(
        default_factory=lambda: [256, 64], metadata={"help": "Hidden layer widths of the MLP head."}
    )
    dropout: float = field(default=0.1, metadata={"help": "Dropout after each hidden layer."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=1e-2, metadata={"help": "AdamW weight decay."})
    batch_size: int = field(default=128, metadata={"help": "Pairs per optimisation step."})
    max_epochs: int = field(default=200, metadata={"help": "Upper bound on epochs; early stopping ends sooner."})
    patience: int = field(default=10, metadata={"help": "Stop after this many epochs without a lower validation MSE."})
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Share of the training tweets (grouped by tweet) held out for early stopping."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of the validation slice, initialisation and shuffling."})

    def __post_init__(self) -> None:
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"reward.learned.hidden_sizes must be non-empty, all > 0; got {self.hidden_sizes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"reward.learned.dropout must be in [0, 1), got {self.dropout}")
        for name in ("learning_rate", "batch_size", "max_epochs", "patience"):
            if getattr(self, name) <= 0:
                raise ValueError(f"reward.learned.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"reward.learned.validation_fraction must be in (0, 1), got {self.validation_fraction}")


@dataclass
class RewardConfig:
    heuristic: HeuristicRewardConfig = field(default_factory=HeuristicRewardConfig)
    learned: LearnedRewardConfig = field(default_factory=LearnedRewardConfig)
    target_pearson: float = field(
        default=0.5,
        metadata={"help": "Test Pearson correlation the learned reward should exceed (the original recipe's goal)."},
    )


# ----------------------------------------------------------------------------------------------
# sft: baseline LoRA SFT and polychromic SFT. dvc.yaml lists per matrix item only the keys that item
# reads (sft.train, sft.lora, sft.validation_fraction, sft.epochs.<data>, sft.<method>), so a change
# under sft.polychromic reruns only the polychromic variants.

SFT_METHODS = ("baseline", "polychromic")
SFT_DATA = ("full", "phase1")


@dataclass
class SFTTrainConfig:
    """Optimiser and loop knobs shared by both methods; names are `trl.SFTConfig` fields."""

    learning_rate: float = field(default=2e-4, metadata={"help": "Peak AdamW learning rate (LoRA weights)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name."})
    warmup_steps: float = field(
        default=0.05, metadata={"help": "Linear warmup: a step count, or a fraction (< 1) of all steps."}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Training rows per device per micro-batch."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Validation rows per device per batch."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimiser step."})
    max_length: int = field(default=256, metadata={"help": "Prompt + reply tokens kept (longer rows are cut at the end)."})
    max_steps: int = field(
        default=20, metadata={"help": "Optimiser steps; -1 trains for `sft.epochs.<data>` epochs (full scale)."}
    )
    logging_steps: int = field(default=5, metadata={"help": "Log train metrics every N steps."})
    eval_steps: int = field(default=10, metadata={"help": "Validation loss every N steps (and at the last step)."})
    save_steps: int = field(
        default=10, metadata={"help": "Checkpoint every N steps (a multiple of eval_steps, for best-model selection)."}
    )
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept (the best one is always kept)."})
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={"help": "`group_by_length` batches rows of similar length (less padding), or `random`."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward: saves memory, costs ~20% time."}
    )
    bf16: str = field(default="auto", metadata={"help": "bf16 autocast: `auto` (where natively supported), `true`, `false`."})

    def __post_init__(self) -> None:
        for name in ("learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size",
                     "gradient_accumulation_steps", "max_length", "logging_steps", "eval_steps", "save_steps",
                     "save_total_limit"):
            if getattr(self, name) <= 0:
                raise ValueError(f"sft.train.{name} must be > 0, got {getattr(self, name)}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"sft.train.max_steps must be > 0, or -1 to train by epochs; got {self.max_steps}")
        if self.save_steps % self.eval_steps:
            raise ValueError(
                f"sft.train.save_steps ({self.save_steps}) must be a multiple of eval_steps ({self.eval_steps}): "
                "the best checkpoint is chosen among evaluated ones"
            )
        if self.bf16 not in ("auto", "true", "false"):
            raise ValueError(f"sft.train.bf16 must be 'auto', 'true' or 'false', got {self.bf16!r}")


@dataclass
class SFTLoraConfig:
    """LoRA adapter; names are `peft.LoraConfig` fields."""

    r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Module names that get adapters (not lm_head: TRL's fused head ignores it)."},
    )

    def __post_init__(self) -> None:
        if self.r <= 0 or self.lora_alpha <= 0:
            raise ValueError(f"sft.lora needs r > 0 and lora_alpha > 0, got r={self.r}, lora_alpha={self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"sft.lora.lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.target_modules:
            raise ValueError("sft.lora.target_modules must not be empty")


@dataclass
class SFTEpochsConfig:
    """Epochs per training file, used when `sft.train.max_steps` is -1."""

    full: float = field(default=3.0, metadata={"help": "Epochs over full_train.jsonl (original recipe: 3)."})
    phase1: float = field(default=2.0, metadata={"help": "Epochs over the phase-1 warm-start data (original recipe: 2)."})

    def __post_init__(self) -> None:
        for name in SFT_DATA:
            if getattr(self, name) <= 0:
                raise ValueError(f"sft.epochs.{name} must be > 0, got {getattr(self, name)}")


@dataclass
class BaselineSFTConfig:
    """Plain SFT has no knobs beyond sft.train/sft.lora; the (empty) section exists so dvc.yaml can list
    `sft.${item.method}` for every matrix item."""


POLYCHROMIC_QUALITY = ("heuristic", "none")


@dataclass
class PolychromicSFTParams:
    """The set-level diversity term; names match `replyrl.training.polychromic.PolychromicSFTConfig`."""

    polychromic_coef: float = field(default=0.3, metadata={"help": "λ: weight of the set-advantage term in the loss."})
    num_generations: int = field(default=4, metadata={"help": "Replies sampled per prompt to form a set (>= 3)."})
    generation_steps: int = field(default=5, metadata={"help": "Compute the term every N optimiser steps."})
    max_generation_prompts: int = field(default=2, metadata={"help": "At most this many prompts of a micro-batch get sets."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the sets."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus mass of the sets."})
    max_completion_length: int = field(default=24, metadata={"help": "Longest sampled reply, in tokens."})
    quality: str = field(
        default="heuristic", metadata={"help": "Per-reply quality in f(set): `heuristic` (reward.heuristic) or `none` (1)."}
    )

    def __post_init__(self) -> None:
        if self.polychromic_coef < 0:
            raise ValueError(f"sft.polychromic.polychromic_coef must be >= 0, got {self.polychromic_coef}")
        if self.num_generations < 3:
            raise ValueError(
                f"sft.polychromic.num_generations must be >= 3 (leave-one-out needs a pair left), got {self.num_generations}"
            )
        for name in ("generation_steps", "max_generation_prompts", "max_completion_length"):
            if getattr(self, name) <= 0:
                raise ValueError(f"sft.polychromic.{name} must be > 0, got {getattr(self, name)}")
        if self.temperature <= 0 or not 0.0 < self.top_p <= 1.0:
            raise ValueError(
                f"sft.polychromic needs temperature > 0 and top_p in (0, 1], got {self.temperature}, {self.top_p}"
            )
        if self.quality not in POLYCHROMIC_QUALITY:
            raise ValueError(f"sft.polychromic.quality must be one of {POLYCHROMIC_QUALITY}, got {self.quality!r}")


@dataclass
class SFTStageConfig:
    validation_fraction: float = field(
        default=0.02, metadata={"help": "Share of the training tweets (grouped by tweet) held out for eval loss."}
    )
    train: SFTTrainConfig = field(default_factory=SFTTrainConfig)
    lora: SFTLoraConfig = field(default_factory=SFTLoraConfig)
    epochs: SFTEpochsConfig = field(default_factory=SFTEpochsConfig)
    baseline: BaselineSFTConfig = field(default_factory=BaselineSFTConfig)
    polychromic: PolychromicSFTParams = field(default_factory=PolychromicSFTParams)

    def __post_init__(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"sft.validation_fraction must be in (0, 1), got {self.validation_fraction}")


# ----------------------------------------------------------------------------------------------
# generate / evaluate: one params section. `generate` reads (and dvc.yaml lists for it) only the
# model lists, prompt selection and sampling keys, so changing a metric setting reruns `evaluate` only.

PASS_JUDGES = ("learned", "heuristic", "llm")


@dataclass
class PassAtKConfig:
    judge: str = field(
        default="learned",
        metadata={"help": "Who scores a sample: `learned` (predicted engagement), `heuristic` or `llm` (pairwise vs the human reply)."},
    )
    threshold: float | None = field(
        default=None,
        metadata={"help": "A sample passes when its judge score >= this; null = median judge score of the human replies."},
    )
    k: list[int] = field(default_factory=lambda: [1, 3, 5, 10], metadata={"help": "The k of Pass@k."})
    bootstrap_samples: int = field(default=1000, metadata={"help": "Bootstrap resamples (over prompts) for the CI."})
    confidence: float = field(default=0.95, metadata={"help": "Confidence level of the bootstrap interval."})

    def __post_init__(self) -> None:
        if self.judge not in PASS_JUDGES:
            raise ValueError(f"evaluate.pass_at_k.judge must be one of {PASS_JUDGES}, got {self.judge!r}")
        if not self.k or any(k <= 0 for k in self.k):
            raise ValueError(f"evaluate.pass_at_k.k must be a non-empty list of positive ints, got {self.k}")
        if self.bootstrap_samples <= 0:
            raise ValueError(f"evaluate.pass_at_k.bootstrap_samples must be > 0, got {self.bootstrap_samples}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"evaluate.pass_at_k.confidence must be in (0, 1), got {self.confidence}")


@dataclass
class SignificanceConfig:
    baseline: str = field(default="baseline_full", metadata={"help": "Every other model is tested against this one."})
    pairs: list[list[str]] = field(
        default_factory=lambda: [["grpo_from_polychromic", "grpo_from_baseline"]],
        metadata={"help": "Extra [model, other] comparisons."},
    )
    correction: str = field(
        default="holm", metadata={"help": "Multiple-comparison adjustment of the p-values: `holm` or `bonferroni`."}
    )
    alpha: float = field(default=0.05, metadata={"help": "Significance level used in the report."})

    def __post_init__(self) -> None:
        if any(len(pair) != 2 for pair in self.pairs):
            raise ValueError(f"evaluate.significance.pairs must hold [model, other] pairs, got {self.pairs}")
        if self.correction not in ("holm", "bonferroni"):
            raise ValueError(f"evaluate.significance.correction must be 'holm' or 'bonferroni', got {self.correction!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"evaluate.significance.alpha must be in (0, 1), got {self.alpha}")


@dataclass
class JudgeConfig:
    enabled: bool = field(default=False, metadata={"help": "Run the LLM judge (needs ANTHROPIC_API_KEY; skipped without)."})
    model: str = field(default="claude-haiku-4-5", metadata={"help": "Anthropic model id of the judge."})
    base_url: str | None = field(default=None, metadata={"help": "API base URL; null = the SDK default."})
    max_calls: int = field(default=200, metadata={"help": "At most this many new (uncached) API calls per run."})
    max_tokens: int = field(default=5, metadata={"help": "Output token cap; the judge answers A, B or TIE."})
    input_usd_per_mtok: float = field(default=1.0, metadata={"help": "Input price, for the cost estimate printed first."})
    output_usd_per_mtok: float = field(default=5.0, metadata={"help": "Output price, for the cost estimate."})
    cache: str = field(
        default="reports/judge_cache/judgments.jsonl",
        metadata={"help": "Every judgment is appended here as it arrives; cached ones are never paid for twice."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the randomised A/B order."})

    def __post_init__(self) -> None:
        if self.max_calls < 0 or self.max_tokens <= 0:
            raise ValueError(f"evaluate.judge needs max_calls >= 0 and max_tokens > 0, got {self.max_calls}, {self.max_tokens}")


@dataclass
class EvaluateConfig:
    # models: generated per seed of `seeds`; folders models/<base>, models/sft/<name>/seed_<s>, models/grpo/from_<init>/seed_<s>
    base_models: list[str] = field(
        default_factory=list, metadata={"help": "`[base]` also evaluates the untuned base model."}
    )
    sft_models: list[str] = field(
        default_factory=lambda: ["baseline_full", "polychromic_full"],
        metadata={"help": "SFT adapters; add `baseline_phase1`/`polychromic_phase1` for the GRPO warm-starts."},
    )
    grpo_inits: list[str] = field(
        default_factory=lambda: ["baseline", "polychromic"], metadata={"help": "GRPO runs, named grpo_from_<init>."}
    )
    # test prompts and sampling (the `generate` stage)
    max_prompts: int | None = field(
        default=32, metadata={"help": "Evaluate this many test tweets (a seeded random choice); null = all."}
    )
    prompt_seed: int = field(default=0, metadata={"help": "Seed of the choice of test tweets."})
    n_samples: int = field(default=10, metadata={"help": "Sampled replies per tweet (>= the largest k of Pass@k)."})
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass."})
    max_new_tokens: int = field(default=32, metadata={"help": "Longest reply, in tokens."})
    batch_size: int = field(default=8, metadata={"help": "Tweets per `generate` call (each yields n_samples sequences)."})
    bf16: str = field(
        default="auto", metadata={"help": "Generate with bf16 weights: `auto` (where the hardware runs bf16 natively), `true`, `false`."}
    )
    # metrics (the `evaluate` stage only)
    pass_at_k: PassAtKConfig = field(default_factory=PassAtKConfig)
    bertscore_layer: int | None = field(
        default=None, metadata={"help": "Encoder layer whose token embeddings BERTScore compares; null = the last."}
    )
    significance: SignificanceConfig = field(default_factory=SignificanceConfig)
    report_examples: int = field(default=5, metadata={"help": "Random test tweets shown with every model's samples."})
    report_seed: int = field(default=0, metadata={"help": "Seed of the choice of those tweets."})
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def __post_init__(self) -> None:
        if any(name != "base" for name in self.base_models):
            raise ValueError(f"evaluate.base_models may only be [] or [base], got {self.base_models}")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"evaluate: a model is listed twice in {self.models}")
        if self.n_samples < max(self.pass_at_k.k):
            raise ValueError(
                f"evaluate.n_samples ({self.n_samples}) must be >= the largest k of Pass@k ({max(self.pass_at_k.k)})"
            )
        if self.max_prompts is not None and self.max_prompts <= 0:
            raise ValueError(f"evaluate.max_prompts must be > 0 or null, got {self.max_prompts}")
        if self.pass_at_k.judge == "llm" and not self.judge.enabled:
            raise ValueError("evaluate.pass_at_k.judge is 'llm': set evaluate.judge.enabled to true as well")
        if self.temperature <= 0 or not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"evaluate needs temperature > 0 and top_p in (0, 1], got {self.temperature}, {self.top_p}")
        for name in ("max_new_tokens", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"evaluate.{name} must be > 0, got {getattr(self, name)}")
        if self.bf16 not in ("auto", "true", "false"):
            raise ValueError(f"evaluate.bf16 must be auto, true or false, got {self.bf16!r}")

    @property
    def models(self) -> list[str]:
        """Every evaluated model's name, as used in `data/generations/<name>/` and the metric keys."""
        return [*self.base_models, *self.sft_models, *(f"grpo_from_{init}" for init in self.grpo_inits)]


# ----------------------------------------------------------------------------------------------
# grpo: refine each SFT warm-start against the reward. Names follow TRL's GRPOConfig where passed
# through; defaults are the CPU demo of params.yaml, and the help says where the recipe differs.

GRPO_REWARD_TYPES = ("heuristic", "learned", "mix")
GRPO_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo")
GRPO_SCALE_REWARDS = ("group", "batch", "none")


@dataclass
class GRPOLoraConfig:
    """The NEW adapter trained on the merged warm-start; names are `peft.LoraConfig` fields (no dropout in RL)."""

    r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = lora_alpha / r)."})
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Module names that get an adapter (never `lm_head`: TRL reads its weight directly)."},
    )

    def __post_init__(self) -> None:
        if self.r <= 0 or self.lora_alpha <= 0:
            raise ValueError(f"grpo.lora needs r > 0 and lora_alpha > 0, got r={self.r}, lora_alpha={self.lora_alpha}")
        if not self.target_modules or "lm_head" in self.target_modules:
            raise ValueError(
                f"grpo.lora.target_modules must be non-empty and exclude lm_head, got {self.target_modules}"
            )


@dataclass
class GRPOStageConfig:
    # reward
    reward_type: str = field(
        default="heuristic",
        metadata={"help": "`heuristic`, `learned`, or `mix` (the two weighted by the mix_* weights)."},
    )
    mix_heuristic_weight: float = field(default=0.5, metadata={"help": "Heuristic's weight when reward_type=mix."})
    mix_learned_weight: float = field(default=0.5, metadata={"help": "Learned reward's weight when reward_type=mix."})
    diversity_weight: float = field(
        default=0.1,
        metadata={"help": "Weight of the diversity bonus (mean encoder distance to the group's other replies); 0 = off."},
    )
    # rollouts (the recipe: n_generations 4, temperature 0.8, top_p 0.9)
    num_generations: int = field(default=4, metadata={"help": "Replies sampled per prompt (the GRPO group)."})
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature of the rollouts."})
    top_p: float = field(default=0.9, metadata={"help": "Nucleus sampling threshold of the rollouts."})
    max_completion_length: int = field(default=32, metadata={"help": "Max new tokens per reply."})
    prompts_per_step: int = field(
        default=4, metadata={"help": "Distinct prompts per micro-batch, each sampled num_generations times."}
    )
    # objective
    kl_coeff: float = field(
        default=0.1,
        metadata={"help": "KL coefficient, passed to TRL as `beta` (TRL's default 0 drops the KL term and reference)."},
    )
    loss_type: str = field(
        default="dapo",
        metadata={"help": "TRL's token aggregation: `dapo` = mean over the batch's tokens (no length bias); "
                          "`grpo` = per-sequence mean first (favours short positive replies)."},
    )
    scale_rewards: str = field(
        default="group", metadata={"help": "Divide advantages by the std of the `group`, the `batch`, or `none`."}
    )
    advantage_clip: float = field(
        default=10.0, metadata={"help": "Clip advantages to [-c, c] (the recipe's safeguard)."}
    )
    epsilon: float = field(default=0.2, metadata={"help": "PPO ratio clip; inactive with num_iterations=1."})
    num_iterations: int = field(default=1, metadata={"help": "Updates per batch of rollouts (GRPO's mu)."})
    # optimisation
    learning_rate: float = field(
        default=2e-4, metadata={"help": "AdamW learning rate of the LoRA weights (recipe: 1e-5; see README)."}
    )
    lr_scheduler_type: str = field(default="constant", metadata={"help": "transformers scheduler name."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clip."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    max_steps: int = field(default=16, metadata={"help": "Optimizer steps (`--max-steps` overrides)."})
    lora: GRPOLoraConfig = field(default_factory=GRPOLoraConfig)
    bf16: str = field(
        default="auto",
        metadata={"help": "`auto` (bf16 weights + autocast where the hardware runs bf16 natively), `true`, `false`."},
    )
    activation_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward: saves memory, costs ~20% time."}
    )
    # safeguards and logging
    kl_alarm: float = field(default=10.0, metadata={"help": "Warn, and count in the metrics, when the KL exceeds this."})
    save_steps: int = field(default=10, metadata={"help": "Checkpoint every N steps (recipe: 100); reruns resume."})
    logging_steps: int = field(default=1, metadata={"help": "Log metrics every N steps."})
    sample_every: int = field(
        default=10, metadata={"help": "Write sample generations every N steps (and at the start and end)."}
    )
    sample_prompts: int = field(default=4, metadata={"help": "Fixed phase-2 tweets sampled each time."})

    def __post_init__(self) -> None:
        if self.reward_type not in GRPO_REWARD_TYPES:
            raise ValueError(f"grpo.reward_type must be one of {GRPO_REWARD_TYPES}, got {self.reward_type!r}")
        if self.loss_type not in GRPO_LOSS_TYPES:
            raise ValueError(f"grpo.loss_type must be one of {GRPO_LOSS_TYPES}, got {self.loss_type!r}")
        if self.scale_rewards not in GRPO_SCALE_REWARDS:
            raise ValueError(f"grpo.scale_rewards must be one of {GRPO_SCALE_REWARDS}, got {self.scale_rewards!r}")
        if self.bf16 not in ("auto", "true", "false"):
            raise ValueError(f"grpo.bf16 must be auto, true or false, got {self.bf16!r}")
        if self.num_generations < 2:
            raise ValueError(
                f"grpo.num_generations must be >= 2 (advantages compare replies in a group), got {self.num_generations}"
            )
        for name in ("mix_heuristic_weight", "mix_learned_weight", "diversity_weight", "kl_coeff", "epsilon"):
            if getattr(self, name) < 0:
                raise ValueError(f"grpo.{name} must be >= 0, got {getattr(self, name)}")
        if self.reward_type == "mix" and self.mix_heuristic_weight + self.mix_learned_weight <= 0:
            raise ValueError("grpo.reward_type=mix needs mix_heuristic_weight + mix_learned_weight > 0")
        if self.temperature <= 0 or not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"grpo needs temperature > 0 and top_p in (0, 1], got {self.temperature}, {self.top_p}")
        for name in ("max_completion_length", "prompts_per_step", "advantage_clip", "num_iterations", "learning_rate",
                     "max_grad_norm", "gradient_accumulation_steps", "max_steps", "kl_alarm", "save_steps",
                     "logging_steps", "sample_every", "sample_prompts"):
            if getattr(self, name) <= 0:
                raise ValueError(f"grpo.{name} must be > 0, got {getattr(self, name)}")

    def reward_weights(self) -> dict[str, float]:
        """Name -> weight of every reward term GRPO sums (zero-weight terms left out)."""
        task = {"heuristic": {"heuristic": 1.0}, "learned": {"learned": 1.0},
                "mix": {"heuristic": self.mix_heuristic_weight, "learned": self.mix_learned_weight}}[self.reward_type]
        weights = {name: w for name, w in task.items() if w > 0}
        if self.diversity_weight > 0:
            weights["diversity"] = self.diversity_weight
        return weights
