"""`base`: the policy's starting checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from replyrl.configs.loader import help_field


@dataclass
class BaseConfig:
    model: str = help_field(
        "smollm2-135m-instruct", "`smollm2-135m-instruct` (offline, packaged), a Hugging Face id or a local folder."
    )
