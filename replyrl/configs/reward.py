"""`reward`: the original recipe's heuristic, and a learned engagement model on frozen embeddings."""

from __future__ import annotations

from dataclasses import dataclass, field

from replyrl.configs.loader import check, check_positive, help_field

# The additive components of the heuristic; the generic multiplier scales their weighted sum.
HEURISTIC_WEIGHTS = ("relevance_weight", "length_weight", "sentiment_weight", "unique_words_weight", "punctuation_weight")


@dataclass
class HeuristicRewardConfig:
    # Weights of the additive components; they sum to 0.8 in the original recipe, whose remaining
    # "20% generic" part is really the multiplier below, so the best possible reply scores 0.8.
    relevance_weight: float = help_field(0.30, "Weight of the tweet-reply encoder cosine.")
    length_weight: float = help_field(0.15, "Weight of the reply-length score.")
    sentiment_weight: float = help_field(0.15, "Weight of TextBlob polarity alignment.")
    unique_words_weight: float = help_field(0.10, "Weight of the unique-word ratio.")
    punctuation_weight: float = help_field(0.10, "Weight of the punctuation-density score.")
    # length
    length_min_chars: int = help_field(50, "Shortest reply (chars) with a full length score.")
    length_max_chars: int = help_field(150, "Longest reply (chars) with a full length score.")
    length_outside_score: float = help_field(0.6, "Length score outside that range.")
    # punctuation
    punctuation_chars: str = help_field("!?.", "Characters counted as punctuation.")
    punctuation_max_ratio: float = help_field(0.1, "Punctuation characters / all characters below this scores 1.0.")
    punctuation_over_score: float = help_field(0.5, "Punctuation score at or above that ratio.")
    # generic replies
    generic_phrases: list[str] = help_field(
        ["thanks", "agree", "this", "nice", "great"],
        "Phrases (whole words, case-insensitive) that mark a short reply as generic.",
    )
    generic_max_chars: int = help_field(30, "Only replies shorter than this (characters) can be generic.")
    generic_multiplier: float = help_field(0.5, "The whole score is multiplied by this for a generic reply.")
    # Not in the original recipe: GRPO learned to copy the tweet back (a copy maximises relevance and
    # sentiment alignment, scoring ~0.75 of 0.8). Word measures catch a cut, shuffled or extended copy
    # too; the values are measured in `rewards/heuristic.py`. echo_multiplier: 1.0 restores the recipe.
    echo_min_copied_words: int = help_field(
        4, "A reply that repeats this many consecutive words of the tweet (all of a shorter tweet's) is an echo."
    )
    echo_max_word_overlap: float = help_field(
        0.65, "A reply of which at least this share of words occur in the tweet is an echo (a shuffled or cut "
              "copy); 0.65 spares 3 of 5, as in 'yes i do love dogs' to 'do you love dogs?'.",
    )
    echo_multiplier: float = help_field(
        0.25, "The whole score is multiplied by this for an echo (at most 0.2, the lowest human reply's); 1.0 = off."
    )

    def __post_init__(self) -> None:
        for name in HEURISTIC_WEIGHTS:
            check(getattr(self, name) >= 0, f"reward.heuristic.{name}", getattr(self, name), "must be >= 0")
        check(0 <= self.length_min_chars <= self.length_max_chars, "reward.heuristic.length_min_chars",
              self.length_min_chars, f"needs 0 <= length_min_chars <= length_max_chars ({self.length_max_chars})")
        for name in ("length_outside_score", "punctuation_over_score", "generic_multiplier", "echo_max_word_overlap",
                     "echo_multiplier"):
            check(0.0 <= getattr(self, name) <= 1.0, f"reward.heuristic.{name}", getattr(self, name),
                  "must be in [0, 1]")
        check(self.echo_min_copied_words > 0, "reward.heuristic.echo_min_copied_words", self.echo_min_copied_words,
              "must be > 0")
        check(0.0 < self.punctuation_max_ratio <= 1.0, "reward.heuristic.punctuation_max_ratio",
              self.punctuation_max_ratio, "must be in (0, 1]")
        check(bool(self.punctuation_chars), "reward.heuristic.punctuation_chars", self.punctuation_chars,
              "must not be empty")
        check(all(p.strip() for p in self.generic_phrases), "reward.heuristic.generic_phrases", self.generic_phrases,
              "must not contain blanks")

    @property
    def max_score(self) -> float:
        """Best possible total: every component at 1.0 and no generic penalty (0.8 by default)."""
        return sum(getattr(self, name) for name in HEURISTIC_WEIGHTS)


@dataclass
class LearnedRewardConfig:
    hidden_sizes: list[int] = help_field([256, 64], "Hidden layer widths of the MLP head.")
    dropout: float = help_field(0.1, "Dropout after each hidden layer.")
    learning_rate: float = help_field(1e-3, "AdamW learning rate.")
    weight_decay: float = help_field(1e-2, "AdamW weight decay.")
    batch_size: int = help_field(128, "Pairs per optimisation step.")
    max_epochs: int = help_field(200, "Upper bound on epochs; early stopping ends sooner.")
    patience: int = help_field(10, "Stop after this many epochs without a lower validation MSE.")
    validation_fraction: float = help_field(
        0.1, "Share of the training groups (conversations, else tweets; `groups.group_key`) held out for early stopping."
    )
    seed: int = help_field(42, "Seed of the validation slice, initialisation and shuffling.")
    negatives: bool = help_field(
        True, "Also train on the sample's degenerate replies (copies, boilerplate, other languages, ...) with their "
        "simulated likes, those of training conversations only: without them a copy of the tweet is out of the "
        "model's distribution and can score high. Own data has none (no gold to simulate likes from)."
    )

    def __post_init__(self) -> None:
        check(bool(self.hidden_sizes) and all(h > 0 for h in self.hidden_sizes), "reward.learned.hidden_sizes",
              self.hidden_sizes, "must be non-empty, all > 0")
        check(0.0 <= self.dropout < 1.0, "reward.learned.dropout", self.dropout, "must be in [0, 1)")
        check_positive(self, "reward.learned", ("learning_rate", "batch_size", "max_epochs", "patience"))
        check(0.0 < self.validation_fraction < 1.0, "reward.learned.validation_fraction", self.validation_fraction,
              "must be in (0, 1)")


@dataclass
class RewardConfig:
    heuristic: HeuristicRewardConfig = field(default_factory=HeuristicRewardConfig)
    learned: LearnedRewardConfig = field(default_factory=LearnedRewardConfig)
    target_pearson: float = help_field(
        0.5, "Test Pearson correlation the learned reward should exceed (the original recipe's goal)."
    )
