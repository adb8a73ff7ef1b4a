"""The LLM judge against a fake Messages API on 127.0.0.1 (stdlib http.server in a thread)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from replyrl.configs.evaluate import EvaluateConfig, JudgeConfig, PassAtKConfig
from replyrl.evaluation.evaluate import evaluate
from replyrl.evaluation.judge import Comparison, JudgmentCache, judge
from tests.evaluation.conftest import make_rows

FAKE_KEY = "sk-test-not-a-real-key"


class FakeAnthropic(ThreadingHTTPServer):
    """A judge that prefers "GOOD" replies and dislikes "BAD" ones; fails after ``fail_after`` calls."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []
        self.fail_after: int | None = None


class Handler(BaseHTTPRequestHandler):
    server: FakeAnthropic

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        if self.server.fail_after is not None and len(self.server.requests) > self.server.fail_after:
            # What the API answers when the credit is used up: a 400 that the SDK does not retry.
            return self._send(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                               "message": "credit balance is too low"}})
        prompt = body["messages"][0]["content"]
        a = prompt.split("Reply A:")[1].split("Reply B:")[0]
        b = prompt.split("Reply B:")[1].split("Answer with")[0]
        score_a, score_b = (("GOOD" in r) - ("BAD" in r) for r in (a, b))
        answer = "TIE" if score_a == score_b else ("A" if score_a > score_b else "B")
        self._send(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                         "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
                         "stop_sequence": None, "usage": {"input_tokens": 50, "output_tokens": 1}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def server():
    srv = FakeAnthropic()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def judge_config(server, tmp_path, **kwargs) -> JudgeConfig:
    host, port = server.server_address
    return JudgeConfig(enabled=True, base_url=f"http://{host}:{port}", cache=str(tmp_path / "cache.jsonl"), **kwargs)


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
    assert FAKE_KEY in (headers.get("x-api-key"), headers.get("Authorization", "").removeprefix("Bearer "))
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
        sft_models=["baseline_full"], grpo_inits=[], pass_at_k=PassAtKConfig(judge="llm", k=[1, 2]), n_samples=2,
        judge=judge_config(server, tmp_path),
    )
    # sample 1 beats the human reply, sample 0 loses -> 1 of 2 samples pass on every tweet
    gens = {("baseline_full", 1): make_rows(lambda i, j: "GOOD" if j == 1 else "BAD", n=2)}
    m = evaluate(gens, scorers, config).metrics
    assert m["pass_threshold"] == 0.5
    assert m["baseline_full.pass@1"] == pytest.approx(0.5) and m["baseline_full.pass@2"] == 1.0
    assert m["baseline_full.llm_win_rate"] == 0.0  # greedy = sample 0 = "BAD"
    assert m["baseline_full.llm_judged"] == 8
    # 8 tweets x (1 greedy + 2 samples), the greedy text repeats sample 0, so it is judged once
    assert len(server.requests) == 16


def test_evaluate_without_a_key_still_succeeds(server, tmp_path, monkeypatch, scorers) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config = EvaluateConfig(sft_models=["baseline_full"], grpo_inits=[], judge=judge_config(server, tmp_path))
    m = evaluate({("baseline_full", 1): make_rows(lambda i, j: f"reply {j}")}, scorers, config).metrics
    assert m["baseline_full.llm_judged"] == 0 and m["baseline_full.llm_win_rate"] is None
    assert m["baseline_full.pass@10"] == 0.0 and not server.requests
