"""The LoRA adapter fields shared by `sft.lora` and `grpo.lora` (names are `peft.LoraConfig` fields)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from replyrl.configs.loader import check, help_field


@dataclass
class LoraParams:
    """Subclasses set ``SECTION`` (the params key, for error messages) and their own defaults."""

    SECTION: ClassVar[str] = "lora"

    r: int = help_field(16, "LoRA rank.")
    lora_alpha: int = help_field(32, "LoRA scaling numerator (scale = lora_alpha / r).")
    lora_dropout: float = help_field(0.0, "Dropout on the LoRA input.")
    target_modules: list[str] = help_field(
        ["q_proj", "k_proj", "v_proj", "o_proj"],
        "Module names that get an adapter (never `lm_head`: TRL's fused head reads its weight directly).",
    )

    def __post_init__(self) -> None:
        check(self.r > 0, f"{self.SECTION}.r", self.r, "must be > 0")
        check(self.lora_alpha > 0, f"{self.SECTION}.lora_alpha", self.lora_alpha, "must be > 0")
        check(0.0 <= self.lora_dropout < 1.0, f"{self.SECTION}.lora_dropout", self.lora_dropout, "must be in [0, 1)")
        check(bool(self.target_modules) and "lm_head" not in self.target_modules, f"{self.SECTION}.target_modules",
              self.target_modules, "must be non-empty and exclude lm_head")
