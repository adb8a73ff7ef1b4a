"""The LLM judge against fake Anthropic and OpenAI-compatible servers on 127.0.0.1 (`fake_judge.py`)."""

from __future__ import annotations

import json

import pytest

from replyrl.configs.evaluate import EvaluateConfig, JudgeConfig, PassAtKConfig
from replyrl.configs.loader import ConfigError
from replyrl.evaluation.evaluate import evaluate
from replyrl.evaluation.judge import Comparison, JudgmentCache, judge
from tests.evaluation.conftest import REFERENCE_PAIRS, make_rows
from tests.evaluation.fake_judge import running

FAKE_KEY = "sk-test-not-a-real-key"


@pytest.fixture
def server():
    with running("anthropic") as srv:
        yield srv


@pytest.fixture
def openai_server():
    with running("openai") as srv:
        yield srv


def judge_config(server, tmp_path, **kwargs) -> JudgeConfig:
    return JudgeConfig(enabled=True, provider=server.api, base_url=server.base_url, cache=str(tmp_path / "cache.jsonl"),
                       **kwargs)


COMPARISONS = [
    Comparison("tweet one", "a GOOD reply", "a human reply"),  # candidate wins
    Comparison("tweet two", "a dull reply", "a GOOD human reply"),  # reference wins
    Comparison("tweet three", "meh", "meh too"),  # tie
    Comparison("tweet four", "GOOD again", "plain"),
]


def test_scores_order_is_randomised_and_key_stays_out_of_files(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    config = judge_config(server, tmp_path)
    assert judge(COMPARISONS, config) == [1.0, 0.0, 0.5, 1.0]
    assert [r["path"] for r in server.requests] == ["/v1/messages"] * 4
    headers = server.requests[0]["headers"]  # the SDK sends the key as x-api-key or a bearer token
    assert FAKE_KEY in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert server.requests[0]["body"]["model"] == config.model
    records = JudgmentCache(config.cache).records.values()
    assert {r["candidate_first"] for r in records} == {True, False}  # both orders occur (seeded)
    assert FAKE_KEY not in (tmp_path / "cache.jsonl").read_text()


def test_cache_is_reused_and_cap_is_respected(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    config = judge_config(server, tmp_path, max_calls=2)
    assert judge(COMPARISONS, config) == [1.0, 0.0, None, None]  # cap: 2 new calls
    assert judge(COMPARISONS, config) == [1.0, 0.0, 0.5, 1.0]  # the next run pays only for the rest
    assert judge(COMPARISONS + COMPARISONS[:1], config) == [1.0, 0.0, 0.5, 1.0, 1.0]  # all cached
    assert len(server.requests) == 4


def test_without_a_key_it_skips_but_uses_the_cache(server, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    config = judge_config(server, tmp_path)
    judge(COMPARISONS[:1], config)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert judge(COMPARISONS, config) == [1.0, None, None, None]
    assert "ANTHROPIC_API_KEY is not set: skipping the LLM judge" in caplog.text
    assert len(server.requests) == 1


def test_api_error_stops_but_keeps_what_was_paid_for(server, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    server.fail_after = 2
    config = judge_config(server, tmp_path)
    assert judge(COMPARISONS, config) == [1.0, 0.0, None, None]
    assert "stopped after an API error" in caplog.text and "credit balance is too low" in caplog.text
    # a crash mid-write leaves a truncated last line; the cache still loads the complete ones
    with open(config.cache, "a") as f:
        f.write('{"key": "trunc')
    assert len(JudgmentCache(config.cache).records) == 2


def test_cost_estimate_is_printed_before_calls(server, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    caplog.set_level("INFO")
    judge(COMPARISONS, judge_config(server, tmp_path))
    assert "4 new calls" in caplog.text and "at most $" in caplog.text


def test_llm_as_pass_judge_in_evaluate(server, tmp_path, monkeypatch, scorers) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    config = EvaluateConfig(
        sft_models=["baseline_full"], pass_at_k=PassAtKConfig(judge="llm", k=[1, 2]), n_samples=2,
        judge=judge_config(server, tmp_path),
    )
    # sample 1 beats the human reply, sample 0 loses -> 1 of 2 samples pass on every tweet
    gens = {("baseline_full", 1): make_rows(lambda i, j: "GOOD" if j == 1 else "BAD", n=2)}
    m = evaluate(gens, scorers, config, reference=REFERENCE_PAIRS).metrics
    assert m["pass_threshold"] == 0.5
    assert m["baseline_full.pass@1"] == pytest.approx(0.5) and m["baseline_full.pass@2"] == 1.0
    assert m["baseline_full.llm_win_rate"] == 0.0  # greedy = sample 0 = "BAD"
    assert m["baseline_full.llm_judged"] == 8
    # 8 tweets x (1 greedy + 2 samples), the greedy text repeats sample 0, so it is judged once
    assert len(server.requests) == 16


def test_evaluate_without_a_key_still_succeeds(server, tmp_path, monkeypatch, scorers) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config = EvaluateConfig(sft_models=["baseline_full"], judge=judge_config(server, tmp_path))
    m = evaluate({("baseline_full", 1): make_rows(lambda i, j: f"reply {j}")}, scorers, config,
                 reference=REFERENCE_PAIRS).metrics
    assert m["baseline_full.llm_judged"] == 0 and m["baseline_full.llm_win_rate"] is None
    assert m["baseline_full.pass@10"] == 0.0 and not server.requests


# The `openai` provider: the same judge logic, cache and cap through the `openai` SDK.


def test_openai_provider_judges_and_key_stays_out_of_files(openai_server, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    caplog.set_level("INFO")
    config = judge_config(openai_server, tmp_path, model="local-judge", input_usd_per_mtok=0, output_usd_per_mtok=0)
    assert judge(COMPARISONS, config) == [1.0, 0.0, 0.5, 1.0]
    assert [r["path"] for r in openai_server.requests] == ["/v1/chat/completions"] * 4
    assert openai_server.requests[0]["headers"]["authorization"] == f"Bearer {FAKE_KEY}"
    assert openai_server.requests[0]["body"]["model"] == "local-judge"
    assert "4 new calls" in caplog.text and "at most $0.0000" in caplog.text  # a local server costs nothing
    assert FAKE_KEY not in caplog.text
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or FAKE_KEY not in path.read_text()
    assert judge(COMPARISONS, config) == [1.0, 0.0, 0.5, 1.0] and len(openai_server.requests) == 4  # cached


def test_openai_provider_needs_no_key_on_a_local_server(openai_server, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert judge(COMPARISONS[:1], judge_config(openai_server, tmp_path)) == [1.0]
    # without a base_url the SDK would call OpenAI itself, which needs a key: skipped, as for anthropic
    config = JudgeConfig(enabled=True, provider="openai", cache=str(tmp_path / "cache.jsonl"))
    assert judge(COMPARISONS, config) == [1.0, None, None, None]
    assert "OPENAI_API_KEY is not set: skipping the LLM judge" in caplog.text
    assert len(openai_server.requests) == 1


def test_unparsable_answers_are_asked_again(openai_server, tmp_path, monkeypatch) -> None:
    config = judge_config(openai_server, tmp_path)
    # comparison 1 answers nonsense twice (left unjudged), comparison 2 once (asked again at once)
    openai_server.answers = ["Both are fine", "Hard to say", "maybe"]
    assert judge(COMPARISONS, config) == [None, 0.0, 0.5, 1.0]
    assert len(openai_server.requests) == 2 + 2 + 1 + 1
    records = [r for r in map(json.loads, open(config.cache)) if r["winner"] is None]
    assert [r["answer"] for r in records] == ["Both are fine", "Hard to say", "maybe"]  # kept for the record
    # the next run asks only the unjudged comparison again
    assert judge(COMPARISONS, config) == [1.0, 0.0, 0.5, 1.0]
    assert len(openai_server.requests) == 7


def test_unparsable_retries_count_towards_the_cap(openai_server, tmp_path) -> None:
    openai_server.answers = ["?", "?"]
    assert judge(COMPARISONS, judge_config(openai_server, tmp_path, max_calls=3)) == [None, 0.0, None, None]
    assert len(openai_server.requests) == 3


def test_server_error_is_reported_and_loses_no_judgment(openai_server, tmp_path, caplog) -> None:
    openai_server.fail_after, openai_server.fail_status = 2, 500
    config = judge_config(openai_server, tmp_path)
    assert judge(COMPARISONS, config) == [1.0, 0.0, None, None]
    assert "stopped after an API error (InternalServerError" in caplog.text and "server error" in caplog.text
    assert len(JudgmentCache(config.cache).records) == 2
    failed = len(openai_server.requests) - 2  # the SDK retried the 500 before giving up
    openai_server.fail_after = None
    assert judge(COMPARISONS, config) == [1.0, 0.0, 0.5, 1.0]
    assert len(openai_server.requests) == 2 + failed + 2  # only the two missing judgments are asked


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="evaluate.judge.provider: 'gemini' is not allowed"):
        JudgeConfig(provider="gemini")
