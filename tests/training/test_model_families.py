"""Other model families through the whole pipeline code path: base -> sft (both methods) -> grpo -> generate.

Tiny random Qwen3 and Gemma models with the SmolLM2 tokenizer stand in for users' checkpoints; a
Phi-3 (fused `qkv_proj`) shows the LoRA target check naming the model's linear layers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, GemmaConfig, Phi3Config, Qwen3Config

from replyrl.configs.evaluate import EvaluateConfig, PassAtKConfig
from replyrl.configs.grpo import GRPOLoraConfig, GRPOStageConfig
from replyrl.configs.loader import ConfigError, from_dict
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.reward import RewardConfig
from replyrl.configs.sft import SFTStageConfig
from replyrl.evaluation.generate import generate_for_model, load_for_generation, select_test_tweets
from replyrl.io import write_jsonl
from replyrl.models.base import PACKAGED_SMOLLM2, export_base, load_tokenizer
from replyrl.models.lora import linear_layer_names
from replyrl.training.grpo import GRPOPaths, run_grpo
from replyrl.training.sft import SFTPaths, run_sft

PROMPT = PromptConfig()
ROWS = [{"tweet_id": f"t{i}", "tweet": f"tweet {i} about birds", "reply": "they sing at dawn"} for i in range(12)]
SIZES = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=512, tie_word_embeddings=True)
FAMILIES = {
    "qwen3": lambda vocab: Qwen3Config(vocab_size=vocab, head_dim=8, **SIZES),
    "gemma": lambda vocab: GemmaConfig(vocab_size=vocab, head_dim=8, **SIZES),
}


def save_tiny(config, out: Path) -> Path:
    """A random model of ``config`` with the real SmolLM2 tokenizer, saved like a user's local checkpoint."""
    tokenizer = load_tokenizer(PACKAGED_SMOLLM2)
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(config, name, getattr(tokenizer, name))
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def sft_config() -> SFTStageConfig:
    return from_dict(SFTStageConfig, {
        "validation_fraction": 0.25,
        "train": {"max_steps": 2, "logging_steps": 1, "eval_steps": 2, "save_steps": 2, "bf16": False,
                  "per_device_train_batch_size": 2, "learning_rate": 1e-2},
        "lora": {"r": 4, "lora_alpha": 8},
        "polychromic": {"num_generations": 3, "generation_steps": 1, "max_generation_prompts": 1,
                        "max_completion_length": 4},
    }, "test")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_runs_every_training_stage_and_generates(family: str, tmp_path: Path, encoder_dir: Path):
    source = save_tiny(FAMILIES[family](len(load_tokenizer(PACKAGED_SMOLLM2))), tmp_path / "source")
    base = tmp_path / "base"
    export_base(str(source), base)  # a local folder as base.model
    data = tmp_path / "train.jsonl"
    write_jsonl(data, ROWS)
    for method in ("baseline", "polychromic"):
        paths = SFTPaths(base=base, train_file=data, checkpoints=tmp_path / f"ck_{method}", live=tmp_path / f"live_{method}",
                         out=tmp_path / f"sft_{method}", encoder=encoder_dir)
        metrics = run_sft(sft_config(), paths, method=method, data="full", seed=0, prompt=PROMPT, reward=RewardConfig())
        assert metrics["steps"] == 2

    grpo = GRPOStageConfig(num_generations=2, prompts_per_step=2, max_completion_length=4, overlong_weight=0.0,
                           max_steps=2, save_steps=1,
                           bf16=False, sample_every=1, sample_prompts=1, lora=GRPOLoraConfig(r=4, lora_alpha=8))
    paths = GRPOPaths(warm_start=tmp_path / "sft_polychromic", data=data, checkpoints=tmp_path / "ck_grpo",
                      out=tmp_path / "grpo", encoder=encoder_dir)
    assert run_grpo(grpo, paths, prompt=PROMPT, reward=RewardConfig(), seed=0)["steps"] == 2

    model, tokenizer = load_for_generation(str(tmp_path / "grpo"), False)
    assert type(model).__name__.lower().startswith(family)
    evaluate = EvaluateConfig(n_samples=2, max_new_tokens=4, batch_size=2, pass_at_k=PassAtKConfig(k=[1, 2]))
    rows = generate_for_model(model, tokenizer, select_test_tweets(ROWS[:2], None, 0), PROMPT, evaluate, seed=0,
                              progress=False)
    assert [len(row["samples"]) for row in rows] == [2, 2]


def test_lora_targets_are_checked_against_the_model(tmp_path: Path):
    # Phi-3 fuses q, k and v into one `qkv_proj`: the default targets name layers it does not have.
    config = Phi3Config(vocab_size=len(load_tokenizer(PACKAGED_SMOLLM2)), pad_token_id=0, **SIZES)
    source = save_tiny(config, tmp_path / "phi3")
    assert {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"} <= set(linear_layer_names(
        AutoModelForCausalLM.from_pretrained(source)))
    data = tmp_path / "train.jsonl"
    write_jsonl(data, ROWS)
    paths = SFTPaths(base=source, train_file=data, checkpoints=tmp_path / "ck", live=tmp_path / "live")
    with pytest.raises(ConfigError, match=r"sft.lora.target_modules: \['q_proj', 'k_proj', 'v_proj'\] match no linear "
                                          r"layer of Phi3ForCausalLM; its linear layers are \[.*'qkv_proj'"):
        run_sft(sft_config(), paths, method="baseline", data="full", seed=0, prompt=PROMPT)
