"""The statistics wrappers give exactly scipy's numbers, plus a hand-checked effect size and Holm."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from replyrl.metrics.stats import adjust_pvalues, bootstrap_ci, cohens_d, compare


def test_compare_equals_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 0.2, 40), rng.normal(0.4, 0.2, 40)
    result = compare(a, b)
    mw = stats.mannwhitneyu(a, b, alternative="two-sided")
    wx = stats.wilcoxon(a, b, alternative="two-sided")
    assert result["mannwhitney_u"] == mw.statistic and result["mannwhitney_p"] == mw.pvalue
    assert result["wilcoxon_w"] == wx.statistic and result["wilcoxon_p"] == wx.pvalue
    assert result["mean_diff"] == pytest.approx(a.mean() - b.mean())


def test_compare_identical_samples_is_not_significant() -> None:
    a = np.array([0.0, 0.5, 1.0, 1.0])
    result = compare(a, a)
    assert result["wilcoxon_p"] == 1.0 and result["mannwhitney_p"] == 1.0 and result["cohens_d"] == 0.0


def test_compare_all_pairs_tied_is_p_one_not_nan() -> None:
    # 24 prompts take scipy's normal approximation, which returns NaN once every zero difference is dropped
    # (e.g. Pass@10 saturated at 1 or 0 for two models on the same prompts).
    a = np.r_[np.ones(22), np.zeros(2)]
    result = compare(a, a.copy())
    assert result["wilcoxon_p"] == 1.0 and result["wilcoxon_w"] == 0.0
    assert np.isfinite(adjust_pvalues([result["wilcoxon_p"], 0.01])).all()


def test_cohens_d_by_hand() -> None:
    # means 2 and 5, both sample SDs 1, so the pooled SD is 1 and d = -3
    assert cohens_d([1, 2, 3], [4, 5, 6]) == pytest.approx(-3.0)
    assert cohens_d([1, 1], [2, 2]) == -np.inf  # no spread but different means


def test_holm_and_bonferroni() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    # Holm: sorted 0.01*4, 0.03*3, 0.04*2 (raised to the running max 0.09), 0.5*1
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 1.0])


def test_bootstrap_ci_brackets_the_mean() -> None:
    values = np.random.default_rng(1).uniform(size=50)
    low, high = bootstrap_ci(values, 0.95, 500, seed=0)
    assert low < values.mean() < high
    assert bootstrap_ci(values, 0.95, 500, seed=0) == (low, high)  # seeded: reproducible
    assert bootstrap_ci(np.full(5, 0.3)) == pytest.approx((0.3, 0.3))
