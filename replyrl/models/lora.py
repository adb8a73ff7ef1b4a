"""Check LoRA `target_modules` against the model they are applied to, before training starts."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from replyrl.configs.loader import ConfigError


def linear_layer_names(model: nn.Module) -> list[str]:
    """The distinct last name components of the model's linear layers: what `target_modules` can name."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)})


def check_lora_targets(model: nn.Module, targets: Sequence[str], param: str) -> None:
    """Raise a one-line error naming ``param`` when a target matches no linear layer of ``model``.

    peft would otherwise fail deep inside the trainer, or (for a partial match) silently adapt fewer
    layers than the user asked for; model families name their projections differently (Phi-3 fuses
    q, k and v into `qkv_proj`).
    """
    names = linear_layer_names(model)
    missing = [t for t in targets if t not in names]
    if missing:
        raise ConfigError(f"{param}: {missing} match no linear layer of {type(model).__name__}; "
                          f"its linear layers are {names}")
