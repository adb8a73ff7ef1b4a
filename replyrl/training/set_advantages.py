"""Set-level GRPO advantages: credit each completion of a group with its share of a set objective.

For a set function ``f`` over the size-``k`` subsets ``S`` of a prompt's group of ``G`` completions,
the objective is ``E_S[f(S)]`` and completion ``i``'s advantage is its marginal contribution

    A_i = mean_{S containing i} f(S) - mean_S f(S)

(the "marginal advantage" of Hamid et al. 2025, "Polychromic Objectives for Reinforcement Learning",
arXiv 2509.25424). Objectives:

- ``max_at_k``: ``f(S) = max of the rewards in S``, the unbiased max@k objective of PKPO (Walder &
  Karkhanis 2025, arXiv 2505.15201); on 0/1 pass indicators it is Pass@k (Chen et al. 2025, arXiv
  2508.10751). Closed form: with the rewards sorted ascending, the i-th smallest (1-based) is the
  maximum of C(i-1, k-1) of the C(G, k) subsets.
- ``polychromic``: ``f(S) = mean reward of S x diversity of S`` (mean pairwise cosine distance of the
  completions' embeddings), the set objective of the polychromic SFT; computed by enumeration.

With k = 1 ``max_at_k`` reduces to ``r_i - mean(r)`` (polychromic needs k >= 2: a single reply has no
diversity); with k = G every subset is the whole group and every advantage is 0. The advantages sum to
zero over a group and are monotone in the reward for ``max_at_k``. Pure numpy, no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from math import comb

import numpy as np

from replyrl.metrics.diversity import semantic_diversity

SetFunction = Callable[[np.ndarray], float]  # indices of a subset -> f(subset)


def marginal_advantages(group_size: int, k: int, f: SetFunction) -> np.ndarray:
    """``A_i = mean_{S ∋ i} f(S) - mean_S f(S)`` by enumerating all C(G, k) subsets (exact, for small G)."""
    if not 1 <= k <= group_size:
        raise ValueError(f"k must be in 1..{group_size} (the group size), got {k}")
    subsets = [np.array(s) for s in itertools.combinations(range(group_size), k)]
    values = np.array([f(s) for s in subsets])
    with_i = np.zeros(group_size)
    for s, value in zip(subsets, values):
        with_i[s] += value
    return with_i / comb(group_size - 1, k - 1) - values.mean()


def _comb(n: int, r: int) -> int:
    """C(n, r), 0 where no such subset exists (n < 0 or r outside 0..n)."""
    return comb(n, r) if n >= 0 and 0 <= r <= n else 0


def max_at_k_advantages(rewards: np.ndarray, k: int) -> np.ndarray:
    """Marginal advantages of ``f(S) = max(rewards[S])`` in closed form, O(G log G)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    g = len(rewards)
    if not 1 <= k <= g:
        raise ValueError(f"k must be in 1..{g} (the group size), got {k}")
    order = np.argsort(rewards, kind="stable")
    r = rewards[order]  # ascending; ties give the same maxima whichever of them sorts first
    rank = range(1, g + 1)
    # The i-th smallest is the max of C(i-1, k-1) subsets of size k.
    as_max = np.array([_comb(i - 1, k - 1) for i in rank], dtype=np.float64)
    mean_all = float(r @ as_max) / comb(g, k)
    # Subsets that contain the i-th smallest: it is their max C(i-1, k-1) times; the j-th smallest
    # (j > i) is their max C(j-2, k-2) times (i and j fixed, the other k-2 below j).
    above = np.array([_comb(j - 2, k - 2) for j in rank], dtype=np.float64) * r
    above_sum = np.concatenate([np.cumsum(above[::-1])[::-1][1:], [0.0]])  # sum over j > i
    with_i = (r * as_max + above_sum) / comb(g - 1, k - 1)
    advantages = np.empty(g)
    advantages[order] = with_i - mean_all
    return advantages


def set_score(quality: np.ndarray, embeddings: np.ndarray) -> float:
    """The polychromic set function ``f(S) = mean(quality) x semantic_diversity(S)``; 0 for an empty set."""
    return float(np.mean(quality)) * semantic_diversity(embeddings) if len(quality) else 0.0


def polychromic_advantages(rewards: np.ndarray, embeddings: np.ndarray, k: int) -> np.ndarray:
    """Marginal advantages of the polychromic set function over the size-``k`` subsets."""
    rewards = np.asarray(rewards, dtype=np.float64)
    if k < 2:
        raise ValueError(f"the polychromic objective needs k >= 2 (diversity is defined on pairs), got {k}")
    return marginal_advantages(len(rewards), k, lambda s: set_score(rewards[s], embeddings[s]))


SET_OBJECTIVES = ("max_at_k", "polychromic")


def set_objective_advantages(
    objective: str, rewards: np.ndarray, k: int, embeddings: np.ndarray | None = None
) -> np.ndarray:
    """Advantages of ``objective`` for every group: ``rewards`` is (groups, G), ``embeddings`` (groups, G, d)."""
    if objective == "max_at_k":
        return np.stack([max_at_k_advantages(r, k) for r in rewards])
    if objective == "polychromic":
        if embeddings is None:
            raise ValueError("the polychromic objective needs the completions' embeddings")
        return np.stack([polychromic_advantages(r, e, k) for r, e in zip(rewards, embeddings)])
    raise ValueError(f"unknown set objective {objective!r}; choose one of {SET_OBJECTIVES}")
