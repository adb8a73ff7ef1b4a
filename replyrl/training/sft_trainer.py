"""`ReplySFTTrainer`: TRL's `SFTTrainer` with training forwards that run shared prompt prefixes once."""

from __future__ import annotations

from typing import Any

from trl import SFTTrainer

from replyrl.models.shared_prefix import add_shared_prefix_forward


class ReplySFTTrainer(SFTTrainer):
    """`SFTTrainer` whose forwards compute the chat-template header common to a batch's rows once, and
    log-probs on the reply tokens only (`replyrl.models.shared_prefix`); the loss is TRL's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The fused-head outputs TRL's __init__ asks for (entropy and top-1 feed its logged metrics).
        add_shared_prefix_forward(self.model, outputs=("log_probs", "entropy", "is_top1"))
