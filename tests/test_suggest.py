"""`replyrl suggest` end to end on the tiny model: ranked tables, JSON, file mode, errors, the LLM judge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from replyrl.__main__ import main
from replyrl.models.encoder import load_encoder
from replyrl.rewards.learned import FEATURES, EngagementHead, LearnedReward
from replyrl.suggest import rank
from tests.conftest import REPO_ROOT
from tests.evaluation.fake_judge import running

TWEET = "Rainy Sunday again. Any ideas?"
FAKE_KEY = "sk-test-not-a-real-key"


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory, encoder_dir) -> Path:
    """An untrained learned reward (random head on the real MiniLM): scores differ per reply, which is all
    ranking needs."""
    encoder = load_encoder(encoder_dir, device="cpu")
    dim = encoder.get_embedding_dimension()
    torch.manual_seed(0)
    architecture = {"embedding_dim": dim, "features": FEATURES, "hidden_sizes": [8], "dropout": 0.0}
    out = tmp_path_factory.mktemp("reward_model")
    LearnedReward(EngagementHead(dim * len(FEATURES), [8], 0.0), architecture, encoder).save(out)
    return out


@pytest.fixture
def run(tiny_base_dir, encoder_dir, reward_model_dir, capsys, monkeypatch, tmp_path):
    """``run(*args)`` -> (exit code, stdout, stderr) of ``replyrl suggest --model <tiny> ... *args``, run in
    ``tmp_path`` (where the judge cache lands) with short replies."""
    monkeypatch.chdir(tmp_path)

    def call(*args: str, model: str | Path = tiny_base_dir) -> tuple[int, str, str]:
        argv = ["suggest", "--model", str(model), "--encoder", str(encoder_dir), "--reward-model",
                str(reward_model_dir), "--params", str(REPO_ROOT / "params.yaml"), "--max-new-tokens", "8", *args]
        try:
            main(argv)
            code = 0
        except SystemExit as e:
            code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def table_rows(out: str) -> list[tuple[int, list[float], str]]:
    """(rank, scores, reply) of each row of a printed table."""
    rows = re.findall(r"^\s+(\d+)((?:\s+\d\.\d{4})+)  (.*)$", out, flags=re.M)
    return [(int(r), [float(v) for v in scores.split()], reply) for r, scores, reply in rows]


def test_prints_n_ranked_replies_in_score_order(run) -> None:
    code, out, _ = run("--tweet", TWEET, "-n", "5", "--explain")
    assert code == 0
    rows = table_rows(out)
    assert [r for r, _, _ in rows] == [1, 2, 3, 4, 5]
    learned = [scores[0] for _, scores, _ in rows]
    assert learned == sorted(learned, reverse=True) and len(set(learned)) > 1  # ranked by `learned` (the first)
    assert "ranked by learned" in out and "learned heuristic" in out
    assert out.count("relevance ") == 5 and out.count("echo_multiplier") == 5  # --explain: components per reply

    # --json with --top: the same samples (same seed), cut to the best 3, with unrounded scores
    code, out, _ = run("--tweet", TWEET, "-n", "5", "--top", "3", "--json")
    (result,) = json.loads(out)
    assert result["sampling"] == {"n": 5, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 8, "seed": 42,
                                  "dtype": result["sampling"]["dtype"]}
    # the table shows each reply on one line
    assert [" ".join(s["reply"].split()) or "(empty)" for s in result["suggestions"]] == [r for *_, r in rows[:3]]
    assert [round(s["scores"]["learned"], 4) for s in result["suggestions"]] == learned[:3]


def test_heuristic_ranking_and_several_tweets(run) -> None:
    code, out, _ = run("--tweet", TWEET, "--tweet", "Just finished my first marathon!", "-n", "3", "--reward",
                       "heuristic", "--json")
    results = json.loads(out)
    assert [r["tweet"] for r in results] == [TWEET, "Just finished my first marathon!"]
    for result in results:
        scores = [s["scores"]["heuristic"] for s in result["suggestions"]]
        assert result["ranked_by"] == "heuristic" and len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_rank_puts_unscored_replies_last() -> None:
    scored = [{"reply": "a", "scores": {"llm": None}}, {"reply": "b", "scores": {"llm": 0.2}},
              {"reply": "c", "scores": {"llm": 0.9}}]
    assert [(r["rank"], r["reply"]) for r in rank(scored, "llm")] == [(1, "c"), (2, "b"), (3, "a")]


def test_file_mode_keeps_the_good_rows(run, tmp_path, caplog) -> None:
    lines = [
        json.dumps({"tweet": TWEET, "tweet_id": "t1"}).encode(),
        b'{"tweet": "   "}',  # 2: empty tweet
        b"not json",  # 3
        b"",  # blank lines are skipped, not counted
        json.dumps({"tweet": "Just finished my first marathon!", "tweet_id": 2}).encode(),
        b'["a list"]',  # 6
        b'{"text": "no tweet field"}',  # 7
        b'{"tweet": "caf\xe9"}',  # 8: Latin-1, not UTF-8
        b'{"tweet": 5}',  # 9
    ]
    (tmp_path / "tweets.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    code, _, _ = run("--input", "tweets.jsonl", "--output", "out/suggestions.jsonl", "-n", "3", "--top", "2",
                     "--reward", "heuristic", "--batch-size", "1")
    assert code == 0
    rows = [json.loads(line) for line in (tmp_path / "out/suggestions.jsonl").read_text().splitlines()]
    assert [(r["tweet_id"], r["model"], r["ranked_by"], len(r["suggestions"])) for r in rows] == [
        ("t1", rows[0]["model"], "heuristic", 2), (2, rows[0]["model"], "heuristic", 2)]
    assert rows[0]["sampling"]["n"] == 3 and rows[0]["model"].endswith("tiny_base0")
    bad = [f"tweets.jsonl:{n}" for n in (2, 3, 6, 7, 8, 9)]
    assert all(b in caplog.text for b in bad) and "tweets.jsonl:4" not in caplog.text
    assert "wrote 2 rows" in caplog.text and "skipped 6 bad input row(s)" in caplog.text


def test_clear_errors(run, tmp_path) -> None:
    code, _, err = run("--tweet", TWEET, model="models/grpo/from_polychromic/seed_42")
    assert code == 2 and "error: --model: models/grpo/from_polychromic/seed_42: no such folder" in err
    assert err.count("\n") == 1  # one line, no traceback
    code, _, err = run("--tweet", " ")
    assert code == 2 and "error: --tweet: the tweet is empty" in err
    (tmp_path / "bad.jsonl").write_text("oops\n")
    code, _, err = run("--input", "bad.jsonl", "--output", "out.jsonl")
    assert code == 2 and "no usable row (1 bad)" in err and not (tmp_path / "out.jsonl").exists()
    # an adapter folder whose base is not where its lineage says
    adapter = tmp_path / "sft"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "lineage.json").write_text(json.dumps({"base": "models/base", "merged": []}))
    code, _, err = run("--tweet", TWEET, model=adapter)
    assert code == 2 and "builds on models/base, which is missing" in err
    code, _, err = run("--tweet", TWEET, "--top", "9")
    assert code == 2 and "--top must be between 1 and -n (8)" in err


def test_llm_ranking_through_the_openai_judge(run, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    with running("openai") as server:
        server.prefer = lambda a, b: "TIE" if len(a) == len(b) else ("A" if len(a) > len(b) else "B")  # longer wins
        judge_args = ("-n", "4", "--reward", "llm", "--judge-provider", "openai", "--judge-base-url", server.base_url,
                      "--judge-model", "local-judge")
        code, out, _ = run("--tweet", TWEET, "--json", *judge_args)
        assert code == 0
        suggestions = json.loads(out)[0]["suggestions"]
        replies = [s["reply"] for s in suggestions]
        distinct_pairs = sum(a != b for i, a in enumerate(replies) for b in replies[i + 1:])
        assert len(server.requests) == distinct_pairs  # every pair of different replies judged once
        assert {r["body"]["model"] for r in server.requests} == {"local-judge"}
        lengths = [len(r) for r in replies]
        assert lengths == sorted(lengths, reverse=True)  # the judge's preference is the ranking
        scores = [s["scores"]["llm"] for s in suggestions]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)

        # the same tweet from a file (same seed, same replies): every judgment comes from the cache
        (tmp_path / "tweets.jsonl").write_text(json.dumps({"tweet": TWEET}) + "\n")
        code, _, _ = run("--input", "tweets.jsonl", "--output", "out.jsonl", *judge_args)
        assert code == 0 and len(server.requests) == distinct_pairs
        (row,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert [s["scores"]["llm"] for s in row["suggestions"]] == scores
    # the key reached the server (as a bearer token) but no file written
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {FAKE_KEY}"
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "judgments.jsonl" for p in files)
    assert all(FAKE_KEY not in p.read_text(errors="replace") for p in files)
