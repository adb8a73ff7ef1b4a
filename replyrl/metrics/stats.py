"""Statistics for comparing models over the same test prompts. Pure functions over per-prompt values.

Seeds are the unit of inference: a model comparison uses values ``[seed, group]`` of both models,
paired by seed (the same data order) and by group (the same conversation), and a crossed
random-effects model for the variance of the mean difference (`mean_variance`). The distributions
are scipy's; this module fixes the conventions (two-sided, paired) and adds the paired effect size,
the bootstrap interval of a mean, rliable's probability of improvement and the multiple-comparison
adjustments (Benjamini-Hochberg, Holm, Bonferroni).
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


def _mean_squares(diff: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean squares (seed, group, residual) of the balanced two-way layout ``diff[..., seed, group]``."""
    n_seeds, n_groups = diff.shape[-2:]
    both = (-2, -1)
    grand = diff.mean(axis=both, keepdims=True)
    seed_means, group_means = diff.mean(axis=-1, keepdims=True), diff.mean(axis=-2, keepdims=True)
    ms_seed = n_groups * ((seed_means - grand) ** 2).sum(axis=both) / (n_seeds - 1)
    ms_group = n_seeds * ((group_means - grand) ** 2).sum(axis=both) / (n_groups - 1)
    residual = diff - seed_means - group_means + grand
    ms_residual = (residual**2).sum(axis=both) / ((n_seeds - 1) * (n_groups - 1))
    return ms_seed, ms_group, ms_residual


def _variance_from_mean_squares(ms_seed, ms_group, ms_residual, n_seeds: int,
                                n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Variance of the grand mean and its df from the three mean squares (arrays broadcast; see `mean_variance`)."""
    ms_seed, ms_group, ms_residual = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                                           for v in (ms_seed, ms_group, ms_residual)))
    # S G var = MS_res + (MS_seed - MS_res)+ + (MS_group - MS_res)+: each component's estimate, 0 when
    # negative, so the seed piece is max(MS_seed, MS_res) (no pre-test: a float tie changes nothing).
    total = np.maximum(ms_seed, ms_residual) + np.maximum(ms_group - ms_residual, 0.0)
    # df = S - 1 always, never estimated: a Satterthwaite df from these same mean squares jumps up
    # exactly when MS_seed is small by chance (the critical t drops as the SE shrinks), which made
    # seed-dominated designs with a conversation share reject a null 1.3-3.9x too often.
    df = np.full(total.shape, float(n_seeds - 1))
    return total / (n_seeds * n_groups), df


def mean_variance(diff: np.ndarray) -> tuple[Any, Any, str]:
    """Variance of the grand mean of ``diff[seed, group]`` and its degrees of freedom, from a crossed
    random-effects model ``diff = mu + seed + group + residual`` (balanced; method of moments).

    Every seed is evaluated on the same groups, so a group's effect is shared by all seeds: the mean's
    variance is ``var_seed / S + var_group / G + var_residual / (S G)``. Components estimated below zero
    are set to zero, which makes the estimate continuous in the data and never below the residual's
    share. The df is ``S - 1``, the seed term's, always: valid (a true null is rejected at most at the
    nominal rate, at 0.05 and at 0.05/6-0.05/12, on continuous data of any variance mix and on 0/1
    data: tests), and exact where the seed variance is all there is. Not Satterthwaite's: estimated
    from the same mean squares, it rises when MS_seed is small by chance, and was 1.3-1.4x nominal at
    0.05 and 2.8-3.9x at 0.05/6-0.05/12 with SDs (seed, conversation, residual) (0.2, 0.1, 0.1) or
    (0.5, 0.2, 0.2) at 3 seeds x 12, worse at 2 seeds. The price is conservativeness wherever the other
    terms matter; null rejection rate / nominal at 0.05, 0.05/6, 0.05/12 (3 seeds x 12, simulated):
    seed only (0.2, 0, 0.1) ~0.9, 0.4, 0.13; (0.3, 0.1, 0.1) ~0.7, 0.2, 0.06; (0.2, 0.1, 0.1) ~0.5,
    0.05, 0; conversation- or residual-dominated, and 0/1 (Pass@k) differences, ~0-0.1 at 0.05 and ~0
    at 0.05/m. So a 3-seed row is rarely significant unless the seeds agree and is mostly
    "inconclusive"; at 5 seeds, continuous, ~0.3-1.0x at 0.05. With one seed the seed term cannot be
    estimated: the variance is the groups' only (a paired t over groups), labelled ``checkpoint``.
    ``diff`` may stack designs, ``[..., seed, group]``: variance and df are then arrays.
    Returns ``(variance, df, level)`` with level ``seed`` or ``checkpoint``.
    """
    diff = np.asarray(diff, dtype=np.float64)
    n_seeds, n_groups = diff.shape[-2:]
    if n_groups < 2:
        raise ValueError(f"need >= 2 groups (conversations or tweets) per seed, got {n_groups}")
    if n_seeds == 1:
        variance, level = diff[..., 0, :].var(axis=-1, ddof=1) / n_groups, "checkpoint"
        df = np.full(variance.shape, n_groups - 1.0)
    else:
        (variance, df), level = _variance_from_mean_squares(*_mean_squares(diff), n_seeds, n_groups), "seed"
    if diff.ndim == 2:
        return float(variance), float(df), level
    return variance, df, level


def variance_components(diff: np.ndarray) -> tuple[float, float, float]:
    """``(var_seed, var_group, var_residual)`` of ``diff[seed, group]`` under `mean_variance`'s model
    (method of moments; a negative estimate is 0). Needs >= 2 seeds and >= 2 groups.

    >>> [round(v, 6) for v in variance_components(np.array([[0.0, 2.0], [1.0, 3.0]]))]  # seed 0.5, group 2
    [0.5, 2.0, 0.0]
    """
    diff = np.asarray(diff, dtype=np.float64)
    n_seeds, n_groups = diff.shape
    if n_seeds < 2 or n_groups < 2:
        raise ValueError(f"need >= 2 seeds and >= 2 groups, got {diff.shape}")
    ms_seed, ms_group, ms_residual = map(float, _mean_squares(diff))
    return max((ms_seed - ms_residual) / n_groups, 0.0), max((ms_group - ms_residual) / n_seeds, 0.0), ms_residual


def seeds_needed(components: tuple[float, float, float], n_groups: int, delta: float, alpha: float,
                 power: float = 0.8, max_seeds: int = 200) -> int | None:
    """Fewest seeds (>= 2) at which a design of ``n_groups`` groups detects a true difference ``delta``
    with probability ``power`` at level ``alpha`` (`minimum_detectable`), for the variance
    ``components`` (`variance_components`) of a pilot run; None if ``delta`` is 0 or more than
    ``max_seeds`` are needed. The planned design's mean squares are their expectations
    (``G var_seed + var_residual`` etc.), analysed as `mean_variance` would (``S - 1`` df).
    A rough planning figure: components from 2-3 seeds are noisy (a seed variance estimated 0 makes
    it far too low), the observed difference is an optimistic stand-in for the true one (more so for
    a significant one), and ``alpha`` is the level the row is tested at (a follow-up testing fewer
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
    optimistic when df is small). Pass the test's own level (a family-corrected one where there is one).

    >>> round(minimum_detectable(0.1, 1e9, 0.05), 3)  # the normal case: (1.96 + 0.84) * 0.1
    0.28
    """
    return (float(stats.t.ppf(1 - alpha / 2, df)) + float(stats.t.ppf(power, df))) * se


def two_sided_p(mean, se, df):
    """Two-sided t p-value of ``mean`` with standard error ``se`` on ``df`` degrees of freedom (arrays
    broadcast). ``se`` 0: p is 1 for a zero mean, else 0. NaN where it cannot be computed (df < 1 or
    not finite, a non-finite input)."""
    mean, se, df = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (mean, se, df)))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.t.sf(np.abs(mean) / se, df)
    p = np.where(se == 0, np.where(mean == 0, 1.0, 0.0), p)
    p = np.where((df >= 1) & np.isfinite(df) & np.isfinite(mean) & np.isfinite(se), p, np.nan)
    return float(p) if p.ndim == 0 else p


def probability_of_improvement(x: Sequence[float], y: Sequence[float], lower_is_better: bool = False) -> float:
    """P(X > Y) (``lower_is_better``: P(X < Y)) over all pairs of ``x`` and ``y`` values (per-seed means of
    two models), ties counting 1/2: rliable's probability of improvement (Agarwal et al. 2021), unpaired
    by design (any seed of one model against any seed of the other). A pair with a NaN is left out, not
    counted a loss; NaN if no pair is left.

    >>> probability_of_improvement([0.5, 0.7, 0.9], [0.6, 0.7, 0.8])  # 4 wins + 1 tie of 9 pairs
    0.5
    >>> probability_of_improvement([0.5, 0.9, float("nan")], [0.6, 0.8], lower_is_better=True)  # 2 of 4
    0.5
    """
    x, y = np.asarray(x, dtype=np.float64)[:, None], np.asarray(y, dtype=np.float64)[None, :]
    if lower_is_better:
        x, y = -x, -y
    valid = np.isfinite(x) & np.isfinite(y)
    if not valid.any():
        return float("nan")
    return float((((x > y) + 0.5 * (x == y)) * valid).sum() / valid.sum())


def paired_effect(a: np.ndarray, b: np.ndarray, confidence: float = 0.95, power: float = 0.8,
                  lower_is_better: bool = False) -> dict[str, Any]:
    """Model ``a`` minus model ``b`` on values ``[seed, group]`` paired by seed and group.

    ``diff`` with its confidence interval and two-sided p from `mean_variance` (seeds and groups both
    random; NaN where they cannot be computed); ``d_z`` = mean / SD of the per-group differences
    (averaged over seeds), the paired effect size (its SD shrinks as seeds are averaged); ``wilcoxon_p``,
    Wilcoxon signed-rank over the same per-group differences (checkpoint-level: it ignores seed
    variance, a reference only); ``mde``, `minimum_detectable` at the level ``1 - confidence``; and the
    seeds' own view: ``prob_improvement`` (`probability_of_improvement` of the per-seed means of ``a``
    over ``b``'s), ``seeds_up`` / ``seeds_down``, how many seeds' mean difference points the better /
    worse way: above / below 0, or below / above 0 where ``lower_is_better`` (which flips only these
    two; ``diff``, CI and ``d_z`` stay ``a - b``). Every group weighs the same.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two [seed, group] arrays of one shape, got {a.shape} and {b.shape}")
    diff = a - b
    mean = float(diff.mean())
    variance, df, level = mean_variance(diff)
    alpha = 1.0 - confidence
    se = float(np.sqrt(variance))
    p = two_sided_p(mean, se, df)
    critical = float(stats.t.ppf(1 - alpha / 2, df)) if np.isfinite(p) else np.nan
    per_group = diff.mean(axis=0)
    sd = per_group.std(ddof=1)
    d_z = 0.0 if sd == 0 and mean == 0 else (float(np.sign(mean) * np.inf) if sd == 0 else float(per_group.mean() / sd))
    wilcoxon_p = 1.0 if not per_group.any() else float(stats.wilcoxon(per_group).pvalue)
    per_seed = -diff.mean(axis=1) if lower_is_better else diff.mean(axis=1)
    return {
        "diff": mean, "ci_low": mean - critical * se, "ci_high": mean + critical * se, "p": p, "df": df,
        "se": se, "level": level, "n_seeds": a.shape[0], "n_groups": a.shape[1], "d_z": d_z,
        "wilcoxon_p": wilcoxon_p, "mde": minimum_detectable(se, df, alpha, power) if np.isfinite(p) else np.nan,
        "prob_improvement": probability_of_improvement(a.mean(axis=1), b.mean(axis=1), lower_is_better),
        "seeds_up": int((per_seed > 0).sum()), "seeds_down": int((per_seed < 0).sum()),
    }


def adjust_pvalues(pvalues: Sequence[float], method: str = "bh") -> np.ndarray:
    """Adjusted p-values over a family: ``bh``, Benjamini-Hochberg's step-up q-values (false discovery
    rate; reject where q <= the FDR level), ``holm`` (Holm's step-down, family-wise) or ``bonferroni``
    (p * m). NaN p-values stay NaN and are not counted in the family.

    >>> adjust_pvalues([0.01, 0.04, 0.03], "bh").round(2).tolist()  # 0.01*3/1, then min(0.03*3/2, 0.04*3/3)
    [0.03, 0.04, 0.04]
    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm").round(2).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_pvalues([0.01, 0.04, 0.03], "bonferroni").round(2).tolist()
    [0.03, 0.12, 0.09]
    """
    if method not in ("bh", "holm", "bonferroni"):
        raise ValueError(f"unknown adjustment {method!r}: use 'bh', 'holm' or 'bonferroni'")
    adjusted = np.full(len(pvalues), np.nan)
    finite = np.isfinite(np.asarray(pvalues, dtype=np.float64))
    p = np.asarray(pvalues, dtype=np.float64)[finite]
    m = len(p)
    if m == 0:
        return adjusted
    order = np.argsort(p)
    if method == "bonferroni":
        family = p * m
    elif method == "holm":
        # The i-th smallest p is multiplied by (m - i); a running max keeps the adjusted values monotone.
        family = np.empty(m)
        family[order] = np.maximum.accumulate((m - np.arange(m)) * p[order])
    else:
        # The i-th smallest (1-based) p times m / i; a running min from the largest down is the step-up.
        family = np.empty(m)
        family[order] = np.minimum.accumulate((m / np.arange(1, m + 1) * p[order])[::-1])[::-1]
    adjusted[finite] = np.minimum(family, 1.0)
    return adjusted
