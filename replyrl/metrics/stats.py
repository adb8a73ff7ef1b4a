"""Statistics for comparing models over the same test prompts. Pure functions over per-prompt values.

Seeds are the unit of inference: a model comparison uses values ``[seed, group]`` of both models,
paired by seed (the same data order) and by group (the same conversation), and a crossed
random-effects model for the variance of the mean difference (`mean_variance`). The distributions
are scipy's; this module fixes the conventions (two-sided, paired) and adds the paired effect size,
the bootstrap interval of a mean, and the multiple-comparison adjustment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


def bootstrap_ci(
    values: Sequence[float], groups: Sequence[str] | None = None, confidence: float = 0.95, n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``, resampling whole ``groups`` (conversations;
    default: each value its own group). Each resample is the mean over the values of the drawn groups,
    so the interval is about the same statistic as the point estimate when groups differ in size."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.arange(len(values)) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    n_groups = labels.max() + 1 if len(values) else 0
    if n_groups < 2:
        return float(values.mean()), float(values.mean())
    sums, counts = np.bincount(labels, weights=values), np.bincount(labels).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(n_resamples, n_groups))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _mean_squares(diff: np.ndarray) -> tuple[float, float, float]:
    """Mean squares (seed, group, residual) of the balanced two-way layout ``diff[seed, group]``."""
    n_seeds, n_groups = diff.shape
    grand = diff.mean()
    seed_means, group_means = diff.mean(axis=1), diff.mean(axis=0)
    ms_seed = n_groups * ((seed_means - grand) ** 2).sum() / (n_seeds - 1)
    ms_group = n_seeds * ((group_means - grand) ** 2).sum() / (n_groups - 1)
    residual = diff - seed_means[:, None] - group_means[None, :] + grand
    ms_residual = (residual**2).sum() / ((n_seeds - 1) * (n_groups - 1))
    return float(ms_seed), float(ms_group), float(ms_residual)


def _variance_from_mean_squares(ms_seed: float, ms_group: float, ms_residual: float, n_seeds: int,
                                n_groups: int) -> tuple[float, float]:
    """Variance of the grand mean and its Satterthwaite df from the three mean squares (see `mean_variance`)."""
    # var = (c_s MS_seed + c_g MS_group + c_r MS_residual) / (S G); a component is in when its MS exceeds
    # the residual's (its estimate is positive).
    c_seed, c_group = float(ms_seed > ms_residual or n_seeds == 2), float(ms_group > ms_residual)
    df_residual = (n_seeds - 1) * (n_groups - 1)
    terms = [(c_seed * ms_seed, n_seeds - 1), (c_group * ms_group, n_groups - 1),
             ((1.0 - c_seed - c_group) * ms_residual, df_residual)]
    total = sum(value for value, _ in terms)
    if total <= 0:
        return 0.0, float(df_residual)
    df = total**2 / sum(value**2 / df for value, df in terms if value != 0)
    return float(total / (n_seeds * n_groups)), float(df)


def mean_variance(diff: np.ndarray) -> tuple[float, float, str]:
    """Variance of the grand mean of ``diff[seed, group]`` and its degrees of freedom, from a crossed
    random-effects model ``diff = mu + seed + group + residual`` (balanced; method of moments, which is
    REML here when no component is negative).

    Every seed is evaluated on the same groups, so a group's effect is shared by all seeds: the mean's
    variance is ``var_seed / S + var_group / G + var_residual / (S G)``. Components estimated below zero
    are set to zero, except the seed component with two seeds: its mean square then has one degree of
    freedom, falls below the residual's often by chance, and dropping it let a true null through about
    11% of the time at alpha 0.05 (kept, ~5-6%). The degrees of freedom are Satterthwaite's. With one
    seed the seed term cannot be estimated: the variance is the groups' only (a paired t over groups),
    labelled ``checkpoint``.
    Returns ``(variance, df, level)`` with level ``seed`` or ``checkpoint``.
    """
    diff = np.asarray(diff, dtype=np.float64)
    n_seeds, n_groups = diff.shape
    if n_groups < 2:
        raise ValueError(f"need >= 2 groups (conversations or tweets) per seed, got {n_groups}")
    if n_seeds == 1:
        return float(diff[0].var(ddof=1) / n_groups), float(n_groups - 1), "checkpoint"
    variance, df = _variance_from_mean_squares(*_mean_squares(diff), n_seeds, n_groups)
    return variance, df, "seed"


def variance_components(diff: np.ndarray) -> tuple[float, float, float]:
    """``(var_seed, var_group, var_residual)`` of ``diff[seed, group]`` under `mean_variance`'s model
    (method of moments; a negative estimate is 0). With two seeds the seed term is ``MS_seed / G``, the
    whole of it, as `mean_variance` keeps it there (one df: an estimate below the residual's is
    mostly chance). Needs >= 2 seeds and >= 2 groups.

    >>> [round(v, 6) for v in variance_components(np.array([[0.0, 2.0], [1.0, 3.0]]))]  # seed 0.5, group 2
    [0.5, 2.0, 0.0]
    """
    diff = np.asarray(diff, dtype=np.float64)
    n_seeds, n_groups = diff.shape
    if n_seeds < 2 or n_groups < 2:
        raise ValueError(f"need >= 2 seeds and >= 2 groups, got {diff.shape}")
    ms_seed, ms_group, ms_residual = _mean_squares(diff)
    var_seed = ms_seed / n_groups if n_seeds == 2 else max((ms_seed - ms_residual) / n_groups, 0.0)
    return var_seed, max((ms_group - ms_residual) / n_seeds, 0.0), ms_residual


def seeds_needed(components: tuple[float, float, float], n_groups: int, delta: float, alpha: float,
                 power: float = 0.8, max_seeds: int = 200) -> int | None:
    """Fewest seeds (>= 2) at which a design of ``n_groups`` groups detects a true difference ``delta``
    with probability ``power`` at level ``alpha`` (`minimum_detectable`), for the variance
    ``components`` (`variance_components`) of a pilot run; None if ``delta`` is 0 or more than
    ``max_seeds`` are needed. The planned design's mean squares are their expectations
    (``G var_seed + var_residual`` etc.), analysed as `mean_variance` would, Satterthwaite df included.
    A rough planning figure: components from 2-3 seeds are noisy (a seed variance estimated 0 makes
    it far too low), the observed difference is an optimistic stand-in for the true one (more so for
    a significant one), and ``alpha`` is this table's per-test level (a follow-up testing fewer
    comparisons needs fewer seeds).

    Seed variance only: var = 0.01 / S with S - 1 df, (t + t) sqrt(0.01 / S) <= 0.1 first at S = 10
    (normal quantiles would say 8):

    >>> seeds_needed((0.01, 0.0, 0.0), n_groups=20, delta=0.1, alpha=0.05)
    10
    """
    var_seed, var_group, var_residual = components
    if delta == 0:
        return None
    for n_seeds in range(2, max_seeds + 1):
        ms = (n_groups * var_seed + var_residual, n_seeds * var_group + var_residual, var_residual)
        variance, df = _variance_from_mean_squares(*ms, n_seeds, n_groups)
        if minimum_detectable(np.sqrt(variance), df, alpha, power) <= abs(delta):
            return n_seeds
    return None


def minimum_detectable(se: float, df: float, alpha: float, power: float = 0.8) -> float:
    """Approximate smallest true difference a two-sided t test at level ``alpha`` detects with probability
    ``power``: ``(t_{1 - alpha/2} + t_{power}) * se``, taking the estimated SE and df as known (so it is
    optimistic when df is small). Pass the per-test level the family correction implies (``alpha / m``).

    >>> round(minimum_detectable(0.1, 1e9, 0.05), 3)  # the normal case: (1.96 + 0.84) * 0.1
    0.28
    """
    return (float(stats.t.ppf(1 - alpha / 2, df)) + float(stats.t.ppf(power, df))) * se


def paired_effect(a: np.ndarray, b: np.ndarray, confidence: float = 0.95, power: float = 0.8) -> dict[str, Any]:
    """Model ``a`` minus model ``b`` on values ``[seed, group]`` paired by seed and group.

    ``diff`` with its confidence interval and two-sided p from `mean_variance` (seeds and groups both
    random); ``d_z`` = mean / SD of the per-group differences (averaged over seeds), the paired effect
    size (its SD shrinks as seeds are averaged); ``wilcoxon_p``, Wilcoxon signed-rank over the same
    per-group differences (checkpoint-level: it ignores seed variance, a reference only); ``mde``,
    `minimum_detectable` at the level ``1 - confidence``. Every group weighs the same.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two [seed, group] arrays of one shape, got {a.shape} and {b.shape}")
    diff = a - b
    mean = float(diff.mean())
    variance, df, level = mean_variance(diff)
    alpha = 1.0 - confidence
    critical = float(stats.t.ppf(1 - alpha / 2, df))
    se = float(np.sqrt(variance))
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / se, df))
    per_group = diff.mean(axis=0)
    sd = per_group.std(ddof=1)
    d_z = 0.0 if sd == 0 and mean == 0 else (float(np.sign(mean) * np.inf) if sd == 0 else float(per_group.mean() / sd))
    wilcoxon_p = 1.0 if not per_group.any() else float(stats.wilcoxon(per_group).pvalue)
    return {
        "diff": mean, "ci_low": mean - critical * se, "ci_high": mean + critical * se, "p": p, "df": df,
        "se": se, "level": level, "n_seeds": a.shape[0], "n_groups": a.shape[1], "d_z": d_z,
        "wilcoxon_p": wilcoxon_p, "mde": minimum_detectable(se, df, alpha, power),
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
