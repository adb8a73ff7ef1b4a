"""The built-in sample corpus: real chat messages and replies, with likes SIMULATED from a known gold.

Text comes from the `chitchat-dataset` package (MIT): 7,168 real human chats, each a list of turns
(consecutive messages of one sender) plus, for most chats, 1-10 human ratings of how interesting,
witty and upbeat the chat was. A (tweet, reply) pair is two adjacent turns, which always come from
different senders. Pairs never share a turn (turns 0-1, 2-3, ...), so no text is a tweet in one pair
and the reply in another. A chat yields several pairs: ``conversation_id`` (the chat id) keeps them
together in every split.

The chats have no likes, so they are simulated from the gold engagement function (`gold.py`: text
signals plus the chat's ratings) and noise, the synthetic-gold set-up of Gao et al. 2022. With the
reply's gold score ``g``, the chat's rating ``q = (mean rating - 5.5) / 4.5`` in [-1, 1] and
independent standard normals ``e1``, ``e2``::

    tweet_likes ~ Poisson(exp(log(20) + 0.3 q + 1.0 e1))                 # heavy-tailed tweet popularity
    rate        = sigmoid(-1.2 + 1.0 (g - 0.35) / 0.13 + 0.80 e2)         # share of the audience the reply wins
    reply_likes ~ Poisson(rate * max(tweet_likes, 1))

and ``engagement = min(reply_likes / max(tweet_likes, 1), 1)`` (`schema.engagement`). ``(g - 0.35) /
0.13`` standardises the gold over the sample's human replies, so a reply one gold-SD better wins about
e times the odds. The noise (``REPLY_RATE_SIGMA``, with the Poisson draws and the cap) was fixed once,
before anything was trained, so that corr(gold, engagement) = 0.60 on the sample (0.604 +- 0.006 over
ten likes seeds, gold v2): the ceiling any reward learned from these likes can reach (README: "The sample").
Unrated chats are skipped: without ratings there is no gold.

`sample_negatives` adds what no person would post: for a quarter of the rows, a degenerate reply
(`degenerate.LEARNED_REWARD_KINDS`: copies, boilerplate, other languages, ...) with likes simulated
the same way from its gold. The learned reward trains on them beside the human replies; nothing
else reads them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from replyrl.data.degenerate import KINDS, LEARNED_REWARD_KINDS
from replyrl.data.gold import CONTEXT_FIELD, RATING_NAMES, context_of, gold_scores
from replyrl.data.schema import engagement
from replyrl.packaged import chitchat_path

logger = logging.getLogger(__name__)

TWEET_LIKES_MEDIAN = 20.0  # a modest account: most tweets get tens of likes
TWEET_QUALITY_EFFECT = 0.3  # better-rated chats are a little more popular...
TWEET_POPULARITY_SIGMA = 1.0  # ...but popularity is mostly luck (lognormal, heavy tail)
REPLY_RATE_LOGIT = -1.2  # an average reply wins ~25-30% of the tweet's likes
GOLD_CENTER, GOLD_SCALE = 0.35, 0.13  # mean and SD of the gold (v2) over the sample's human replies
GOLD_EFFECT = 1.0  # log-odds of the reply's share per gold SD
REPLY_RATE_SIGMA = 0.80  # per-reply luck: sets corr(gold, engagement) = 0.60 (module docstring)
NEGATIVE_SHARE = 0.25  # rows that get a degenerate reply for the learned reward's training
TARGET_GOLD_CORRELATION = 0.60  # what REPLY_RATE_SIGMA was fixed for; tests check the sample reaches it


def _turn_text(turn: list[dict[str, Any]]) -> str:
    return " ".join(message["text"] for message in turn)


def chat_pairs(chats: dict[str, Any]) -> list[dict[str, Any]]:
    """All non-overlapping adjacent-turn pairs of the rated chats, with the chat's id and ratings."""
    rows = []
    for chat_id, chat in chats.items():
        ratings = chat.get("ratings")
        if not ratings:
            continue
        turns = chat["messages"]
        for i in range(0, len(turns) - 1, 2):
            tweet, reply = turns[i], turns[i + 1]
            rows.append(
                {
                    "tweet": _turn_text(tweet),
                    "reply": _turn_text(reply),
                    "tweet_id": f"{chat_id}/{i}",
                    "reply_id": f"{chat_id}/{i + 1}",
                    "conversation_id": chat_id,
                    "tweet_author": tweet[0]["sender"],
                    "reply_author": reply[0]["sender"],
                    "created_at": reply[0]["timestamp"],
                    CONTEXT_FIELD: {name: ratings[name] for name in RATING_NAMES},
                }
            )
    return rows


def chat_quality(row: dict[str, Any]) -> float:
    """``q`` in [-1, 1]: the chat's mean rating, centred on the 1-10 scale's middle."""
    return (float(np.mean([row[CONTEXT_FIELD][name] for name in RATING_NAMES])) - 5.5) / 4.5


def simulate_likes(gold: np.ndarray, quality: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(tweet_likes, reply_likes)`` from gold scores and chat qualities (see the module docstring)."""
    n = len(gold)
    popularity = np.exp(
        np.log(TWEET_LIKES_MEDIAN) + TWEET_QUALITY_EFFECT * quality + TWEET_POPULARITY_SIGMA * rng.standard_normal(n)
    )
    tweet_likes = rng.poisson(popularity)
    logit = (
        REPLY_RATE_LOGIT
        + GOLD_EFFECT * (gold - GOLD_CENTER) / GOLD_SCALE
        + REPLY_RATE_SIGMA * rng.standard_normal(n)
    )
    rate = 1.0 / (1.0 + np.exp(-logit))
    reply_likes = rng.poisson(rate * np.maximum(tweet_likes, 1))
    return tweet_likes, reply_likes


def sample_rows(size: int, seed: int, path: str | Path | None = None) -> list[dict[str, Any]]:
    """Draw ``size`` pairs from the chitchat corpus (at ``path``, default: the installed package).

    Deterministic for ``seed``: the same rows, in corpus order, with the same simulated likes. Each
    row also carries its ``gold`` score (of the human reply), for the reward's report.
    """
    path = Path(path) if path is not None else chitchat_path()
    with open(path, encoding="utf-8") as f:
        chats = json.load(f)
    rows = chat_pairs(chats)
    if size > len(rows):
        raise ValueError(f"prepare.sample_size={size} but {path} yields only {len(rows)} pairs from rated chats")
    rng = np.random.default_rng(seed)
    chosen = [rows[i] for i in np.sort(rng.choice(len(rows), size=size, replace=False))]
    gold = gold_scores([r["tweet"] for r in chosen], [r["reply"] for r in chosen], [context_of(r) for r in chosen])
    tweet_likes, reply_likes = simulate_likes(gold, np.array([chat_quality(r) for r in chosen]), rng)
    sample = [
        row | {"tweet_likes": int(t), "reply_likes": int(r), "gold": round(float(g), 6)}
        for row, g, t, r in zip(chosen, gold, tweet_likes, reply_likes)
    ]
    logger.info("sampled %d of %d chitchat pairs (seed %d); likes are simulated from the gold", size, len(rows), seed)
    return sample


def sample_negatives(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Degenerate replies to ``NEGATIVE_SHARE`` of the sample ``rows`` (seeded choice), the kinds of
    `LEARNED_REWARD_KINDS` in turn, each with its ``kind``, gold and likes simulated from that gold as
    for the human replies, and the row's ids (so every split keeps it with its conversation)."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(rows), size=round(NEGATIVE_SHARE * len(rows)), replace=False))
    negatives = []
    for n, i in enumerate(chosen):
        row, kind = rows[i], LEARNED_REWARD_KINDS[n % len(LEARNED_REWARD_KINDS)]
        negatives.append({key: row[key] for key in ("tweet", "tweet_id", "conversation_id", CONTEXT_FIELD) if key in row}
                         | {"reply": KINDS[kind](row["tweet"], row["reply"], "", rng), "kind": kind})
    gold = gold_scores([r["tweet"] for r in negatives], [r["reply"] for r in negatives],
                       [context_of(r) for r in negatives])
    tweet_likes, reply_likes = simulate_likes(gold, np.array([chat_quality(r) for r in negatives]), rng)
    return [
        row | {"tweet_likes": int(t), "reply_likes": int(r), "engagement": engagement(int(t), int(r)),
               "gold": round(float(g), 6)}
        for row, g, t, r in zip(negatives, gold, tweet_likes, reply_likes)
    ]
