"""`prompt`: the one prompt used by SFT, GRPO and evaluation (a train/eval prompt mismatch is a known failure)."""

from __future__ import annotations

from dataclasses import dataclass

from replyrl.configs.loader import check, help_field


@dataclass
class PromptConfig:
    template: str = help_field(
        "Generate an engaging Twitter reply to this tweet:\n\n{tweet}\n\nReply:",
        "User-turn text; `{tweet}` is replaced by the tweet.",
    )
    use_chat_template: bool = help_field(
        True, "Wrap the text as one user turn in the tokenizer's chat template, if it has one."
    )

    def __post_init__(self) -> None:
        check("{tweet}" in self.template, "prompt.template", self.template, "it must contain '{tweet}'")
