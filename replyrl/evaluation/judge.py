"""LLM-as-judge: pairwise "which reply is more engaging?" through the `anthropic` SDK.

Each comparison puts a model's reply against a human reference reply to the same tweet, in an order
drawn at random (seeded per comparison) so the judge's position bias averages out. Every judgment is
appended to a JSONL cache the moment it arrives, so a crash or exhausted credit loses nothing already
paid for, and a rerun only pays for what is missing. The API key is read by the SDK from
``ANTHROPIC_API_KEY`` and is never stored, logged or passed around by this module.
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

from replyrl.configs.evaluate import JudgeConfig

logger = logging.getLogger(__name__)

API_KEY_ENV = "ANTHROPIC_API_KEY"
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


def judge(comparisons: Sequence[Comparison], config: JudgeConfig) -> list[float | None]:
    """The candidate's score in each comparison (see `SCORES`), None where it is not judged (yet).

    Cached judgments are reused; at most ``config.max_calls`` new calls are made, and none without
    ``ANTHROPIC_API_KEY`` (the judge then says it is skipping and returns what the cache has).
    """
    import anthropic
    from tqdm.auto import tqdm

    cache = JudgmentCache(config.cache)
    keys = [c.key(config.model) for c in comparisons]
    first = {k: i for i, k in reversed(list(enumerate(keys)))}  # one call per distinct comparison
    todo = sorted(i for k, i in first.items() if k not in cache)
    if todo and not os.environ.get(API_KEY_ENV):
        logger.warning("%s is not set: skipping the LLM judge (%d of %d distinct comparisons cached)",
                       API_KEY_ENV, len(first) - len(todo), len(first))
    elif todo:
        if len(todo) > config.max_calls:
            logger.warning("LLM judge: %d comparisons not cached, judging only the first %d (evaluate.judge.max_calls)",
                           len(todo), config.max_calls)
            todo = todo[: config.max_calls]
        tokens, usd = estimate_cost([comparisons[i] for i in todo], config)
        logger.info("LLM judge %s: %d new calls, about %d input tokens, at most $%.4f (cache: %s)",
                    config.model, len(todo), tokens, usd, cache.path)
        client = anthropic.Anthropic(base_url=config.base_url)
        for i in tqdm(todo, desc="LLM judge", unit="call"):
            try:
                cache.add(_judge_one(client, comparisons[i], keys[i], config))
            except anthropic.APIError as e:
                # Out of credit, rate-limited past retries, server down: keep what is paid for, stop.
                logger.error("LLM judge stopped after an API error (%s: %s); the judgments so far are cached",
                             type(e).__name__, e)
                break
    records = [cache.get(k) for k in keys]
    return [None if r is None or r["winner"] is None else SCORES[r["winner"]] for r in records]


def _judge_one(client, comparison: Comparison, key: str, config: JudgeConfig) -> dict:
    candidate_first = random.Random(f"{config.seed}:{key}").random() < 0.5
    a, b = comparison.candidate, comparison.reference
    if not candidate_first:
        a, b = b, a
    response = client.messages.create(
        model=config.model,
        max_tokens=config.max_tokens,
        messages=[{"role": "user", "content": PROMPT.format(tweet=comparison.tweet, a=a, b=b)}],
    )
    answer = "".join(block.text for block in response.content if block.type == "text")
    verdict = parse_verdict(answer)
    if verdict in ("A", "B"):
        winner = "candidate" if (verdict == "A") == candidate_first else "reference"
    else:
        winner = "tie" if verdict == "TIE" else None  # None: an unusable answer, kept so it is not paid twice
    return {
        "key": key, "judge_model": config.model, "tweet": comparison.tweet, "candidate": comparison.candidate,
        "reference": comparison.reference, "candidate_first": candidate_first, "answer": answer, "winner": winner,
        "input_tokens": response.usage.input_tokens, "output_tokens": response.usage.output_tokens,
    }
