"""Set-level advantages against brute-force enumeration, and the edge cases the objectives promise."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest

from replyrl.metrics.diversity import semantic_diversity
from replyrl.training.set_advantages import (
    marginal_advantages,
    max_at_k_advantages,
    max_at_k_value,
    pkpo_advantages,
    polychromic_advantages,
    set_objective_advantages,
    verl_passk_advantages,
)


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


# ---- the max_at_k estimators: marginal, PKPO's s^(loo-1), verl's grpo_passk

GROUPS = [(g, k) for g in range(4, 9) for k in range(1, g)]  # every k a run may use (1..G-1), G = 4..8


def reward_vectors(g: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(100 * g + k)
    return rng.normal(size=g), rng.integers(0, 3, size=g).astype(float)  # continuous, and with ties


@pytest.mark.parametrize(("g", "k"), GROUPS + [(g, g) for g in range(4, 9)])
def test_max_at_k_value_is_the_mean_max_over_subsets(g: int, k: int):
    for rewards in reward_vectors(g, k):
        expected = np.mean([rewards[list(s)].max() for s in itertools.combinations(range(g), k)])
        assert max_at_k_value(rewards, k) == pytest.approx(expected, abs=1e-12)


def loo_baseline(rewards: np.ndarray, subset: tuple[int, ...], j: int) -> float:
    """PKPO's Eq. 33 baseline for member j of a subset: the best of its other members; at k = 1 (no
    others) replyrl's convention, the mean of the rest of the group (RLOO)."""
    others = [i for i in subset if i != j]
    return rewards[others].max() if others else np.delete(rewards, j).mean()


@pytest.mark.parametrize(("g", "k"), GROUPS)
def test_pkpo_is_the_subset_estimator_minus_its_leave_one_out_baselines(g: int, k: int):
    # sum_i s_i grad log p_i must equal, term by term, the average over k-subsets S of
    # max(S) sum_{j in S} grad log p_j minus each member's baseline; random stand-ins for grad log p_j
    # (3 dimensions) make the check hold for any gradients, not just one.
    grad_log_p = np.random.default_rng(g + 10 * k).normal(size=(g, 3))
    for rewards in reward_vectors(g, k):
        expected = np.zeros(3)
        for s in itertools.combinations(range(g), k):
            expected += rewards[list(s)].max() * grad_log_p[list(s)].sum(axis=0)
            expected -= sum(loo_baseline(rewards, s, j) * grad_log_p[j] for j in s)
        np.testing.assert_allclose(pkpo_advantages(rewards, k) @ grad_log_p, expected / comb(g, k), atol=1e-12)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def expected_update(values: np.ndarray, logits: np.ndarray, n: int, estimator) -> np.ndarray:
    """E[sum_i A_i grad log p(x_i)] over n i.i.d. draws of a softmax policy over ``values``, exactly: a sum
    over all len(values)^n draws (the gradient w.r.t. the logits of log p(x) is onehot(x) - p)."""
    probs = softmax(logits)
    total = np.zeros(len(values))
    for draw in itertools.product(range(len(values)), repeat=n):
        advantages = estimator(values[list(draw)])
        grad_log_p = np.eye(len(values))[list(draw)] - probs
        total += np.prod(probs[list(draw)]) * advantages @ grad_log_p
    return total


def max_at_k_gradient(values: np.ndarray, logits: np.ndarray, k: int) -> np.ndarray:
    """d E[max of k draws] / d logits, by central differences of its exact value (a sum over all k-draws)."""
    def value(theta: np.ndarray) -> float:
        probs = softmax(theta)
        return sum(np.prod(probs[list(d)]) * values[list(d)].max()
                   for d in itertools.product(range(len(values)), repeat=k))

    steps = np.eye(len(logits)) * 1e-5
    return np.array([(value(logits + h) - value(logits - h)) / 2e-5 for h in steps])


@pytest.mark.parametrize(("n", "k"), [(4, 1), (4, 2), (4, 3), (4, 4), (5, 2), (5, 3), (5, 5)])
def test_the_estimators_are_unbiased_max_at_k_gradients_up_to_their_factor(n: int, k: int):
    # A softmax policy over 4 replies, two of them tied, so draws hold ties too.
    values, logits = np.array([0.0, 0.6, 0.6, 1.0]), np.array([0.3, -0.2, 0.1, -0.5])
    truth = max_at_k_gradient(values, logits, k)
    # PKPO: unbiased for every k (at k = 1 with the RLOO baseline).
    np.testing.assert_allclose(expected_update(values, logits, n, lambda r: pkpo_advantages(r, k)), truth, atol=1e-8)
    # Marginal: its baseline, the group's max@k estimate, holds x_i too: in expectation the update is
    # (n/k - 1) x the gradient (n/k from crediting each reply with the mean of its C(n-1, k-1) subsets,
    # minus 1 from the baseline), the right direction, and 0 at k = n.
    marginal = expected_update(values, logits, n, lambda r: max_at_k_advantages(r, k))
    np.testing.assert_allclose(marginal, (n / k - 1) * truth, atol=1e-8)
    if k == n:  # verl: the group's max@n, whatever k is
        np.testing.assert_allclose(expected_update(values, logits, n, verl_passk_advantages), truth, atol=1e-8)


def test_verl_passk_credits_only_the_best_reply():
    rewards = np.array([0.2, 0.9, 0.4, 0.7])
    np.testing.assert_allclose(verl_passk_advantages(rewards), [0.0, 0.9 - 0.7, 0.0, 0.0])
    # A tie at the top: best minus second best is 0, for whichever of the two verl's topk picks.
    np.testing.assert_allclose(verl_passk_advantages(np.array([0.9, 0.1, 0.9, 0.3])), 0.0)
    with pytest.raises(ValueError, match="at least 2 replies"):
        verl_passk_advantages(np.array([0.5]))


@pytest.mark.parametrize("g", range(4, 9))
def test_verl_passk_is_pkpo_at_k_equals_the_group_size(g: int):
    for rewards in reward_vectors(g, g):
        np.testing.assert_allclose(verl_passk_advantages(rewards), pkpo_advantages(rewards, g), atol=1e-12)


def test_k_1_reductions():
    rewards = np.array([0.2, 0.9, 0.4, 0.1, 0.6])
    centred = rewards - rewards.mean()
    # max@1 is the mean reward: marginal is r - mean(r), PKPO the leave-one-out (RLOO) advantage, the
    # same up to 1/(G-1); so after the trainer's rescaling both are plain GRPO.
    np.testing.assert_allclose(max_at_k_advantages(rewards, 1), centred)
    loo = np.array([(r - np.delete(rewards, i).mean()) / len(rewards) for i, r in enumerate(rewards)])
    np.testing.assert_allclose(pkpo_advantages(rewards, 1), loo)
    np.testing.assert_allclose(pkpo_advantages(rewards, 1), centred / (len(rewards) - 1))
    # verl has no k: at every k it credits the best with best - second best (max@G).
    for k in (1, 2, 4):
        np.testing.assert_allclose(set_objective_advantages("max_at_k", rewards[None], k, estimator="verl_passk")[0],
                                   [0.0, 0.9 - 0.6, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("estimator", ["marginal", "pkpo", "verl_passk"])
def test_every_estimator_credits_the_best_most_and_never_a_worse_reply_more(estimator: str):
    rewards = np.array([0.1, 0.5, 0.3, 0.9, 0.2, 0.6, 0.4, 0.8])
    for k in (2, 4):
        advantages = set_objective_advantages("max_at_k", rewards[None], k, estimator=estimator)[0]
        assert advantages.argmax() == rewards.argmax()
        assert np.all(np.diff(advantages[np.argsort(rewards)]) >= 0)
    with pytest.raises(ValueError, match="unknown max_at_k estimator"):
        set_objective_advantages("max_at_k", rewards[None], 2, estimator="rloo")


def test_pkpo_never_pushes_a_reply_down_and_is_not_zero_sum():
    # s^(loo-1) is >= 0 (a reply never lowers a subset's max), 0 for the worst reply, and sums to the mean
    # over k-subsets of (max - second max), not to 0 as the marginal advantages do.
    rewards = np.array([0.1, 0.5, 0.3, 0.9, 0.2, 0.6, 0.4, 0.8])
    s = pkpo_advantages(rewards, 3)
    gaps = [np.diff(np.sort(rewards[list(c)])[-2:])[0] for c in itertools.combinations(range(8), 3)]
    assert s.min() == 0.0 == s[rewards.argmin()] and s.sum() == pytest.approx(np.mean(gaps))
