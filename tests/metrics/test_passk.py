"""Pass@k against brute force: the fraction of k-subsets of the n samples that contain a pass."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest

from replyrl.metrics.passk import pass_at_k, pass_at_k_per_prompt


def brute_force(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_matches_enumeration_of_all_k_subsets(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12), (n, c, k)


def test_matches_binomial_form_for_large_n() -> None:
    # n = 200 is too many subsets to enumerate; the closed form with exact integers still works.
    for c, k in [(1, 1), (3, 10), (50, 100), (150, 10)]:
        assert pass_at_k(200, c, k) == pytest.approx(1 - comb(200 - c, k) / comb(200, k), rel=1e-9)


def test_edge_cases() -> None:
    assert pass_at_k(10, 0, 10) == 0.0  # nothing passes
    assert pass_at_k(10, 10, 1) == 1.0  # everything passes
    assert pass_at_k(10, 7, 5) == 1.0  # n - c < k: every 5-subset holds a pass
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)  # pass@1 is the pass rate


def test_rejects_impossible_inputs() -> None:
    with pytest.raises(ValueError, match="more samples"):
        pass_at_k(5, 1, 10)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


def test_per_prompt_counts_each_row() -> None:
    passed = np.array([[True, False, False, False], [False] * 4, [True] * 4])
    np.testing.assert_allclose(pass_at_k_per_prompt(passed, 2), [0.5, 0.0, 1.0])
