"""`yardstick`: degenerate replies against human ones under every judge (`evaluation/yardstick.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from replyrl.configs.loader import check_positive, help_field


@dataclass
class YardstickConfig:
    tweets: int = help_field(300, "Held-out test pairs (seeded choice; all if fewer) on which every kind is scored.")
    seed: int = help_field(0, "Seed of that choice, of the replies drawn from other conversations and of the kinds.")

    def __post_init__(self) -> None:
        check_positive(self, "yardstick", ("tweets",))
