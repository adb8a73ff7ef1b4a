"""Gold v1, frozen: the sample's first gold engagement function, kept only so that the yardstick stage
can show what v2 (`gold.py`) fixed (README: "The yardstick"). Nothing else imports it; its text below
is as it was.

The sample's gold engagement function: the known ground truth behind its simulated likes.

The set-up of Gao et al. 2022 ("Scaling Laws for Reward Model Overoptimization"): a gold scorer
generates the labels, a proxy reward is learned from noisy labels (`replyrl.rewards.learned`), and
optimisation against a proxy is judged by the gold. `sample.py` draws the sample's likes from it;
evaluation (`judge: gold`) and the GRPO gold monitor score generated replies with it. Training
stages, the rewards and the learned model never import this module (a test checks the imports), so
the gold can never leak into a loss.

``gold(tweet, reply, context)`` is a weighted mean of six components, each in [0, 1]:

================  ======  ==================================================================
component         weight  what it measures (a reply scores higher when ...)
================  ======  ==================================================================
``intensity``     0.15    it is emotionally vivid: ``|compound|`` of VADER, a social-media
                          sentiment lexicon (either sign: a strong reaction engages)
``specificity``   0.20    its words are specific rather than filler: mean inverse document
                          frequency of its words over every turn of the chitchat corpus,
                          mapped linearly from ``IDF_LOW`` (0) to ``IDF_HIGH`` (1); a word the
                          corpus never uses (gibberish, a typo) counts as filler (``IDF_LOW``)
``cues``          0.15    it invites a response: half for a question mark, half for
                          addressing the other person (you, your, ...)
``length``        0.15    it has a tweet-reply length: a smooth log-normal bump in characters
                          peaking at ``LENGTH_PEAK_CHARS`` (half height at 0.44x and 2.28x)
``novelty``       0.15    it adds something instead of echoing the tweet: the share of its
                          content words (corpus words that are not stop words) absent from the
                          tweet, times one minus the share of its word trigrams copied from it
``ratings``       0.20    the chat it answers was rated well by its two human participants:
                          mean of the interesting/witty/upbeat ratings (1-10) mapped to [0, 1]
================  ======  ==================================================================

None of these is a signal of the heuristic reward (MiniLM cosine, a 50-150-character step,
TextBlob polarity match, unique-word ratio, ``!?.`` ratio, generic phrases, a near-copy penalty), so
the heuristic is a realistic, imperfect proxy of the gold: it overlaps in spirit (length, relevance,
sentiment), not in formula. Echoing the tweet's words raises the heuristic's cosine (only a near-copy
is penalised there); it lowers the gold's novelty. Words outside the corpus vocabulary earn nothing
(every word of the sample's human replies is in it), so gibberish cannot buy specificity or novelty.

``context`` carries what the text cannot: the chat's real human ratings (`CONTEXT_FIELD` of a
sample row). Only the sample has it; `context_of` names what is missing for any other data.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from replyrl.data.schema import CONTEXT_FIELD
from replyrl.packaged import chitchat_path

RATING_NAMES = ("interesting", "witty", "upbeat")
RATING_MIN, RATING_MAX = 1.0, 10.0

WEIGHTS = {"intensity": 0.15, "specificity": 0.20, "cues": 0.15, "length": 0.15, "novelty": 0.15, "ratings": 0.20}
# Mean smoothed IDF over the corpus turns: ~2-3 for filler ("i am ok"), ~6-7 for a reply of rare
# words. These bounds map the 5th and 95th percentiles of the sample's human replies near 0 and 1.
IDF_LOW, IDF_HIGH = 3.5, 6.5
LENGTH_PEAK_CHARS = 80.0
LENGTH_LOG_SIGMA = 0.7  # width of the bump in log-characters
SECOND_PERSON = frozenset({"you", "your", "yours", "yourself", "you're", "youre", "you've", "you'll", "you'd", "u", "ur"})
WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits and apostrophes).

    >>> words("You're SO right!! 2 cats")
    ["you're", 'so', 'right', '2', 'cats']
    """
    return WORD.findall(text.lower())


@cache
def idf_table(path: str | None = None) -> dict[str, float]:
    """Smoothed IDF ``ln((1 + N) / (1 + df)) + 1`` of every word over the corpus turns (a turn is a
    document). Computed once per process (~2 s)."""
    with open(path or chitchat_path(), encoding="utf-8") as f:
        chats = json.load(f)
    df: Counter[str] = Counter()
    n = 0
    for chat in chats.values():
        for turn in chat["messages"]:
            df.update(set(words(" ".join(message["text"] for message in turn))))
            n += 1
    return {w: math.log((1 + n) / (1 + c)) + 1 for w, c in df.items()}


@cache
def _vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def _trigrams(tokens: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)}


@cache
def _stop_words() -> frozenset[str]:
    # Imported on first use: sklearn adds ~2 s to the start of every stage that imports this module.
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def gold_components(tweet: str, reply: str, context: Mapping[str, Any]) -> dict[str, float]:
    """Every component of the gold (see the module docstring) and their weighted mean, ``total``."""
    reply_words, tweet_words = words(reply), words(tweet)
    idf = idf_table()
    if reply_words:
        # An out-of-corpus word is filler: it must not buy specificity (gibberish would max it out).
        mean_idf = float(np.mean([idf.get(w, IDF_LOW) for w in reply_words]))
        specificity = min(max((mean_idf - IDF_LOW) / (IDF_HIGH - IDF_LOW), 0.0), 1.0)
    else:
        specificity = 0.0
    chars = len(reply.strip())
    length = math.exp(-0.5 * (math.log(chars / LENGTH_PEAK_CHARS) / LENGTH_LOG_SIGMA) ** 2) if chars else 0.0
    content = {w for w in reply_words if w in idf and w not in _stop_words()}
    new_share = len(content - set(tweet_words)) / len(content) if content else 0.0
    reply_trigrams = _trigrams(reply_words)
    copied = len(reply_trigrams & _trigrams(tweet_words)) / len(reply_trigrams) if reply_trigrams else 0.0
    ratings = context[CONTEXT_FIELD]
    mean_rating = float(np.mean([ratings[n] for n in RATING_NAMES]))
    parts = {
        "intensity": abs(_vader().polarity_scores(reply)["compound"]) if reply.strip() else 0.0,
        "specificity": specificity,
        "cues": 0.5 * ("?" in reply) + 0.5 * any(w in SECOND_PERSON for w in reply_words),
        "length": length,
        "novelty": new_share * (1.0 - copied),
        "ratings": (mean_rating - RATING_MIN) / (RATING_MAX - RATING_MIN),
    }
    parts["total"] = sum(WEIGHTS[name] * value for name, value in parts.items())
    return parts


def gold(tweet: str, reply: str, context: Mapping[str, Any]) -> float:
    """The gold engagement of ``reply`` to ``tweet`` in [0, 1]; deterministic (see the module docstring).

    >>> context = {"chat_ratings": {"interesting": 8, "witty": 7, "upbeat": 9}}
    >>> tweet = "Just finished my first marathon, legs are jelly."
    >>> engaged = gold(tweet, "Congrats, that's huge! How long did the training take you?", context)
    >>> echo = gold(tweet, "Just finished my first marathon, legs are jelly.", context)
    >>> engaged > echo
    True
    """
    return gold_components(tweet, reply, context)["total"]


def gold_scores(tweets: Sequence[str], replies: Sequence[str], contexts: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """:func:`gold` of every (tweet, reply, context), as a float64 array."""
    return np.array([gold(t, r, c) for t, r, c in zip(tweets, replies, contexts, strict=True)], dtype=np.float64)
