"""The `reward` stage script end to end: train + test metrics, then `score` from the saved folder."""

import json
import runpy
import sys
from pathlib import Path

import yaml

from replyrl.io import write_jsonl

SCRIPT = Path(__file__).resolve().parents[2] / "stages" / "reward.py"
TOPICS = ["coffee", "rain", "football", "cats", "music"]


def pairs(n: int, offset: int) -> list[dict]:
    # Every other reply is about the tweet's topic and engaging (0.8); the rest are off topic (0.1).
    rows = []
    for i in range(n):
        topic = TOPICS[i % 5] if i % 2 == 0 else TOPICS[(i + 2) % 5]
        rows.append({
            "tweet": f"thinking about {TOPICS[i % 5]} today ({i + offset})",
            "reply": f"I love {topic} too, it always makes my week better.",
            "engagement": 0.8 if i % 2 == 0 else 0.1,
        })
    return rows


def run(monkeypatch, capsys, *args: str) -> str:
    """Run the script as `python stages/reward.py ARGS` would (in this process, to skip a second start-up)."""
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    capsys.readouterr()
    runpy.run_path(str(SCRIPT), run_name="__main__")
    return capsys.readouterr().out


def test_train_then_score(tmp_path, encoder_dir, monkeypatch, capsys):
    write_jsonl(tmp_path / "train.jsonl", pairs(60, 0))
    write_jsonl(tmp_path / "test.jsonl", pairs(20, 1000))
    # prepare's degenerate replies: one to a training tweet (used), one to a test tweet (left out: a leak).
    negatives = [{"tweet": pairs(60, 0)[0]["tweet"], "reply": "", "engagement": 0.0, "kind": "empty"},
                 {"tweet": pairs(20, 1000)[0]["tweet"], "reply": "", "engagement": 0.0, "kind": "empty"}]
    write_jsonl(tmp_path / "negatives.jsonl", negatives)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"reward": {"learned": {"max_epochs": 3}}}))
    run(monkeypatch, capsys, "--params", str(params), "train", "--negatives", str(tmp_path / "negatives.jsonl"),
        "--train", str(tmp_path / "train.jsonl"), "--test", str(tmp_path / "test.jsonl"), "--encoder", str(encoder_dir),
        "--out", str(tmp_path / "rm"), "--metrics", str(tmp_path / "reward.json"), "--plots", str(tmp_path / "plots"))

    metrics = json.loads((tmp_path / "reward.json").read_text())
    for reward in ("heuristic", "learned"):
        assert {f"{reward}/pearson", f"{reward}/spearman", f"{reward}/mse"} <= set(metrics)
    assert metrics["test/n_pairs"] == 20 and metrics["learned/target_pearson"] == 0.5
    assert isinstance(metrics["learned/meets_target"], bool)
    assert len(json.loads((tmp_path / "plots/training.json").read_text())) == 3
    assert (tmp_path / "plots/test_scores.png").read_bytes()[:4] == b"\x89PNG"

    out = run(monkeypatch, capsys, "--params", str(params), "score", "--tweet", "thinking about cats",
              "--reply", "Agree!", "--encoder", str(encoder_dir), "--reward-model", str(tmp_path / "rm"))
    components = ["relevance", "length", "sentiment", "unique_words", "punctuation", "generic_multiplier", "echo_multiplier"]
    for name in ["heuristic", *components, "learned"]:
        assert name in out
    assert "generic_multiplier 0.5000" in out  # "Agree!" is a short generic reply


def test_only_negatives_of_training_conversations_are_used():
    training_negatives = runpy.run_path(str(SCRIPT))["training_negatives"]
    train = [{"tweet": "t1", "reply": "r", "conversation_id": "a"}, {"tweet": "t2", "reply": "r", "conversation_id": "b"}]
    negatives = [{"tweet": "t1", "reply": "", "conversation_id": "a"}, {"tweet": "t9", "reply": "", "conversation_id": "z"}]
    assert training_negatives(negatives, train) == negatives[:1]
