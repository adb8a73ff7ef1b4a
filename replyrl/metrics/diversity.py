"""Diversity of one prompt's set of replies. Pure functions, no I/O.

Every measure here looks at one prompt's samples only; evaluation averages it over prompts, so a
model that says the same thing to every tweet is not mistaken for a diverse one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a


def pairwise_cosine_distances(embeddings: np.ndarray) -> np.ndarray:
    """(n, n) matrix of ``1 - cos`` between L2-normalised rows; the diagonal is 0."""
    emb = np.asarray(embeddings, dtype=np.float64)
    dist = 1.0 - emb @ emb.T
    np.fill_diagonal(dist, 0.0)
    return dist


def semantic_diversity(embeddings: np.ndarray) -> float:
    """Mean pairwise cosine distance over the n(n-1)/2 distinct pairs; 0 for fewer than two replies."""
    n = len(embeddings)
    if n < 2:
        return 0.0
    return float(pairwise_cosine_distances(embeddings).sum() / (n * (n - 1)))


def distance_to_others(embeddings: np.ndarray) -> np.ndarray:
    """Each reply's mean cosine distance to the other replies of its set (0 for a set of one)."""
    n = len(embeddings)
    if n < 2:
        return np.zeros(n)
    return pairwise_cosine_distances(embeddings).sum(axis=1) / (n - 1)


EMPTY_REPLY = "emptyreply"  # stands in for a blank reply in Self-BLEU (one token under any tokenizer)


def self_bleu(replies: Sequence[str]) -> float:
    """Mean sentence BLEU (sacrebleu, 0-100) of each reply against the other replies of its set.

    100 means every reply repeats the others; lower is more diverse. Case-insensitive ("Great" repeats
    "great"). An empty or whitespace-only reply is the token `EMPTY_REPLY`: two empty replies repeat
    each other (a model that says nothing is not diverse), an empty and a non-empty one share nothing.

    >>> round(self_bleu(["The same words here", "the same words HERE"]))
    100
    >>> round(self_bleu(["", " "])), round(self_bleu(["", "something else"]))
    (100, 0)
    """
    if len(replies) < 2:
        raise ValueError(f"Self-BLEU needs at least two replies, got {len(replies)}")
    replies = [reply if reply.strip() else EMPTY_REPLY for reply in replies]
    # effective_order: short replies lack 4-grams, which would otherwise zero every score.
    bleu = BLEU(lowercase=True, effective_order=True)
    scores = [bleu.sentence_score(r, [o for j, o in enumerate(replies) if j != i]).score for i, r in enumerate(replies)]
    return float(min(np.mean(scores), 100.0))


def distinct_n(replies: Sequence[str], n: int) -> float:
    """Distinct-n: unique n-grams / all n-grams over the set (lower-cased, sacrebleu 13a tokens).

    >>> distinct_n(["a b", "a b"], 1), distinct_n(["a b", "c d"], 2)
    (0.5, 1.0)
    """
    tokenize = Tokenizer13a()
    ngrams = []
    for reply in replies:
        tokens = tokenize(reply.lower()).split()
        ngrams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(ngrams)) / len(ngrams) if ngrams else 0.0
