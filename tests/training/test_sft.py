"""SFT stage on a tiny random model: masking, learning, adapter round trip, resume, config checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch
from trl import SFTTrainer

from replyrl.configs.loader import from_dict
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.sft import SFTStageConfig
from replyrl.io import read_json, write_jsonl
from replyrl.models.base import load_base
from replyrl.models.policy import load_policy, read_lineage
from replyrl.prompts import build_prompt
from replyrl.sampling import SamplingConfig, generate_replies
from replyrl.training.checkpoints import FINGERPRINT_FILE
from replyrl.training.sft import (
    PARAMS_FILE,
    SFTPaths,
    load_sft_rows,
    lora_config,
    prompt_completion_dataset,
    run_sft,
    trainer_config,
)

PROMPT = PromptConfig()
# One short, fixed reply to 24 different tweets: a pattern a tiny model can pick up in a few steps.
ROWS = [{"tweet_id": f"t{i}", "tweet": f"tweet {i} about cats", "reply": "so true, love it!"} for i in range(24)]


def tiny_config(**train) -> SFTStageConfig:
    settings = dict(max_steps=6, logging_steps=1, eval_steps=3, save_steps=3, learning_rate=1e-2,
                    per_device_train_batch_size=4, per_device_eval_batch_size=8, warmup_steps=0.0, bf16=False)
    return from_dict(SFTStageConfig, {
        "validation_fraction": 0.25,
        "train": {**settings, **train},
        "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0},
    }, "test")


def paths_in(tmp: Path, base: Path, train_file: Path) -> SFTPaths:
    return SFTPaths(base=base, train_file=train_file, checkpoints=tmp / "checkpoints", live=tmp / "live",
                    out=tmp / "out", plot=tmp / "losses.png")


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    write_jsonl(path, ROWS)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_base_dir, train_file) -> tuple[SFTPaths, dict]:
    """One finished baseline run, shared by the tests that only read its outputs."""
    paths = paths_in(tmp_path_factory.mktemp("run"), tiny_base_dir, train_file)
    return paths, run_sft(tiny_config(), paths, method="baseline", data="full", seed=42, prompt=PROMPT)


def test_prompt_tokens_are_masked_and_reply_ends_with_eos(tiny_base_dir, tmp_path):
    model, tokenizer = load_base(tiny_base_dir)
    config = tiny_config()
    data = prompt_completion_dataset(ROWS[:2], tokenizer, PROMPT)
    trainer = SFTTrainer(
        model=model, args=trainer_config(config, "baseline", "full", 0, tmp_path), processing_class=tokenizer,
        train_dataset=data, eval_dataset=data, peft_config=lora_config(config),
    )
    row = trainer.train_dataset[0]
    prompt_ids = tokenizer(build_prompt(tokenizer, ROWS[0]["tweet"], PROMPT))["input_ids"]
    trained_ids = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    # Every prompt token (the eval prompt, exactly) is masked; the reply and its EOS are trained.
    assert row["input_ids"][: len(prompt_ids)] == prompt_ids
    assert all(label == -100 for label in row["labels"][: len(prompt_ids)])
    assert tokenizer.decode(trained_ids) == ROWS[0]["reply"] + tokenizer.eos_token


def test_loss_decreases_and_is_logged_per_step(trained):
    paths, metrics = trained
    train_loss = pd.read_csv(paths.live / "plots/metrics/loss.tsv", sep="\t")
    eval_loss = pd.read_csv(paths.live / "plots/metrics/eval/loss.tsv", sep="\t")
    assert list(train_loss["step"]) == [1, 2, 3, 4, 5, 6]
    assert list(eval_loss["step"]) == [0, 3, 6]  # step 0 (eval_on_start), then on the train rows' global steps
    assert train_loss["loss"].iloc[-1] < train_loss["loss"].iloc[0]
    assert eval_loss["loss"].iloc[-1] < eval_loss["loss"].iloc[0]
    # Best checkpoint by eval loss; the run-level numbers land in dvclive's metrics.json.
    assert metrics["best_eval_loss"] == pytest.approx(eval_loss["loss"].min())
    assert metrics["start_eval_loss"] == pytest.approx(eval_loss["loss"].iloc[0])  # before any step
    assert read_json(paths.live / "metrics.json")["best_eval_loss"] == pytest.approx(metrics["best_eval_loss"])


def test_adapter_folder_reloads_and_generates(trained, tiny_base_dir):
    paths, _ = trained
    assert read_json(paths.out / PARAMS_FILE)["train"]["max_steps"] == 6
    assert read_lineage(paths.out) == {"base": str(tiny_base_dir), "merged": []}
    # peft writes its target set in hash order; the folder must not depend on the process's hash seed.
    targets = read_json(paths.out / "adapter_config.json")["target_modules"]
    assert targets == sorted(targets) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    base, _ = load_base(tiny_base_dir)
    model, tokenizer = load_policy(paths.out)
    # Training moved the weights: the merged adapter is not a no-op.
    assert not torch.equal(model.model.layers[0].self_attn.q_proj.weight, base.model.layers[0].self_attn.q_proj.weight)
    prompts = [build_prompt(tokenizer, "hello there", PROMPT)]
    replies = generate_replies(model, tokenizer, prompts, SamplingConfig(num_samples=2, max_new_tokens=8))
    assert len(replies) == 1 and len(replies[0]) == 2
    assert not paths.checkpoints.exists()  # a finished run leaves nothing to resume
    assert paths.plot.read_bytes().startswith(b"\x89PNG")


def test_resume_continues_from_last_complete_checkpoint(tmp_path, tiny_base_dir, train_file):
    paths = paths_in(tmp_path, tiny_base_dir, train_file)
    config = tiny_config(max_steps=4, eval_steps=2, save_steps=2)
    # Without an output folder the checkpoints stay, as they do when a run is killed.
    run_sft(config, dataclasses.replace(paths, out=None), method="baseline", data="full", seed=0, prompt=PROMPT)
    # Killed while saving step 4: its trainer state (written last) is missing, step 2 is complete.
    (paths.checkpoints / "checkpoint-4" / "trainer_state.json").unlink()
    metrics = run_sft(config, paths, method="baseline", data="full", seed=0, prompt=PROMPT)
    assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 4
    # The plots hold the whole run: the resumed history was replayed before new steps were logged.
    assert list(pd.read_csv(paths.live / "plots/metrics/loss.tsv", sep="\t")["step"]) == [1, 2, 3, 4]


def test_changed_params_start_fresh(tmp_path, tiny_base_dir, train_file, caplog):
    paths = dataclasses.replace(paths_in(tmp_path, tiny_base_dir, train_file), out=None)
    run_sft(tiny_config(max_steps=2, eval_steps=2, save_steps=2), paths, method="baseline", data="full", seed=0, prompt=PROMPT)
    assert (paths.checkpoints / FINGERPRINT_FILE).exists()
    changed = tiny_config(max_steps=2, eval_steps=2, save_steps=2, learning_rate=5e-3)
    metrics = run_sft(changed, paths, method="baseline", data="full", seed=0, prompt=PROMPT)
    assert metrics["resumed_from_step"] == 0
    assert "params.train" in caplog.text  # the log says what changed


def test_dry_run_writes_nothing(tmp_path, tiny_base_dir, train_file):
    paths = paths_in(tmp_path, tiny_base_dir, train_file)
    metrics = run_sft(tiny_config(), paths, method="baseline", data="full", seed=0, prompt=PROMPT, dry_run=True)
    assert metrics["steps"] == 2
    assert not any(p.exists() for p in (paths.out, paths.live, paths.checkpoints, paths.plot))


def test_bad_rows_are_named(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, [{"tweet": "a", "reply": "b"}, {"tweet": "c", "reply": ""}])
    with pytest.raises(ValueError, match=r"rows.jsonl: row 2: field 'reply'"):
        load_sft_rows(path)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="multiple of eval_steps"):
        tiny_config(eval_steps=3, save_steps=4)
    with pytest.raises(ValueError, match="unknown key"):
        from_dict(SFTStageConfig, {"train": {"learning_rte": 1.0}}, "params.yaml: sft")
    with pytest.raises(ValueError, match="sft.polychromic.num_generations: 2 is not allowed; must be >= 3"):
        from_dict(SFTStageConfig, {"polychromic": {"num_generations": 2}}, "params.yaml: sft")


def test_training_forwards_share_the_prompt_header(tmp_path, tiny_base_dir, train_file, monkeypatch):
    """The trainer's forwards take the shared-prefix path (the chat-template header run once per batch)."""
    from replyrl.models import shared_prefix

    plans = []
    original = shared_prefix._shared_prefix_hidden
    monkeypatch.setattr(shared_prefix, "_shared_prefix_hidden", lambda *args: plans.append(args[-1]) or original(*args))
    run_sft(tiny_config(), paths_in(tmp_path, tiny_base_dir, train_file), method="baseline", data="full", seed=0,
            prompt=PROMPT, dry_run=True)
    assert len(plans) >= 2 and all(plan.common > 0 for plan in plans)  # 2 steps, then the evaluations
