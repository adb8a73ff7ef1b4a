"""The machine a run lands on (CPU or any accelerator): its precision (the `bf16` params) and processes."""

from __future__ import annotations

import logging

import torch
from accelerate import PartialState
from transformers.utils import is_torch_bf16_gpu_available

from replyrl.configs.loader import Bf16

logger = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmuls (AVX512-BF16 or AMX); elsewhere bf16 autocast is slower."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def precision_kwargs(bf16: Bf16) -> dict[str, bool]:
    """`TrainingArguments` kwargs (`bf16`, `use_cpu`) for a `bf16: auto | true | false` param.

    ``auto`` turns bf16 on where the hardware runs it natively. ``use_cpu`` is set only when no
    accelerator is present: transformers refuses `bf16=True` on a CPU-only machine without it.
    """
    use_cpu = not torch.accelerator.is_available()
    supported = cpu_supports_bf16() if use_cpu else is_torch_bf16_gpu_available()
    enabled = supported if bf16 == "auto" else bf16 is True
    if enabled and not supported:
        logger.warning("bf16 forced on, but this %s has no native bf16 support: expect it to be slow",
                       "CPU" if use_cpu else "accelerator")
    logger.info("bf16 %s (param %r, %s)", "on" if enabled else "off", bf16, "cpu" if use_cpu else "accelerator")
    return {"bf16": enabled, "use_cpu": use_cpu}


def model_dtype(bf16: Bf16) -> torch.dtype:
    """Weights' dtype for sampling under a `bf16` param: bf16 where it runs natively, else float32."""
    return torch.bfloat16 if precision_kwargs(bf16)["bf16"] else torch.float32


def process_state() -> PartialState:
    """This process's place in a (possibly multi-process) launch, as the trainers will see it.

    Without an accelerator, accelerate recognises a multi-process launch (gloo) only when asked for
    the CPU, as `TrainingArguments(use_cpu=True)` does; a plain `PartialState()` created first would
    make every process believe it is the only, main one, and all of them would write the outputs.
    """
    return PartialState(cpu=not torch.accelerator.is_available())
