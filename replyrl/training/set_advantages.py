"""Set-level GRPO advantages: credit each completion of a group with its share of a set objective.

For a set function ``f`` over the size-``k`` subsets ``S`` of a prompt's group of ``G`` completions,
the objective is ``E_S[f(S)]`` and completion ``i``'s advantage is, by default, its marginal contribution

    A_i = mean_{S containing i} f(S) - mean_S f(S)

(the "marginal advantage" of Hamid et al. 2025, "Polychromic Objectives for Reinforcement Learning",
arXiv 2509.25424). Objectives:

- ``max_at_k``: ``f(S) = max of the rewards in S``, the unbiased max@k objective of PKPO (Walder &
  Karkhanis 2025, arXiv 2505.15201); on 0/1 pass indicators it is Pass@k (Chen et al. 2025, arXiv
  2508.10751). Closed form: with the rewards sorted ascending, the i-th smallest (1-based) is the
  maximum of C(i-1, k-1) of the C(G, k) subsets. Three estimators (``MAX_AT_K_ESTIMATORS``): the marginal
  advantage above, PKPO's ``s^(loo-1)`` (`pkpo_advantages`) and verl's ``grpo_passk``
  (`verl_passk_advantages`).
- ``polychromic``: ``f(S) = mean reward of S x diversity of S`` (mean pairwise cosine distance of the
  completions' embeddings), the set objective of the polychromic SFT; computed by enumeration.

With k = 1 ``max_at_k`` reduces to ``r_i - mean(r)`` (polychromic needs k >= 2: a single reply has no
diversity); with k = G every subset is the whole group and every marginal advantage is 0. The marginal
advantages sum to zero over a group and are monotone in the reward for ``max_at_k``. Pure numpy, no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from math import comb

import numpy as np

from replyrl.metrics.diversity import semantic_diversity

SetFunction = Callable[[np.ndarray], float]  # indices of a subset -> f(subset)


def _check_k(group_size: int, k: int) -> None:
    if not 1 <= k <= group_size:
        raise ValueError(f"k must be in 1..{group_size} (the group size), got {k}")


def marginal_advantages(group_size: int, k: int, f: SetFunction) -> np.ndarray:
    """``A_i = mean_{S ∋ i} f(S) - mean_S f(S)`` by enumerating all C(G, k) subsets (exact, for small G)."""
    _check_k(group_size, k)
    subsets = [np.array(s) for s in itertools.combinations(range(group_size), k)]
    values = np.array([f(s) for s in subsets])
    with_i = np.zeros(group_size)
    for s, value in zip(subsets, values):
        with_i[s] += value
    return with_i / comb(group_size - 1, k - 1) - values.mean()


def _comb(n: int, r: int) -> int:
    """C(n, r), 0 where no such subset exists (n < 0 or r outside 0..n)."""
    return comb(n, r) if n >= 0 and 0 <= r <= n else 0


def _times_max(group_size: int, k: int) -> np.ndarray:
    """For each rank i = 1..G (ascending), C(i-1, k-1): of the size-k subsets, how many have the i-th
    smallest reward as their max (it and k-1 below it); all 0 for k = 0 (no subset has a max)."""
    return np.array([_comb(i - 1, k - 1) for i in range(1, group_size + 1)], dtype=np.float64)


def _sorted(rewards: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The rewards as float64 in ascending order, and that order; ties give the same maxima (and the same
    estimates) whichever of them sorts first."""
    rewards = np.asarray(rewards, dtype=np.float64)
    _check_k(len(rewards), k)
    order = np.argsort(rewards, kind="stable")
    return rewards[order], order


def max_at_k_value(rewards: np.ndarray, k: int) -> float:
    """The unbiased max@k estimate of a group: the mean over its k-subsets of their max.

    PKPO's Eq. 12, ``rho^(g)(n, k) = sum_i C(i-1, k-1) g_(i) / C(n, k)`` (g_(i) the i-th smallest).

    >>> max_at_k_value(np.array([0.0, 1.0, 3.0]), 2)  # pairs' maxima 1, 3, 3
    2.3333333333333335
    """
    r, _ = _sorted(rewards, k)
    return float(r @ _times_max(len(r), k)) / comb(len(r), k)


def max_at_k_advantages(rewards: np.ndarray, k: int) -> np.ndarray:
    """Marginal advantages of ``f(S) = max(rewards[S])`` in closed form, O(G log G).

    In expectation ``sum_i A_i grad log p(x_i) = (G/k - 1) grad max@k`` (tested): G/k from crediting each
    reply with the mean of the subsets that hold it, minus 1 from the baseline, the group's own max@k
    estimate, which depends on x_i too. So it estimates PKPO's gradient up to a factor (0 at k = G).
    """
    r, order = _sorted(rewards, k)
    g = len(r)
    # Subsets that contain the i-th smallest: it is their max C(i-1, k-1) times; the j-th smallest
    # (j > i) is their max C(j-2, k-2) times (i and j fixed, the other k-2 below j).
    above = np.array([_comb(j - 2, k - 2) for j in range(1, g + 1)], dtype=np.float64) * r
    above_sum = np.concatenate([np.cumsum(above[::-1])[::-1][1:], [0.0]])  # sum over j > i
    with_i = (r * _times_max(g, k) + above_sum) / comb(g - 1, k - 1)
    advantages = np.empty(g)
    advantages[order] = with_i - max_at_k_value(rewards, k)
    return advantages


def pkpo_advantages(rewards: np.ndarray, k: int) -> np.ndarray:
    """PKPO's transformed rewards ``s^(loo-1)`` (Walder & Karkhanis 2025, arXiv 2505.15201, Eq. 33).

    ``sum_i s_i grad log p(x_i)`` is an unbiased estimate of the gradient of max@k = E[max of k samples']
    rewards]: Eq. 19's estimator averages, over the C(n, k) subsets I, ``max(g_I) sum_{i in I} grad log
    p(x_i)``, and Eq. 33 gives each member i of I the baseline ``max(g_{I minus i})``, the best of I's other
    k-1 members, which does not depend on x_i (so the estimate stays unbiased):

        s_i = 1/C(n, k) sum_{|I| = k, i in I} [max(g_I) - max(g_{I minus i})]

    Only the subsets where i is the top count, so with g_(i) the i-th smallest (1-based)
    ``s_(i) = (C(i-1, k-1) g_(i) - sum_{j < i} C(j-1, k-2) g_(j)) / C(n, k)``: for k >= 2 every s_i >= 0,
    the lowest reward gets 0, and unlike the marginal advantage the s_i do not sum to 0 (their sum is the
    mean over the k-subsets of max - second max). At k = n this is verl's ``grpo_passk``
    (`verl_passk_advantages`).

    k = 1 (max@1 is the mean reward): Eq. 33's baseline would be a max over k - 1 = 0 others, which is
    undefined (the paper's reference code divides by k - 1). Here the baseline is the mean of the other n - 1
    rewards (RLOO, Kool et al. 2019), at Eq. 19's scale 1/n: ``s_i = (g_i - mean_{j != i} g_j) / n
    = (g_i - mean(g)) / (n - 1)``, so with k = 1 pkpo, like the marginal advantage, is r - mean(r) up to
    one factor.
    """
    r, order = _sorted(rewards, k)
    n = len(r)
    if k == 1:
        transformed = (r - r.mean()) / (n - 1)
    else:
        below = np.concatenate([[0.0], np.cumsum(_times_max(n, k - 1) * r)[:-1]])  # sum over j < i
        transformed = (_times_max(n, k) * r - below) / comb(n, k)
    advantages = np.empty(n)
    advantages[order] = transformed
    return advantages


def verl_passk_advantages(rewards: np.ndarray) -> np.ndarray:
    """verl's Pass@k outcome advantage: the group's best reply gets ``r_max - r_second``, the others 0.

    As ``compute_grpo_passk_outcome_advantage`` (advantage estimator ``grpo_passk``) in volcengine/verl's
    ``verl/trainer/ppo/core_algos.py`` computes it, after Tang et al. 2025 (arXiv 2503.19595). It has no
    k: it is PKPO's Eq. 33 at k = n (one subset, the whole group), the unbiased max@n gradient. On tied
    best rewards every advantage is 0, whichever verl's ``topk`` picks.

    Std normalisation: with ``algorithm.norm_adv_by_std_in_grpo`` (verl's default, true) verl divides the
    difference by the group's reward std (``torch.std``, n - 1) + 1e-6. Here the difference is returned
    raw and ``ReplyGRPOTrainer._set_advantages`` scales it as it scales every max_at_k estimator: (1) by
    ``grpo.scale_rewards``, where ``group`` is verl's division (with TRL's 1e-4 for 1e-6), ``none`` is
    ``norm_adv_by_std_in_grpo: false`` and ``batch`` has no verl counterpart; then (2) by one positive
    factor for the whole batch (to plain GRPO's RMS), which verl does not apply: it changes the step's
    size, not its direction.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    if len(rewards) < 2:
        raise ValueError(f"verl_passk needs at least 2 replies per group, got {len(rewards)}")
    advantages = np.zeros(len(rewards))
    best = int(np.argmax(rewards))
    advantages[best] = rewards[best] - np.sort(rewards)[-2]
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
MAX_AT_K_ESTIMATORS = ("marginal", "pkpo", "verl_passk")


def _max_at_k_group(estimator: str, rewards: np.ndarray, k: int) -> np.ndarray:
    if estimator == "marginal":
        return max_at_k_advantages(rewards, k)
    if estimator == "pkpo":
        return pkpo_advantages(rewards, k)
    if estimator == "verl_passk":
        return verl_passk_advantages(rewards)  # always the whole group: k plays no part
    raise ValueError(f"unknown max_at_k estimator {estimator!r}; choose one of {MAX_AT_K_ESTIMATORS}")


def set_objective_advantages(
    objective: str, rewards: np.ndarray, k: int, embeddings: np.ndarray | None = None, estimator: str = "marginal"
) -> np.ndarray:
    """Advantages of ``objective`` for every group: ``rewards`` is (groups, G), ``embeddings`` (groups, G, d);
    ``estimator`` is max_at_k's (one of ``MAX_AT_K_ESTIMATORS``)."""
    if objective == "max_at_k":
        return np.stack([_max_at_k_group(estimator, r, k) for r in rewards])
    if objective == "polychromic":
        if embeddings is None:
            raise ValueError("the polychromic objective needs the completions' embeddings")
        return np.stack([polychromic_advantages(r, e, k) for r, e in zip(rewards, embeddings)])
    raise ValueError(f"unknown set objective {objective!r}; choose one of {SET_OBJECTIVES}")
