"""`prepare`: where the (tweet, reply) rows come from and which rows are rejected."""

from __future__ import annotations

from dataclasses import dataclass

from replyrl.configs.loader import check, check_positive, help_field


@dataclass
class PrepareConfig:
    source: str = help_field("sample", "`sample` for the built-in chitchat corpus, or a path/glob of JSONL files.")
    sample_size: int = help_field(6000, "Number of (message, reply) pairs drawn for the sample.")
    sample_seed: int = help_field(0, "Seed for drawing the sample and simulating its likes.")
    max_chars: int = help_field(500, "Rows whose tweet or reply is longer are rejected.")
    max_reject_fraction: float = help_field(0.2, "Fail the stage if a larger fraction of input rows is rejected.")

    def __post_init__(self) -> None:
        check_positive(self, "prepare", ("sample_size", "max_chars"))
        check(0.0 <= self.max_reject_fraction <= 1.0, "prepare.max_reject_fraction", self.max_reject_fraction,
              "must be in [0, 1]")
