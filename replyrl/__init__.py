"""replyrl: train and evaluate reply-writing language models (SFT warm-start, then GRPO)."""

__version__ = "0.1.0"
