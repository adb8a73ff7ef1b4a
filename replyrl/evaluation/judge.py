"""LLM-as-judge: pairwise "which reply is more engaging?" through the `anthropic` or `openai` SDK.

Each comparison puts a model's reply against a human reference reply to the same tweet, in an order
drawn at random (seeded per comparison) so the judge's position bias averages out. Every judgment is
appended to a JSONL cache the moment it arrives, so a crash or exhausted credit loses nothing already
paid for, and a rerun only pays for what is missing. ``evaluate.judge.provider`` picks the client:
``anthropic`` (the Messages API) or ``openai`` (Chat Completions on any OpenAI-compatible server, such
as a local vLLM, llama.cpp or Ollama at ``base_url``); everything else is one code path. The API key
is read from ``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY`` and is never stored, logged or passed around
by this module beyond handing it to the SDK.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from replyrl.configs.evaluate import JudgeConfig

logger = logging.getLogger(__name__)

API_KEY_ENVS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
# An answer that is not A, B or TIE is asked once more at once (a sampled judge often answers properly
# the second time); if it still fails, the comparison stays unjudged and the next run asks again.
ATTEMPTS = 2
PROMPT = """Two replies were written to the same tweet. Which reply is more engaging: more likely to \
earn likes and responses while staying relevant and appropriate?

Tweet: {tweet}

Reply A: {a}

Reply B: {b}

Answer with exactly one word: A, B or TIE."""
# Score of the *candidate* for each verdict: 1 = preferred over the reference, 0.5 = tie, 0 = worse.
SCORES = {"candidate": 1.0, "tie": 0.5, "reference": 0.0}


@dataclass(frozen=True)
class Comparison:
    """One judgment to make: ``candidate`` (a model's reply) against ``reference`` (a human reply)."""

    tweet: str
    candidate: str
    reference: str

    def key(self, judge_model: str) -> str:
        payload = json.dumps([judge_model, self.tweet, self.candidate, self.reference], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JudgmentCache:
    """Append-only JSONL of judgments keyed by `Comparison.key`; each line is flushed and fsynced."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        if self.path.exists():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            for lineno, line in enumerate(lines, 1):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    if lineno == len(lines):  # a write cut short by a crash: that call is simply redone
                        logger.warning("%s:%d: ignoring a truncated last line", self.path, lineno)
                        continue
                    raise ValueError(f"{self.path}:{lineno}: invalid JSON; delete the line or the file") from None
                self.records[record["key"]] = record

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def add(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records[record["key"]] = record


def parse_verdict(text: str) -> str | None:
    """``A``, ``B`` or ``TIE`` from the judge's answer; None if it answered something else.

    >>> parse_verdict(" b."), parse_verdict("Tie"), parse_verdict("Both are fine")
    ('B', 'TIE', None)
    """
    words = text.strip().upper().split()
    word = words[0].strip(".,:;!*\"'") if words else ""
    return word if word in ("A", "B", "TIE") else None


def estimate_cost(comparisons: Sequence[Comparison], config: JudgeConfig) -> tuple[int, float]:
    """Rough upper bound of (input tokens, US dollars) for judging ``comparisons`` (~4 characters a token)."""
    input_tokens = sum(len(PROMPT.format(tweet=c.tweet, a=c.candidate, b=c.reference)) // 4 + 10 for c in comparisons)
    output_tokens = len(comparisons) * config.max_tokens
    usd = (input_tokens * config.input_usd_per_mtok + output_tokens * config.output_usd_per_mtok) / 1e6
    return input_tokens, usd


class JudgeClient(Protocol):
    """One provider's SDK behind the judge: send a prompt, get the answer text and token counts."""

    errors: tuple[type[Exception], ...]  # the SDK's API errors: out of credit, server down, retries exhausted

    def ask(self, prompt: str) -> tuple[str, int | None, int | None]: ...


class AnthropicClient:
    """The Messages API; the SDK reads ``ANTHROPIC_API_KEY`` itself."""

    def __init__(self, config: JudgeConfig) -> None:
        import anthropic

        self.config = config
        self.errors = (anthropic.APIError,)
        self.client = anthropic.Anthropic(base_url=config.base_url)

    def ask(self, prompt: str) -> tuple[str, int | None, int | None]:
        response = self.client.messages.create(
            model=self.config.model, max_tokens=self.config.max_tokens, messages=[{"role": "user", "content": prompt}]
        )
        answer = "".join(block.text for block in response.content if block.type == "text")
        return answer, response.usage.input_tokens, response.usage.output_tokens


class OpenAIClient:
    """Chat Completions on any OpenAI-compatible server (OpenAI itself, vLLM, llama.cpp, Ollama, ...)."""

    def __init__(self, config: JudgeConfig) -> None:
        import openai

        self.config = config
        self.errors = (openai.APIError,)
        # A local server needs no key, but the SDK refuses to start without one: "EMPTY" is the
        # placeholder vLLM documents, and the servers that take no key ignore it.
        api_key = os.environ.get(API_KEY_ENVS["openai"]) or "EMPTY"
        self.client = openai.OpenAI(base_url=config.base_url, api_key=api_key)

    def ask(self, prompt: str) -> tuple[str, int | None, int | None]:
        # `max_tokens`, not `max_completion_tokens`: the local servers all accept the older name.
        response = self.client.chat.completions.create(
            model=self.config.model, max_tokens=self.config.max_tokens, messages=[{"role": "user", "content": prompt}]
        )
        usage = response.usage  # some local servers leave it out
        answer = response.choices[0].message.content if response.choices else None
        return answer or "", usage and usage.prompt_tokens, usage and usage.completion_tokens


CLIENTS: dict[str, type[JudgeClient]] = {"anthropic": AnthropicClient, "openai": OpenAIClient}


def needs_key(config: JudgeConfig) -> bool:
    """Anthropic always needs its key; an OpenAI-compatible server only without a ``base_url`` (OpenAI itself)."""
    return config.provider == "anthropic" or config.base_url is None


def judge(comparisons: Sequence[Comparison], config: JudgeConfig) -> list[float | None]:
    """The candidate's score in each comparison (see `SCORES`), None where it is not judged (yet).

    Cached judgments are reused; at most ``config.max_calls`` new calls are made (retries of
    unparsable answers included), and none without the provider's API key where one is needed (the
    judge then says it is skipping and returns what the cache has). An unparsable answer is cached
    for the record but does not count as a judgment: the comparison is asked again.
    """
    cache = JudgmentCache(config.cache)
    keys = [c.key(config.model) for c in comparisons]
    first = {k: i for i, k in reversed(list(enumerate(keys)))}  # one call per distinct comparison
    todo = sorted(i for k, i in first.items() if _score(cache.get(k)) is None)
    key_env = API_KEY_ENVS[config.provider]
    if todo and needs_key(config) and not os.environ.get(key_env):
        logger.warning("%s is not set: skipping the LLM judge (%d of %d distinct comparisons cached)",
                       key_env, len(first) - len(todo), len(first))
    elif todo:
        if len(todo) > config.max_calls:
            logger.warning("LLM judge: %d comparisons not cached, judging at most %d (evaluate.judge.max_calls)",
                           len(todo), config.max_calls)
        tokens, usd = estimate_cost([comparisons[i] for i in todo[: config.max_calls]], config)
        logger.info("LLM judge %s (%s): %d new calls, about %d input tokens, at most $%.4f (cache: %s)",
                    config.model, config.provider, min(len(todo), config.max_calls), tokens, usd, cache.path)
        _ask_all(CLIENTS[config.provider](config), [(comparisons[i], keys[i]) for i in todo], cache, config)
    return [_score(cache.get(k)) for k in keys]


def _score(record: dict | None) -> float | None:
    return None if record is None or record["winner"] is None else SCORES[record["winner"]]


def _ask_all(
    client: JudgeClient, todo: list[tuple[Comparison, str]], cache: JudgmentCache, config: JudgeConfig
) -> None:
    """Judge each (comparison, key) in turn, caching every answer, until done, capped or an API error."""
    from tqdm.auto import tqdm

    calls = 0
    for comparison, key in tqdm(todo, desc="LLM judge", unit="comparison"):
        for attempt in range(1, ATTEMPTS + 1):
            if calls == config.max_calls:
                return
            try:
                record = _judge_one(client, comparison, key, config)
            except client.errors as e:
                # Out of credit, rate-limited past the SDK's retries, server down: keep what is paid for, stop.
                logger.error("LLM judge stopped after an API error (%s: %s); the judgments so far are cached",
                             type(e).__name__, e)
                return
            calls += 1
            cache.add(record)
            if record["winner"] is not None:
                break
            logger.warning("LLM judge: unparsable answer %r (attempt %d of %d)%s", record["answer"], attempt, ATTEMPTS,
                           "" if attempt < ATTEMPTS else "; the next run asks again")


def _judge_one(client: JudgeClient, comparison: Comparison, key: str, config: JudgeConfig) -> dict:
    candidate_first = random.Random(f"{config.seed}:{key}").random() < 0.5
    a, b = comparison.candidate, comparison.reference
    if not candidate_first:
        a, b = b, a
    answer, input_tokens, output_tokens = client.ask(PROMPT.format(tweet=comparison.tweet, a=a, b=b))
    verdict = parse_verdict(answer)
    if verdict in ("A", "B"):
        winner = "candidate" if (verdict == "A") == candidate_first else "reference"
    else:
        winner = "tie" if verdict == "TIE" else None  # None: unparsable, asked again (see `ATTEMPTS`)
    return {
        "key": key, "provider": config.provider, "judge_model": config.model, "tweet": comparison.tweet,
        "candidate": comparison.candidate, "reference": comparison.reference, "candidate_first": candidate_first,
        "answer": answer, "winner": winner, "input_tokens": input_tokens, "output_tokens": output_tokens,
    }
