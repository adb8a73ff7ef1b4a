"""The sample's gold engagement function (v2): the known ground truth behind its simulated likes.

The set-up of Gao et al. 2022 ("Scaling Laws for Reward Model Overoptimization"): a gold scorer
generates the labels, a proxy reward is learned from noisy labels (`replyrl.rewards.learned`), and
optimisation against a proxy is judged by the gold. `sample.py` draws the sample's likes from it;
evaluation (`judge: gold`) and the GRPO gold monitor score generated replies with it. Training
stages, the rewards and the learned model never import this module (a test checks the imports), so
the gold can never leak into a loss.

``gold = naturalness * (sum of weight * component)``, each component in [0, 1], where the five text
components marked * count only as far as the reply is about the tweet: they are multiplied by
``substance = min(relevance / SUBSTANCE_RELEVANCE, 1)``, so a stock question that fits every tweet
("That's so interesting! What do you think?") cannot collect them:

================  ======  ==================================================================
component         weight  what it measures (a reply scores higher when ...)
================  ======  ==================================================================
``relevance``     0.40    it answers THIS tweet: the mean, over the reply's content words that
                          are not in the tweet, of their best association with a tweet word:
                          positive pointwise mutual information of "word a in a message, word b
                          in the reply to it" over the chitchat corpus's ~131k adjacent turns,
                          capped at ``PMI_CAP`` nats and scaled to [0, 1], with the scored text
                          pair itself left out of the counts (`Associations`). Words the tweet
                          already has earn nothing, so copying is not relevance
``ratings``       0.20    the chat it answers was rated well by its two human participants:
                          mean of the interesting/witty/upbeat ratings (1-10) mapped to [0, 1]
``specificity``*  0.20    its words are specific rather than filler: mean inverse document
                          frequency of its words, mapped linearly from ``IDF_LOW`` (0) to
                          ``IDF_HIGH`` (1); a word seen fewer than ``MIN_WORD_COUNT`` times in
                          the corpus (gibberish, a typo, a fragment) counts as filler
``cues``*         0.05    it invites a response: half for a question mark, half for addressing
                          the other person (you, your, ...); capped low, so appending "What
                          about you?" moves the gold little
``length``*       0.05    it has a reply's length: a smooth log-normal bump in characters
                          peaking at ``LENGTH_PEAK_CHARS`` (half height at 0.44x and 2.28x)
``novelty``*      0.05    it adds something instead of echoing the tweet: the share of its
                          content words absent from the tweet, times one minus the share of its
                          word trigrams copied from it
``intensity``*    0.05    it is emotionally vivid: ``|compound|`` of VADER (either sign: sorrow
                          at bad news engages too; hostility is dealt with below)
================  ======  ==================================================================

``naturalness`` in [0, 1] is the product of factors for what no person would call engaging:

- ``english``: the share of its words the corpus has seen ``MIN_WORD_COUNT`` times, mapped from
  ``ENGLISH_SHARE_LOW`` (0) to ``ENGLISH_SHARE_HIGH`` (1): another language or a character salad
  scores 0; a typo or a name costs little;
- ``fluent``: a reply of ``FLUENCY_MIN_WORDS`` or more words with no function words (``the``, ``i``,
  ``is``, ...) is a word salad, scored by its share of stop words up to ``FLUENCY_STOP_SHARE``;
- ``written``: the share of its visible characters that are letters, digits or ordinary punctuation
  (emoji runs, symbol strings), mapped from 0.5 (0) to 0.8 (1); 0 for a reply without a word;
- ``BOILERPLATE_FACTOR`` for a chat assistant's phrases (`replyrl.text.is_boilerplate`),
  ``HOSTILE_FACTOR`` for insults aimed at the other person, ``COPY_FACTOR`` for a reply that repeats
  ``COPY_MIN_WORDS`` consecutive words of its tweet (`replyrl.text.copies_tweet`).

Relevance shares nothing with the GRPO rewards: the heuristic reward's is a MiniLM cosine, the
learned reward an MLP on MiniLM features; here it is a count-based association between different
words of a message and its reply (a classic response-selection signal), read from the corpus. One
check is shared on purpose: "repeats 4 consecutive words of the tweet" (`replyrl.text.copies_tweet`)
is also part of the heuristic reward's echo guard; a copy is no reply under any judge.

Measured limits (README: "The yardstick", on 300 held-out tweets): word associations counted over
~131k turn pairs tell a tweet's own human reply from a human reply to another conversation only
about 55-60% of the time, and a stock question ("That's so interesting! What do you think?") beats
about half of the human replies, many of which are short ("oh..cool"). An LM's pointwise mutual
information would do better but costs ~0.17 s a pair on 2 CPU cores (0.5 h for the sample's pairs). Tokens are read as a person reads them (`replyrl.text.words`: accents dropped,
curly apostrophes straightened), so a fragment of an accented word is not a "rare word".

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
from replyrl.text import copies_tweet, is_boilerplate, normalize, words

RATING_NAMES = ("interesting", "witty", "upbeat")
RATING_MIN, RATING_MAX = 1.0, 10.0
VERSION = 2  # written beside every gold score the pipeline stores

WEIGHTS = {"relevance": 0.40, "ratings": 0.20, "specificity": 0.20, "cues": 0.05, "length": 0.05, "novelty": 0.05,
           "intensity": 0.05}
# Components that count only as far as the reply is about the tweet (`substance`): without it, a
# stock question ("That's so interesting! What do you think?") fits every tweet and would collect
# them all. Chosen by measurement (README: "The yardstick").
TEXT_COMPONENTS = ("specificity", "cues", "length", "novelty", "intensity")
SUBSTANCE_RELEVANCE = 0.10  # relevance at which the text components count in full
MIN_WORD_COUNT = 5  # corpus turns a word must occur in to count as a known word (IDF, PMI, english)
MIN_PAIR_COUNT = 3  # message/reply co-occurrences a word pair needs for its PMI to count
PMI_CAP = 4.0  # nats: an association this strong (e^4 = 55x chance) or stronger scores 1
# Mean smoothed IDF over the corpus turns: ~2-3 for filler ("i am ok"), ~6-7 for a reply of rare
# words. These bounds map the 5th and 95th percentiles of the sample's human replies near 0 and 1.
IDF_LOW, IDF_HIGH = 3.5, 6.5
LENGTH_PEAK_CHARS = 80.0
LENGTH_LOG_SIGMA = 0.7  # width of the bump in log-characters
ENGLISH_SHARE_LOW, ENGLISH_SHARE_HIGH = 0.5, 0.85
FLUENCY_MIN_WORDS, FLUENCY_STOP_SHARE = 6, 0.2
BOILERPLATE_FACTOR, HOSTILE_FACTOR, COPY_FACTOR = 0.1, 0.2, 0.3
SECOND_PERSON = frozenset({"you", "your", "yours", "yourself", "you're", "youre", "you've", "you'll", "you'd", "u", "ur"})
# Insults aimed at the other person: hostility is not engagement (VADER alone scores it as vivid).
HOSTILE = re.compile(
    r"\b(?:hate you|(?:shut|screw) (?:up|you)|f\W*ck (?:you|off)|stfu|kill yourself|you (?:suck|disgust me)"
    r"|(?:you(?:'re| are)?|ur) (?:(?:such |so |a |an |so much )*)(?:stupid|idiot|moron|dumb|pathetic|worthless|loser|ugly"
    r"|disgusting|monster|jerk|trash|garbage|horrible person|useless)"
    r"|(?:stupid|idiot|moron|pathetic|worthless|ugly|disgusting) (?:person|human|monster)|you (?:\w+ )?monster)\b"
)
ORDINARY = re.compile(r"[a-z0-9\s.,!?'\"():;&%$/-]")


@cache
def _corpus_turns(path: str | None = None) -> list[list[list[str]]]:
    """Every chat of the corpus as the list of its turns, each the list of its `words`. Read once per process."""
    with open(path or chitchat_path(), encoding="utf-8") as f:
        chats = json.load(f)
    return [[words(" ".join(message["text"] for message in turn)) for turn in chat["messages"]] for chat in chats.values()]


@cache
def idf_table(path: str | None = None) -> dict[str, float]:
    """Smoothed IDF ``ln((1 + N) / (1 + df)) + 1`` over the corpus turns (a turn is a document) of
    every word seen in at least ``MIN_WORD_COUNT`` turns; rarer words are left out (filler)."""
    counts: Counter[str] = Counter()
    n = 0
    for chat in _corpus_turns(path):
        for turn in chat:
            counts.update(set(turn))
            n += 1
    return {w: math.log((1 + n) / (1 + c)) + 1 for w, c in counts.items() if c >= MIN_WORD_COUNT}


class Associations:
    """Counts behind ``relevance``: over the corpus's adjacent turn pairs (a message and the turn that
    answers it), how many pairs have content word ``a`` in the message (``in_message``), ``b`` in the
    answer (``in_answer``), and both (``together[a][b]``, pairs seen at least ``MIN_PAIR_COUNT`` times).

    `pmi` leaves the scored text pair itself out of the counts when the corpus has it (the sample's
    human replies are corpus pairs, a model's replies are not): otherwise a human reply would look
    relevant to its tweet because the gold had memorised that very pair."""

    def __init__(self, path: str | None = None) -> None:
        import scipy.sparse as sp

        vocab = sorted(w for w in idf_table(path) if w not in _stop_words())
        index = {w: i for i, w in enumerate(vocab)}
        turns = _corpus_turns(path)
        self.pairs: Counter[tuple[str, str]] = Counter(
            (" ".join(message), " ".join(answer)) for chat in turns for message, answer in zip(chat, chat[1:])
        )
        ids = [[[index[w] for w in set(turn) if w in index] for turn in chat] for chat in turns]

        def incidence(rows: list[list[int]]) -> sp.csr_matrix:
            cols = np.fromiter((j for row in rows for j in row), dtype=np.int64)
            starts = np.cumsum([0] + [len(row) for row in rows])
            return sp.csr_matrix((np.ones(len(cols), np.float32), cols, starts), shape=(len(rows), len(vocab)))

        messages = incidence([turn for chat in ids for turn in chat[:-1]])
        answers = incidence([turn for chat in ids for turn in chat[1:]])
        self.n = messages.shape[0]
        self.in_message = dict(zip(vocab, np.asarray(messages.sum(0)).ravel().astype(int).tolist()))
        self.in_answer = dict(zip(vocab, np.asarray(answers.sum(0)).ravel().astype(int).tolist()))
        together = (messages.T @ answers).tocoo()
        keep = together.data >= MIN_PAIR_COUNT
        self.together: dict[str, dict[str, int]] = {}
        for i, j, count in zip(together.row[keep].tolist(), together.col[keep].tolist(), together.data[keep].tolist()):
            self.together.setdefault(vocab[i], {})[vocab[j]] = int(count)

    def best_pmi(self, tweet: str, reply: str, answer_words: Sequence[str]) -> list[float]:
        """For each of ``answer_words`` (content words of ``reply``), its best positive PMI in nats with a
        content word of ``tweet``, counted as if this text pair were not in the corpus (0: none)."""
        seen = self.pairs.get((_key(tweet), _key(reply)), 0)
        anchors = [(self.in_message[a] - seen, self.together[a]) for a in set(words(tweet)) if a in self.together]
        n = self.n - seen
        best = []
        for b in answer_words:
            score = 0.0
            for in_message, row in anchors:
                count = row.get(b, 0) - seen
                if count >= MIN_PAIR_COUNT:
                    score = max(score, math.log(count * n / (in_message * (self.in_answer[b] - seen))))
            best.append(score)
        return best


def _key(text: str) -> str:
    return " ".join(words(text))


@cache
def associations(path: str | None = None) -> Associations:
    """The corpus's `Associations`, built once per process (~15 s)."""
    return Associations(path)


@cache
def _vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def has_context(row: Mapping[str, Any]) -> bool:
    """Whether ``row`` carries a valid gold context: every rating a finite number in [1, 10] (not a bool)."""
    ratings = row.get(CONTEXT_FIELD)
    return isinstance(ratings, Mapping) and all(
        isinstance(value, (int, float)) and not isinstance(value, bool) and RATING_MIN <= value <= RATING_MAX
        for value in (ratings.get(name) for name in RATING_NAMES)
    )


def context_of(row: Mapping[str, Any], where: str = "row") -> dict[str, Any]:
    """The gold's context from a data row; a clear error when the row has none (data other than the sample)."""
    ratings = row.get(CONTEXT_FIELD)
    if not has_context(row):
        raise ValueError(
            f"{where}: the gold engagement function needs field {CONTEXT_FIELD!r} with {list(RATING_NAMES)} "
            f"each a number from {RATING_MIN:g} to {RATING_MAX:g} "
            f"(the chat's human ratings, which only prepare.source=sample provides), got {ratings!r}. "
            "With your own data use the judge `learned`, `heuristic` or `llm`."
        )
    return {CONTEXT_FIELD: {n: float(ratings[n]) for n in RATING_NAMES}}


def _trigrams(tokens: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)}


@cache
def _stop_words() -> frozenset[str]:
    # Imported on first use: sklearn adds ~2 s to the start of every stage that imports this module.
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def _scaled(value: float, low: float, high: float) -> float:
    return min(max((value - low) / (high - low), 0.0), 1.0)


def naturalness_factors(tweet: str, reply: str) -> dict[str, float]:
    """The factors of ``naturalness`` (see the module docstring), each in [0, 1]."""
    reply_words = words(reply)
    idf = idf_table()
    visible = re.sub(r"\s+", "", normalize(reply))
    if not reply_words:
        return {"english": 0.0, "fluent": 0.0, "written": 0.0, "not_boilerplate": 1.0, "not_hostile": 1.0,
                "not_copy": 1.0}
    stop_share = sum(w in _stop_words() for w in reply_words) / len(reply_words)
    return {
        "english": _scaled(sum(w in idf for w in reply_words) / len(reply_words), ENGLISH_SHARE_LOW, ENGLISH_SHARE_HIGH),
        "fluent": 1.0 if len(reply_words) < FLUENCY_MIN_WORDS else min(stop_share / FLUENCY_STOP_SHARE, 1.0),
        "written": _scaled(len(ORDINARY.findall(visible)) / max(len(visible), 1), 0.5, 0.8),
        "not_boilerplate": BOILERPLATE_FACTOR if is_boilerplate(reply) else 1.0,
        "not_hostile": HOSTILE_FACTOR if HOSTILE.search(normalize(reply)) else 1.0,
        "not_copy": COPY_FACTOR if copies_tweet(tweet, reply) else 1.0,
    }


def relevance(tweet: str, reply: str) -> float:
    """The ``relevance`` component: how strongly the reply's new content words answer the tweet's."""
    tweet_words = set(words(tweet))
    new = {w for w in words(reply) if w not in tweet_words and w not in _stop_words()}
    if not new:
        return 0.0
    # Sorted: a set's order varies with the process's hash seed, and so would the float sum's last bits.
    scores = associations().best_pmi(tweet, reply, sorted(new))
    return float(np.mean([min(value, PMI_CAP) / PMI_CAP for value in scores]))


def gold_components(tweet: str, reply: str, context: Mapping[str, Any]) -> dict[str, float]:
    """Every component and naturalness factor of the gold (see the module docstring), their
    product ``naturalness`` and the gold itself, ``total``."""
    reply_words, tweet_words = words(reply), words(tweet)
    idf = idf_table()
    if reply_words:
        # A word the corpus has (almost) never seen is filler: it must not buy specificity.
        mean_idf = float(np.mean([idf.get(w, IDF_LOW) for w in reply_words]))
        specificity = _scaled(mean_idf, IDF_LOW, IDF_HIGH)
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
        "relevance": relevance(tweet, reply),
        "specificity": specificity,
        "cues": 0.5 * ("?" in reply) + 0.5 * any(w in SECOND_PERSON for w in reply_words),
        "length": length,
        "novelty": new_share * (1.0 - copied),
        "intensity": abs(_vader().polarity_scores(reply)["compound"]) if reply.strip() else 0.0,
        "ratings": (mean_rating - RATING_MIN) / (RATING_MAX - RATING_MIN),
    }
    factors = naturalness_factors(tweet, reply)
    parts["substance"] = min(parts["relevance"] / SUBSTANCE_RELEVANCE, 1.0)
    parts["naturalness"] = float(np.prod(list(factors.values())))
    parts["total"] = parts["naturalness"] * sum(
        WEIGHTS[name] * parts[name] * (parts["substance"] if name in TEXT_COMPONENTS else 1.0) for name in WEIGHTS
    )
    return parts | factors


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
    if not len(tweets) == len(replies) == len(contexts):
        raise ValueError(f"got {len(tweets)} tweets, {len(replies)} replies and {len(contexts)} contexts")
    return np.array([gold(t, r, c) for t, r, c in zip(tweets, replies, contexts)], dtype=np.float64)


def gold_monitor(completions: Sequence[str], tweet: Sequence[str], **columns: Any) -> list[float]:
    """The gold of GRPO rollouts, called like a TRL reward function with the dataset's columns
    (``chat_ratings`` among them). For the GRPO monitor only: it is logged, never trained on."""
    contexts = [context_of({CONTEXT_FIELD: ratings}, "GRPO rollout") for ratings in columns[CONTEXT_FIELD]]
    return gold_scores(tweet, completions, contexts).tolist()
