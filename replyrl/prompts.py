"""The one prompt builder used by SFT, GRPO and evaluation alike."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from replyrl.configs.prompt import PromptConfig


def build_prompt(tokenizer: PreTrainedTokenizerBase, tweet: str, config: PromptConfig) -> str:
    """Return the exact text the model sees before its reply.

    With a chat template the instruction becomes one user turn followed by the assistant header
    (``add_generation_prompt=True``), so generation starts where the reply belongs.
    """
    text = config.template.replace("{tweet}", tweet)
    if config.use_chat_template and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    return text


def build_prompts(tokenizer: PreTrainedTokenizerBase, tweets: Sequence[str], config: PromptConfig) -> list[str]:
    return [build_prompt(tokenizer, t, config) for t in tweets]
