"""Set-level advantages against brute-force enumeration, and the edge cases the objectives promise."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from replyrl.metrics.diversity import semantic_diversity
from replyrl.training.set_advantages import marginal_advantages, max_at_k_advantages, polychromic_advantages


def brute_force(values_of_subset, g: int, k: int) -> np.ndarray:
    """The definition, written out: mean f over subsets holding i, minus mean f over all subsets."""
    subsets = list(itertools.combinations(range(g), k))
    f = {s: values_of_subset(list(s)) for s in subsets}
    overall = np.mean(list(f.values()))
    return np.array([np.mean([v for s, v in f.items() if i in s]) - overall for i in range(g)])


@pytest.mark.parametrize(("g", "k"), [(4, 1), (4, 2), (4, 3), (4, 4), (6, 3), (8, 4), (8, 2)])
def test_max_at_k_closed_form_equals_enumeration(g: int, k: int):
    rng = np.random.default_rng(g * 10 + k)
    for rewards in (rng.normal(size=g), rng.integers(0, 3, size=g).astype(float)):  # continuous, and with ties
        expected = brute_force(lambda s: rewards[s].max(), g, k)
        np.testing.assert_allclose(max_at_k_advantages(rewards, k), expected, atol=1e-12)
        np.testing.assert_allclose(marginal_advantages(g, k, lambda s: rewards[s].max()), expected, atol=1e-12)


@pytest.mark.parametrize(("g", "k"), [(4, 2), (5, 3), (6, 4)])
def test_polychromic_equals_enumeration(g: int, k: int):
    rng = np.random.default_rng(k)
    rewards = rng.uniform(size=g)
    emb = rng.normal(size=(g, 5))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    expected = brute_force(lambda s: rewards[s].mean() * semantic_diversity(emb[s]), g, k)
    np.testing.assert_allclose(polychromic_advantages(rewards, emb, k), expected, atol=1e-12)


def test_edge_cases():
    rewards = np.array([0.2, 0.9, 0.4, 0.1])
    # k = 1 is the mean-reward objective.
    np.testing.assert_allclose(max_at_k_advantages(rewards, 1), rewards - rewards.mean())
    # k = G: one subset, the whole group, so nobody contributes more than anybody else.
    np.testing.assert_allclose(max_at_k_advantages(rewards, 4), 0.0, atol=1e-12)
    # All rewards equal: nothing to prefer.
    np.testing.assert_allclose(max_at_k_advantages(np.full(6, 0.7), 3), 0.0, atol=1e-12)
    emb = np.eye(4)  # equidistant replies: with equal rewards too, no reply adds more than another
    np.testing.assert_allclose(polychromic_advantages(np.full(4, 0.5), emb, 2), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="k must be in 1..4"):
        max_at_k_advantages(rewards, 5)
    with pytest.raises(ValueError, match="needs k >= 2"):
        polychromic_advantages(rewards, emb, 1)


def test_max_at_k_credits_the_best_and_flattens_the_rest():
    rewards = np.array([0.1, 0.5, 0.3, 0.9, 0.2, 0.6, 0.4, 0.8])  # distinct, so "best" and "range" are strict
    group = rewards - rewards.mean()
    for k in (2, 4):
        advantages = max_at_k_advantages(rewards, k)
        assert advantages.argmax() == rewards.argmax()
        assert np.all(np.diff(advantages[np.argsort(rewards)]) >= 0)  # a better reply never gets less
        # Below the k-th best, differences matter less than under the mean-reward objective (a set needs
        # one good reply, not k mediocre ones): the advantages there are squeezed together.
        below = rewards < np.sort(rewards)[-k]
        assert np.ptp(advantages[below]) < np.ptp(group[below])
        assert abs(advantages.sum()) < 1e-12  # baseline-subtracted: zero-sum over the group
