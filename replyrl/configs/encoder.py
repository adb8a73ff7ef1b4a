"""`encoder`: the sentence encoder behind the relevance reward, the learned reward, diversity and metrics."""

from __future__ import annotations

from dataclasses import dataclass

from replyrl.configs.loader import check_positive, help_field


@dataclass
class EncoderConfig:
    model: str = help_field(
        "all-MiniLM-L6-v2", "`all-MiniLM-L6-v2` (offline, packaged), a sentence-transformers id or a local folder."
    )
    batch_size: int = help_field(64, "Sentences per encoder batch.")

    def __post_init__(self) -> None:
        check_positive(self, "encoder", ("batch_size",))
