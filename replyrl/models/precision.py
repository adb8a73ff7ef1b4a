"""The machine a run lands on (CPU or any accelerator): its precision (the `bf16` params) and processes."""

from __future__ import annotations

import logging

import torch
from accelerate import PartialState
from transformers.utils import is_torch_bf16_gpu_available

from replyrl.configs.loader import Bf16, ConfigError

logger = logging.getLogger(__name__)


def cpu_bf16_is_faster() -> bool:
    """True when the CPU has AMX tiles, the one CPU speed class where bf16 beats float32.

    AVX512-BF16 alone is not enough: on such a CPU (no AMX) bf16 weights sampled slower than float32
    (57.9 vs 66.7 tokens/s, issue 13) and round differently, so `auto` keeps float32 there.
    """
    return torch.cpu._is_amx_tile_supported()


def describe_machine() -> str:
    """What a timing ran on, for logs and benchmarks: the GPU, or the CPU with its bf16 speed class."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    if torch.accelerator.is_available():
        return str(torch.accelerator.current_accelerator())
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = [torch.backends.cpu.get_cpu_capability(), "AMX" if torch.cpu._is_amx_tile_supported() else "no AMX"]
    if torch.cpu._is_avx512_bf16_supported():
        flags.insert(1, "AVX512-BF16")
    return f"CPU {name} ({', '.join(flags)}), {torch.get_num_threads()} torch threads"


def precision_kwargs(bf16: Bf16) -> dict[str, bool]:
    """`TrainingArguments` kwargs (`bf16`, `use_cpu`) for a `bf16: auto | true | false` param.

    ``auto`` turns bf16 on where it is faster than float32: a GPU with bf16, or a CPU with AMX
    (`cpu_bf16_is_faster`); ``true`` forces it anywhere. ``use_cpu`` is set only when no
    accelerator is present: transformers refuses `bf16=True` on a CPU-only machine without it.
    """
    use_cpu = not torch.accelerator.is_available()
    supported = cpu_bf16_is_faster() if use_cpu else is_torch_bf16_gpu_available()
    enabled = supported if bf16 == "auto" else bf16 is True
    if enabled and not supported:
        logger.warning("bf16 forced on, but this %s runs it no faster than float32 (no AMX / no bf16 GPU)",
                       "CPU" if use_cpu else "accelerator")
    logger.info("bf16 %s (param %r, %s)", "on" if enabled else "off", bf16, "cpu" if use_cpu else "accelerator")
    return {"bf16": enabled, "use_cpu": use_cpu}


def model_dtype(bf16: Bf16) -> torch.dtype:
    """Weights' dtype for sampling under a `bf16` param: bf16 where `precision_kwargs` turns it on, else float32."""
    return torch.bfloat16 if precision_kwargs(bf16)["bf16"] else torch.float32


def check_vllm(key: str) -> None:
    """Raise a one-line `ConfigError` naming the param ``key`` unless vLLM can run here (a CUDA GPU and the
    `vllm` package)."""
    import importlib.util

    if not torch.cuda.is_available():
        raise ConfigError(f"{key}: true needs a CUDA GPU (this machine: {describe_machine()}); set it to false")
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(f"{key}: true needs the `vllm` package: pip install vllm (a version matching torch), "
                          "or set it to false")


def vllm_usable() -> bool:
    """A CUDA GPU and the `vllm` package are both here."""
    try:
        check_vllm("")
    except ConfigError:
        return False
    return True


def process_state() -> PartialState:
    """This process's place in a (possibly multi-process) launch, as the trainers will see it.

    Without an accelerator, accelerate recognises a multi-process launch (gloo) only when asked for
    the CPU, as `TrainingArguments(use_cpu=True)` does; a plain `PartialState()` created first would
    make every process believe it is the only, main one, and all of them would write the outputs.
    """
    return PartialState(cpu=not torch.accelerator.is_available())
