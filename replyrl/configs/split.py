"""`split`: the grouped, engagement-stratified split into test, phase 1 and phase 2."""

from __future__ import annotations

from dataclasses import dataclass

from replyrl.configs.loader import check, help_field


@dataclass
class SplitConfig:
    seed: int = help_field(42, "Seed of the grouped, stratified split.")
    test_fraction: float = help_field(0.1, "Share of groups (conversations, else tweets) held out for the test set.")
    split_ratio: float = help_field(0.5, "Share of the non-test groups that go to phase 1 (SFT); the rest to phase 2.")

    def __post_init__(self) -> None:
        for name in ("test_fraction", "split_ratio"):
            check(0.0 < getattr(self, name) < 1.0, f"split.{name}", getattr(self, name), "must be in (0, 1)")
