"""`sft` then `grpo` under `accelerate launch --multi_gpu --num_processes 2`, on the CPU (gloo): the README's commands.

Each launch trains 2 steps of the tiny model in two processes; exactly one of them writes the outputs,
both end cleanly, and the GRPO adapter (stacked on the SFT one) reloads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from replyrl.io import read_json, write_jsonl
from replyrl.models.policy import load_policy
from replyrl.training.grpo import COMPLETIONS_FILE
from tests.conftest import REPO_ROOT

ROWS = [{"tweet_id": f"t{i}", "tweet": f"tweet {i} about rain", "reply": "bring an umbrella"} for i in range(16)]
PARAMS = {
    "sft": {"validation_fraction": 0.25, "lora": {"r": 4, "lora_alpha": 8},
            "train": {"max_steps": 2, "logging_steps": 1, "eval_steps": 1, "save_steps": 1, "bf16": False,
                      "per_device_train_batch_size": 2, "per_device_eval_batch_size": 2}},
    "grpo": {"num_generations": 2, "prompts_per_step": 1, "max_completion_length": 4, "overlong_cache_tokens": 2,
             "max_steps": 2, "save_steps": 1,
             "sample_every": 1, "sample_prompts": 1, "bf16": False, "lora": {"r": 4, "lora_alpha": 8}},
}
# The README's multi-device command; without GPUs the two processes run on the CPU (gloo).
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no"]


def launch(args: list[str]) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores
    result = subprocess.run([*LAUNCH, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr + result.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_base_dir: Path, encoder_dir: Path) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("multiprocess")
    write_jsonl(tmp / "train.jsonl", ROWS)
    (tmp / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    common = ["--params", str(tmp / "params.yaml"), "--seed", "0"]
    logs = {"sft": launch([
        "stages/sft.py", *common, "--method", "baseline", "--data", "phase1",
        "--data-file", f"phase1={tmp / 'train.jsonl'}", "--base", str(tiny_base_dir), "--encoder", str(encoder_dir),
        "--out", str(tmp / "sft"), "--live-dir", str(tmp / "live_sft"), "--plot", str(tmp / "sft.png"),
        "--checkpoints", str(tmp / "ck_sft"),
    ])}
    logs["grpo"] = launch([
        "stages/grpo.py", *common, "--warm-start", str(tmp / "sft"), "--data", str(tmp / "train.jsonl"),
        "--encoder", str(encoder_dir), "--reward-model", str(tmp / "no_reward_model"), "--out", str(tmp / "grpo"),
        "--checkpoints", str(tmp / "ck_grpo"), "--live", str(tmp / "live_grpo"), "--metrics", str(tmp / "grpo.json"),
        "--plot", str(tmp / "grpo.png"),
    ])
    return tmp, logs


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_two_processes_train_and_one_writes(runs, stage: str):
    tmp, logs = runs
    log = logs[stage]
    assert log.count(" wrote ") == 1 and f"process 0 of 2 wrote {tmp / stage}" in log
    assert log.count(f"{stage}: metrics:") == 2  # both processes trained to the end
    assert (tmp / f"{stage}.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp / f"ck_{stage}").exists()  # the finished run left nothing to resume


def test_grpo_adapter_reloads_on_top_of_the_sft_one(runs):
    tmp, _ = runs
    assert read_json(tmp / "grpo.json")["steps"] == 2
    model, _ = load_policy(tmp / "grpo", merge=False)
    assert any("lora_B" in name for name, _ in model.named_parameters())
    assert read_json(tmp / "grpo" / "lineage.json")["merged"] == [str(tmp / "sft")]


def test_grpo_rollouts_of_both_processes_are_written_once(runs):
    tmp, _ = runs
    rows = pd.read_csv(tmp / "live_grpo" / COMPLETIONS_FILE, keep_default_na=False)
    # Each step: 2 processes x 1 prompt x 2 completions, gathered, written by the main process alone.
    assert rows["step"].tolist() == [1] * 4 + [2] * 4
    assert all(batch["tweet"].nunique() == 2 for _, batch in rows.groupby("step"))
