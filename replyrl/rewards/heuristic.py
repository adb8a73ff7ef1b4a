"""The original recipe's heuristic reward, batched, with every component exposed for logging.

Components (each in [0, 1]) and their default weights from `params.yaml: reward.heuristic`:

=================  ======  =====================================================================
component          weight  score
=================  ======  =====================================================================
relevance          0.30    cosine of the tweet and reply encoder embeddings (negative counts as 0)
length             0.15    1.0 for a reply of 50-150 characters, else 0.6
sentiment          0.15    ``1 - |p(tweet) - p(reply)| / 2`` with TextBlob polarity p in [-1, 1]
unique_words       0.10    distinct words / words in the reply (0 for a reply without words)
punctuation        0.10    1.0 if the share of ``!?.`` among the reply's characters is < 0.1, else 0.5
=================  ======  =====================================================================

and two multipliers of the weighted sum:

=================  ======  =====================================================================
multiplier         value   applies to
=================  ======  =====================================================================
generic            0.5     a reply under 30 characters that contains a generic phrase (thanks,
                           agree, this, nice, great) as a whole word
echo               0.25    a reply that echoes its tweet (`echo_multipliers`): it repeats 4
                           consecutive words of it, or 65% of its words occur in the tweet
=================  ======  =====================================================================

``total = generic_multiplier * echo_multiplier * sum(weight * component)``, each multiplier 1.0 where
it does not apply. The original recipe counts the generic multiplier as its "20% generic" part, so
the total lies in [0, 0.8]: the weights sum to 0.8 and no reply can earn the missing 0.2.

The echo multiplier is not in the original recipe: a copy of the tweet maximises relevance and
sentiment alignment (0.75 on average over 300 sample tweets, against 0.52 for their human replies),
and GRPO learns to echo. Word measures (`replyrl.text`) catch a copy however it is cut, reordered or
extended. Share of those 300 tweets on which each kind of echo beats the tweet's own human reply:

=========================  ==================================  ===============================
echo                       before: difflib ratio >= 0.8, x0.5  now: word measures, x0.25
=========================  ==================================  ===============================
the tweet                  4%                                  2.7%
tweet + " What do you..."  31%                                 2.0%
first half of its words    83%                                 1.7%
first 60% of its words     86%                                 2.3%
its words shuffled         91%                                 2.7%
one word changed           15%                                 5.0%
=========================  ==================================  ===============================

An echo scores at most 0.25 x 0.8 = 0.2, the lowest score of those human replies. What still wins
is a changed word in a 1-2 word tweet ("ok" -> "banana" is no echo) or an echo against a human reply
that is an echo itself (`tests/rewards/test_heuristic.py` checks <= 10% per kind). 2.7% of the human replies count as echoes (0.3% before): they quote 4 words of a
long tweet, or two thirds of their words are the tweet's ("hahaha fuzzy beets"); a reply like "yes
i do love dogs" to "do you love dogs?" (3 of 5 words) is not one. ``echo_multiplier: 1.0`` restores
the recipe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from sentence_transformers import SentenceTransformer
from textblob import TextBlob

from replyrl.configs.reward import HeuristicRewardConfig
from replyrl.models.encoder import encode_pairs
from replyrl.text import copies_tweet, word_overlap

# TextBlob's own tokenizer needs NLTK data that cannot be downloaded offline; a regex word is
# enough to count distinct words, and keeps contractions ("don't") whole.
WORD = re.compile(r"[\w']+")


def relevance_scores(
    encoder: SentenceTransformer, tweets: Sequence[str], replies: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """Cosine similarity of each pair's embeddings, clipped at 0 so the component stays in [0, 1]."""
    tweet_emb, reply_emb = encode_pairs(encoder, tweets, replies, batch_size)
    return np.clip(np.sum(tweet_emb * reply_emb, axis=1, dtype=np.float64), 0.0, 1.0)


def length_scores(replies: Sequence[str], min_chars: int, max_chars: int, outside_score: float) -> np.ndarray:
    """1.0 when ``min_chars <= len(reply) <= max_chars``, else ``outside_score``."""
    lengths = np.array([len(r) for r in replies])
    return np.where((lengths >= min_chars) & (lengths <= max_chars), 1.0, outside_score)


def sentiment_alignment(tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray:
    """``1 - |polarity(tweet) - polarity(reply)| / 2``: 1 for equal polarity, 0 for opposite extremes."""
    polarity = {text: TextBlob(text).sentiment.polarity for text in {*tweets, *replies}}
    return np.array([1.0 - abs(polarity[t] - polarity[r]) / 2.0 for t, r in zip(tweets, replies, strict=True)])


def unique_word_ratio(replies: Sequence[str]) -> np.ndarray:
    """Distinct (lower-cased) words over all words of each reply; 0 for a reply with no words."""
    ratios = []
    for reply in replies:
        words = WORD.findall(reply.lower())
        ratios.append(len(set(words)) / len(words) if words else 0.0)
    return np.array(ratios, dtype=np.float64)


def punctuation_scores(replies: Sequence[str], chars: str, max_ratio: float, over_score: float) -> np.ndarray:
    """1.0 when punctuation characters make up less than ``max_ratio`` of the reply, else ``over_score``."""
    ratios = np.array([sum(reply.count(c) for c in chars) / max(len(reply), 1) for reply in replies])
    return np.where(ratios < max_ratio, 1.0, over_score)


def generic_multipliers(
    replies: Sequence[str], phrases: Sequence[str], max_chars: int, multiplier: float
) -> np.ndarray:
    """``multiplier`` for a reply shorter than ``max_chars`` containing a generic phrase, else 1.0.

    Phrases match as whole words, so "this" flags "Love this!" but not "thistle".
    """
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(p.lower()) for p in phrases) + r")\b")
    return np.array([multiplier if len(r) < max_chars and pattern.search(r.lower()) else 1.0 for r in replies])


def echo_multipliers(
    tweets: Sequence[str], replies: Sequence[str], min_copied_words: int, max_word_overlap: float, multiplier: float
) -> np.ndarray:
    """``multiplier`` for a reply that echoes its tweet, else 1.0. An echo repeats ``min_copied_words``
    consecutive words of the tweet (all of a shorter tweet's words: `text.copies_tweet`), or at least
    ``max_word_overlap`` of its words occur in the tweet (`text.word_overlap`: a shuffled or cut copy).

    >>> echo_multipliers(["do you love dogs?"] * 2, ["dogs love you", "yes i do love dogs"], 4, 0.65, 0.25)
    array([0.25, 1.  ])
    """
    return np.array([
        multiplier if copies_tweet(t, r, min_copied_words) or word_overlap(t, r) >= max_word_overlap else 1.0
        for t, r in zip(tweets, replies, strict=True)
    ])


class HeuristicReward:
    """Callable heuristic reward: ``reward(tweets, replies) -> float array`` in [0, ``config.max_score``].

    The encoder is loaded once by the caller and each call embeds its whole batch at once.
    """

    name = "heuristic"

    def __init__(self, config: HeuristicRewardConfig, encoder: SentenceTransformer, batch_size: int = 64) -> None:
        self.config = config
        self.encoder = encoder
        self.batch_size = batch_size

    def __call__(self, tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        return self.components(tweets, replies)["total"]

    def components(self, tweets: Sequence[str], replies: Sequence[str]) -> dict[str, np.ndarray]:
        """Each component's unweighted score per pair, the generic multiplier, and the weighted total."""
        if len(tweets) != len(replies):
            raise ValueError(f"got {len(tweets)} tweets but {len(replies)} replies; they must pair up")
        c = self.config
        parts = {
            "relevance": relevance_scores(self.encoder, tweets, replies, self.batch_size),
            "length": length_scores(replies, c.length_min_chars, c.length_max_chars, c.length_outside_score),
            "sentiment": sentiment_alignment(tweets, replies),
            "unique_words": unique_word_ratio(replies),
            "punctuation": punctuation_scores(
                replies, c.punctuation_chars, c.punctuation_max_ratio, c.punctuation_over_score
            ),
        }
        weighted = sum(getattr(c, f"{name}_weight") * score for name, score in parts.items())
        generic = generic_multipliers(replies, c.generic_phrases, c.generic_max_chars, c.generic_multiplier)
        echo = echo_multipliers(tweets, replies, c.echo_min_copied_words, c.echo_max_word_overlap, c.echo_multiplier)
        return {**parts, "generic_multiplier": generic, "echo_multiplier": echo, "total": generic * echo * weighted}
