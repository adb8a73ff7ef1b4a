"""The generate stage with the tiny random model: choice of tweets, file rows, reproducibility."""

from __future__ import annotations

import runpy
import sys

import torch
import yaml

from replyrl.configs.evaluate import EvaluateConfig, PassAtKConfig
from replyrl.configs.prompt import PromptConfig
from replyrl.evaluation.generate import generate_for_model, select_test_tweets
from replyrl.io import read_jsonl, write_jsonl
from replyrl.models.policy import load_policy
from replyrl.prompts import build_prompt
from replyrl.sampling import SamplingConfig, generate_replies
from tests.conftest import REPO_ROOT

ROWS = [
    {"tweet_id": 1, "tweet": "first tweet", "reply": "reply a"},
    {"tweet_id": 2, "tweet": "second tweet", "reply": "reply b"},
    {"tweet_id": 1, "tweet": "first tweet", "reply": "reply c"},
    {"tweet": "a tweet without id", "reply": "reply d"},
]
SMALL = {"n_samples": 2, "max_new_tokens": 4, "batch_size": 2, "pass_at_k": {"k": [1, 2]}}


def test_select_groups_replies_by_tweet_and_is_seeded() -> None:
    tweets = select_test_tweets(ROWS, None, 0)
    assert [t["tweet_id"] for t in tweets] == ["id:1", "id:2", "text:a tweet without id"]
    assert tweets[0]["references"] == ["reply a", "reply c"]
    picked = select_test_tweets(ROWS, 2, seed=3)
    reordered = select_test_tweets(ROWS[::-1], 2, seed=3)  # the choice does not depend on the rows' order
    assert len(picked) == 2 and [t["tweet_id"] for t in picked] == [t["tweet_id"] for t in reordered]


def test_generate_for_model_rows_and_reproducibility(tiny_base_dir) -> None:
    model, tokenizer = load_policy(tiny_base_dir)
    config = EvaluateConfig(n_samples=2, max_new_tokens=4, batch_size=2, pass_at_k=PassAtKConfig(k=[1, 2]))
    tweets = select_test_tweets(ROWS, None, 0)
    rows = generate_for_model(model, tokenizer, tweets, PromptConfig(), config, seed=5, progress=False)
    assert len(rows) == 3
    assert rows[0]["prompt"] == build_prompt(tokenizer, "first tweet", PromptConfig())
    assert all(len(r["samples"]) == 2 and isinstance(r["greedy"], str) for r in rows)
    assert rows[0]["generation"] == {"seed": 5, "n_samples": 2, "temperature": 0.8, "top_p": 0.95, "top_k": 0,
                                     "max_new_tokens": 4, "dtype": "float32", "sampler": "replyrl"}
    again = generate_for_model(model, tokenizer, tweets, PromptConfig(), config, seed=5, progress=False)
    assert [r["samples"] for r in again] == [r["samples"] for r in rows]


def test_sampling_ignores_the_models_generation_config_top_k(tiny_base_dir) -> None:
    model, tokenizer = load_policy(tiny_base_dir)
    model.generation_config.top_k = 1  # were it applied (as `generate` would), every sample would be the argmax
    torch.manual_seed(0)
    (replies,) = generate_replies(model, tokenizer, ["a tweet"], SamplingConfig(num_samples=4, max_new_tokens=3))
    assert len(set(replies)) > 1


def test_stage_script_writes_the_generation_file(tiny_base_dir, tmp_path, monkeypatch) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"seeds": [5], "evaluate": {**SMALL, "max_prompts": 2}}))
    write_jsonl(tmp_path / "test.jsonl", ROWS)
    out = tmp_path / "gen" / "base" / "seed_5.jsonl"
    monkeypatch.setattr(sys, "argv", [
        "generate.py", "--params", str(tmp_path / "params.yaml"), "--name", "base", "--model-dir", str(tiny_base_dir),
        "--seed", "5", "--test", str(tmp_path / "test.jsonl"), "--out", str(out),
    ])
    runpy.run_path(str(REPO_ROOT / "stages" / "generate.py"), run_name="__main__")
    rows = read_jsonl(out)
    assert len(rows) == 2 and {r["model"] for r in rows} == {"base"}
    assert {"tweet_id", "tweet", "prompt", "references", "samples", "greedy", "generation", "model_dir"} <= set(rows[0])
