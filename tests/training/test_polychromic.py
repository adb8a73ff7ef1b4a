"""Polychromic SFT: the set term's advantages, that it really changes the gradient, and a short run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from trl import SFTTrainer

from replyrl.configs.loader import from_dict
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.sft import SFTStageConfig
from replyrl.io import write_jsonl
from replyrl.models.base import load_base
from replyrl.models.encoder import load_encoder
from replyrl.training.polychromic import PolychromicSFTTrainer, leave_one_out_advantages
from replyrl.training.set_advantages import set_score
from replyrl.training.sft import SFTPaths, lora_config, prompt_completion_dataset, run_sft, trainer_config

PROMPT = PromptConfig()
ROWS = [{"tweet_id": f"t{i}", "tweet": f"tweet {i} about dogs", "reply": "what a good dog"} for i in range(16)]


def tiny_config(coef: float = 0.3) -> SFTStageConfig:
    return from_dict(SFTStageConfig, {
        "validation_fraction": 0.25,
        "train": {"max_steps": 2, "logging_steps": 1, "eval_steps": 2, "save_steps": 2, "bf16": False,
                  "per_device_train_batch_size": 2, "learning_rate": 1e-2},
        "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0},  # no dropout: two forwards see the same model
        "polychromic": {"polychromic_coef": coef, "num_generations": 3, "generation_steps": 1,
                        "max_generation_prompts": 2, "max_completion_length": 6, "quality": "none"},
    }, "test")


class RecordingQuality:
    """Quality stand-in: scores reply length and records the (tweet, reply) pairs it is given."""

    def __init__(self) -> None:
        self.tweets: list[str] = []

    def __call__(self, tweets, replies) -> np.ndarray:
        self.tweets += tweets
        return np.array([1.0 + len(r) for r in replies])


@pytest.fixture(scope="module")
def encoder(encoder_dir):
    return load_encoder(encoder_dir, device="cpu")


def test_set_score_and_leave_one_out():
    same, other = [1.0, 0.0], [0.0, 1.0]
    emb = np.array([same, same, other])
    # Two of three pairs are orthogonal (distance 1), one identical (0): diversity 2/3, f = mean(q) * 2/3.
    assert set_score(np.array([1.0, 1.0, 1.0]), emb) == pytest.approx(2 / 3)
    adv = leave_one_out_advantages(np.ones(3), emb)
    # Dropping a duplicate leaves an all-different pair (f = 1): duplicates have negative advantage;
    # dropping the odd one out leaves two identical replies (f = 0): it carries the set.
    assert adv == pytest.approx([2 / 3 - 1, 2 / 3 - 1, 2 / 3])
    # Quality scales the set: the same set of better replies scores higher.
    assert set_score(np.full(3, 2.0), emb) == pytest.approx(2 * set_score(np.ones(3), emb))


def lora_grads(coef: float, tiny_base_dir, tmp_path, encoder, quality=None) -> tuple[dict, dict]:
    """Grads of the CE-only loss and of the polychromic loss on one batch, from the same weights."""
    model, tokenizer = load_base(tiny_base_dir)
    config = tiny_config(coef)
    data = prompt_completion_dataset(ROWS, tokenizer, PROMPT)
    trainer = PolychromicSFTTrainer(
        model=model, args=trainer_config(config, "polychromic", "full", 0, tmp_path), processing_class=tokenizer,
        train_dataset=data, eval_dataset=data, peft_config=lora_config(config), encoder=encoder, quality_fn=quality,
    )
    torch.manual_seed(0)
    # LoRA's B starts at zero, which zeroes A's gradient; random B makes every adapter weight count.
    for name, param in trainer.model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(std=0.1)
    inputs = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()

    def grads(loss_fn) -> dict:
        trainer.model.zero_grad()
        loss_fn({**inputs}).backward()
        return {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad}

    ce = grads(lambda batch: SFTTrainer.compute_loss(trainer, trainer.model, {k: v for k, v in batch.items() if k != "tweet"}))
    polychromic = grads(lambda batch: trainer.compute_loss(trainer.model, batch))
    return ce, polychromic


def test_polychromic_term_changes_the_gradient(tiny_base_dir, tmp_path, encoder):
    quality = RecordingQuality()
    ce, polychromic = lora_grads(0.3, tiny_base_dir, tmp_path, encoder, quality)
    assert any(not torch.allclose(ce[n], polychromic[n]) for n in ce)
    # Each prompt's set was scored with that prompt's own tweet (2 prompts x 3 replies).
    assert len(quality.tweets) == 6 and len(set(quality.tweets[:3])) == 1 and quality.tweets[0] != quality.tweets[3]


def test_zero_coefficient_leaves_the_ce_gradient(tiny_base_dir, tmp_path, encoder):
    ce, polychromic = lora_grads(0.0, tiny_base_dir, tmp_path, encoder)
    assert all(torch.equal(ce[n], polychromic[n]) for n in ce)


def test_short_run_logs_ce_and_set_diversity_separately(tmp_path, tiny_base_dir, encoder_dir):
    train_file = tmp_path / "train.jsonl"
    write_jsonl(train_file, ROWS)
    paths = SFTPaths(base=tiny_base_dir, train_file=train_file, checkpoints=tmp_path / "ck", live=tmp_path / "live",
                     out=tmp_path / "out", encoder=encoder_dir, plot=tmp_path / "losses.png")
    run_sft(tiny_config(), paths, method="polychromic", data="full", seed=0, prompt=PROMPT)
    metrics = tmp_path / "live" / "plots" / "metrics"
    for name in ("ce_loss", "loss", "polychromic/term", "polychromic/set_diversity"):
        assert len(pd.read_csv(metrics / f"{name}.tsv", sep="\t")) == 2, name
    # Eval loss is CE only: no set term is computed in evaluation.
    assert not (metrics / "eval" / "polychromic").exists()
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()
    assert (tmp_path / "losses.png").read_bytes().startswith(b"\x89PNG")
