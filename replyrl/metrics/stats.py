"""Statistics for comparing models over the same test prompts. Pure functions over per-prompt values.

The tests themselves are scipy's; this module only fixes the conventions (two-sided, paired by
prompt for Wilcoxon) and adds the effect size, bootstrap interval and multiple-comparison adjustment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling prompts (the unit that varies)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    result = stats.bootstrap(
        (values,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """Standardised mean difference ``(mean(a) - mean(b)) / pooled SD``; 0 for two identical constants.

    >>> cohens_d([1, 2, 3], [1, 2, 3])
    0.0
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    pooled_var = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)
    diff = a.mean() - b.mean()
    if pooled_var == 0:
        return 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    return float(diff / np.sqrt(pooled_var))


def compare(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Two-sided Mann-Whitney U, Wilcoxon signed-rank (``a[i]`` pairs with ``b[i]``: same prompt) and Cohen's d."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(f"need two equally long samples of >= 2 prompts, got {a.shape} and {b.shape}")
    mw = stats.mannwhitneyu(a, b, alternative="two-sided")
    if np.array_equal(a, b):
        # scipy drops zero differences and returns NaN when none is left; with every pair tied there
        # is no evidence of a difference at all, so report W = 0, p = 1 (as for two identical samples).
        wilcoxon_w, wilcoxon_p = 0.0, 1.0
    else:
        wx = stats.wilcoxon(a, b, alternative="two-sided")
        wilcoxon_w, wilcoxon_p = float(wx.statistic), float(wx.pvalue)
    return {
        "mannwhitney_u": float(mw.statistic),
        "mannwhitney_p": float(mw.pvalue),
        "wilcoxon_w": wilcoxon_w,
        "wilcoxon_p": wilcoxon_p,
        "cohens_d": cohens_d(a, b),
        "mean_diff": float(a.mean() - b.mean()),
    }


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> np.ndarray:
    """Family-wise adjusted p-values: ``bonferroni`` (p * m) or Holm's step-down (never less powerful).

    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm").round(2).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_pvalues([0.01, 0.04, 0.03], "bonferroni").round(2).tolist()
    [0.03, 0.12, 0.09]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    if method != "holm":
        raise ValueError(f"unknown adjustment {method!r}: use 'holm' or 'bonferroni'")
    order = np.argsort(p)
    # The i-th smallest p is multiplied by (m - i); a running max keeps the adjusted values monotone.
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted
