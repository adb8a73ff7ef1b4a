"""Diversity of one prompt's set of replies. Pure functions, no I/O."""

from __future__ import annotations

import numpy as np


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
