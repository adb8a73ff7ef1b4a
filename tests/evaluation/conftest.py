"""Synthetic generation files and stand-in scorers, so evaluation tests need no trained model."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from replyrl.evaluation.evaluate import Scorers

TWEETS = [f"tweet number {i} about football" for i in range(8)]
# Half the human replies say "good": the learned-judge stand-in scores them 1, so the median is 0.5.
REFERENCES = [[f"good human reply {i}", f"plain human reply {i}"] for i in range(8)]


RATINGS = {"interesting": 7, "witty": 5, "upbeat": 6}
# Training pairs whose human replies set the `quantile` pass criterion (half "good": 1 under the stand-in).
REFERENCE_PAIRS = [{"tweet": f"training tweet {i}", "reply": f"{'good' if i % 2 else 'plain'} reply {i}",
                    "tweet_id": f"train:{i}", "chat_ratings": {"interesting": 7, "witty": 5, "upbeat": 6}}
                   for i in range(20)]


def make_rows(
    sample: Callable[[int, int], str], n: int = 10, tweets: Sequence[str] = TWEETS, context: bool = True,
    tweets_per_group: int = 1,
) -> list[dict]:
    """Generation-file rows; ``sample(i, j)`` is tweet i's j-th sample, the greedy reply is sample 0.

    ``context``: the rows carry the sample's chat ratings (the gold's context), as the sample's do.
    ``tweets_per_group``: consecutive tweets share a conversation (``group_id``).
    """
    return [
        {"tweet_id": f"id:{i}", "group_id": f"conversation:{i // tweets_per_group}", "tweet": tweet,
         "references": REFERENCES[i], "prompt": tweet, "samples": [sample(i, j) for j in range(n)],
         "greedy": sample(i, 0)} | ({"chat_ratings": RATINGS} if context else {})
        for i, tweet in enumerate(tweets)
    ]


class FakeBertScore:
    model_dir = "fake-encoder"
    layer = 3

    def f1(self, replies: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
        return np.array([float(r in refs) for r, refs in zip(replies, references)])


def _embed(texts: Sequence[str]) -> np.ndarray:
    rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=16) for t in texts]
    emb = np.array(rows).reshape(len(texts), 16)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


@pytest.fixture
def scorers() -> Scorers:
    """Engagement = 1 for replies containing "good"; heuristic = length / 100; hashed embeddings.

    The gold stand-in agrees with the engagement proxy except on a gamed reply: "good good" (repeating
    the word the proxy likes) scores 0.
    """
    return Scorers(
        engagement=lambda tweets, replies: np.array([float("good" in r) for r in replies]),
        gold=lambda tweets, replies, contexts: np.array([float("good" in r and "good good" not in r) for r in replies]),
        heuristic=lambda tweets, replies: np.array([len(r) / 100 for r in replies]),
        embed=_embed,
        bertscore=FakeBertScore(),
    )
