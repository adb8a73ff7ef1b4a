"""Whether a causal LM's logits are exactly its last hidden states times its head matrix.

Code that computes logits itself (the sampler's decoding step; the training forwards that share
prompt prefixes check `logit_transform`) can only do so for such a model; any other one goes through
its own forward.
"""

from __future__ import annotations

import torch
from accelerate.utils import is_peft_model
from peft import PeftType
from transformers import PreTrainedModel

# Config fields that scale the logits between the last hidden state and the softmax (1.0 = none).
_LOGIT_SCALES = ("logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")


def logit_transform(model: PreTrainedModel) -> str | None:
    """What ``model`` does to its logits after the head matrix (softcapping, scaling), or None."""
    config = model.config.get_text_config()
    if getattr(config, "final_logit_softcapping", None) is not None:
        return "logit softcapping"
    if any(getattr(config, name, None) not in (None, 1.0) for name in _LOGIT_SCALES):
        return "logit scaling"
    return None


def plain_lm_head(model: PreTrainedModel) -> tuple[torch.nn.Module, torch.Tensor] | None:
    """``(backbone, W)`` when ``model`` (a causal LM or its PEFT wrapper) computes its logits as
    ``backbone(...).last_hidden_state @ W.T`` and nothing else, else None.

    That takes a bias-free `nn.Linear` head with its class's own forward (no adapter on it, no hooks,
    no forward patched per instance as TRL's ``cast_lm_head_to_fp32`` does), no transform after it, and
    for a PEFT wrapper a plain LoRA: prompt learning, aLoRA and the like do work in the wrapper's
    forward that calling the backbone would skip.
    """
    if is_peft_model(model):
        config = model.active_peft_config
        if config.peft_type != PeftType.LORA or getattr(config, "alora_invocation_tokens", None) is not None:
            return None
        model = model.get_base_model()
    head = model.get_output_embeddings()
    if (type(head) is not torch.nn.Linear or head.bias is not None or "forward" in vars(head)
            or head._forward_hooks or head._forward_pre_hooks or hasattr(head, "_hf_hook")
            or logit_transform(model) is not None):
        return None
    return model.base_model, head.weight
