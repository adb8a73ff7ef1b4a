"""The built-in sample corpus: real chat messages and replies, with SIMULATED likes.

Text comes from the `chitchat-dataset` package (MIT): 7,168 real human chats, each a list of turns
(consecutive messages of one sender) plus, for most chats, 1-10 human ratings of how interesting,
witty and upbeat the chat was. A (tweet, reply) pair is two adjacent turns, which always come from
different senders. Pairs never share a turn (turns 0-1, 2-3, ...), so no text is a tweet in one pair
and the reply in another.

The chats have no likes, so they are simulated from the chat's ratings plus noise. The text itself
(length, sentiment, relevance, ...) never enters, so a text-based reward is not graded against its
own formula. With ``q = (mean rating - 5.5) / 4.5`` in [-1, 1] and independent standard normals
``e1``, ``e2``::

    tweet_likes ~ Poisson(exp(log(20) + 0.3 q + 1.0 e1))        # heavy-tailed tweet popularity
    rate        = sigmoid(-1.5 + 1.5 q + 0.8 e2)                  # share of the audience the reply wins
    reply_likes ~ Poisson(rate * max(tweet_likes, 1))

Better-rated chats get relatively more reply likes (engagement correlates ~0.5 with ``q``), yet
engagement spreads over the whole [0, 1] range (a few % exactly 0 or 1), so quartiles are distinct.
Unrated chats are skipped: without ratings there is nothing to drive the simulation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from replyrl.packaged import package_folder

logger = logging.getLogger(__name__)

RATING_NAMES = ("interesting", "witty", "upbeat")
TWEET_LIKES_MEDIAN = 20.0  # a modest account: most tweets get tens of likes
TWEET_QUALITY_EFFECT = 0.3  # better chats are a little more popular...
TWEET_POPULARITY_SIGMA = 1.0  # ...but popularity is mostly luck (lognormal, heavy tail)
REPLY_RATE_LOGIT = -1.5  # an average reply wins ~20-30% of the tweet's likes
REPLY_QUALITY_EFFECT = 1.5  # the ratings' main effect: they move the reply's share
REPLY_RATE_SIGMA = 0.8  # per-reply luck


def chitchat_path() -> Path:
    """``dataset.json`` of the installed `chitchat-dataset` package."""
    return package_folder("chitchat_dataset", "chitchat-dataset==0.9.0", "prepare.source") / "dataset.json"


def _turn_text(turn: list[dict[str, Any]]) -> str:
    return " ".join(message["text"] for message in turn)


def chat_pairs(chats: dict[str, Any]) -> tuple[list[dict[str, Any]], np.ndarray]:
    """All non-overlapping adjacent-turn pairs of the rated chats, and each pair's chat quality ``q``."""
    rows, quality = [], []
    for chat_id, chat in chats.items():
        ratings = chat.get("ratings")
        if not ratings:
            continue
        q = (np.mean([ratings[name] for name in RATING_NAMES]) - 5.5) / 4.5
        turns = chat["messages"]
        for i in range(0, len(turns) - 1, 2):
            tweet, reply = turns[i], turns[i + 1]
            rows.append(
                {
                    "tweet": _turn_text(tweet),
                    "reply": _turn_text(reply),
                    "tweet_id": f"{chat_id}/{i}",
                    "reply_id": f"{chat_id}/{i + 1}",
                    "tweet_author": tweet[0]["sender"],
                    "reply_author": reply[0]["sender"],
                    "created_at": reply[0]["timestamp"],
                }
            )
            quality.append(q)
    return rows, np.asarray(quality, dtype=np.float64)


def simulate_likes(quality: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(tweet_likes, reply_likes)`` for chat qualities ``q`` (see the module docstring)."""
    n = len(quality)
    popularity = np.exp(
        np.log(TWEET_LIKES_MEDIAN) + TWEET_QUALITY_EFFECT * quality + TWEET_POPULARITY_SIGMA * rng.standard_normal(n)
    )
    tweet_likes = rng.poisson(popularity)
    logit = REPLY_RATE_LOGIT + REPLY_QUALITY_EFFECT * quality + REPLY_RATE_SIGMA * rng.standard_normal(n)
    rate = 1.0 / (1.0 + np.exp(-logit))
    reply_likes = rng.poisson(rate * np.maximum(tweet_likes, 1))
    return tweet_likes, reply_likes


def sample_rows(size: int, seed: int, path: str | Path | None = None) -> list[dict[str, Any]]:
    """Draw ``size`` pairs from the chitchat corpus (at ``path``, default: the installed package).

    Deterministic for ``seed``: the same rows, in corpus order, with the same simulated likes.
    """
    path = Path(path) if path is not None else chitchat_path()
    with open(path, encoding="utf-8") as f:
        chats = json.load(f)
    rows, quality = chat_pairs(chats)
    if size > len(rows):
        raise ValueError(f"prepare.sample_size={size} but {path} yields only {len(rows)} pairs from rated chats")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(rows), size=size, replace=False))
    tweet_likes, reply_likes = simulate_likes(quality[chosen], rng)
    sample = [
        rows[i] | {"tweet_likes": int(t), "reply_likes": int(r)} for i, t, r in zip(chosen, tweet_likes, reply_likes)
    ]
    logger.info("sampled %d of %d chitchat pairs (seed %d); likes are simulated", size, len(rows), seed)
    return sample
