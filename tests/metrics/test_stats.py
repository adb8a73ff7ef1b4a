"""Seed-level paired effects (coverage and error rates on simulated data, hand-checked pieces), Holm, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from replyrl.metrics.stats import (
    adjust_pvalues,
    bootstrap_ci,
    mean_variance,
    paired_effect,
    seeds_needed,
    variance_components,
)


def _simulate(rng, mu, n_seeds=3, n_groups=24, seed_sd=0.1, group_sd=0.1, noise_sd=0.2):
    """diff[seed, group] = mu + seed effect + group effect (shared by all seeds) + noise."""
    return (mu + seed_sd * rng.standard_normal((n_seeds, 1)) + group_sd * rng.standard_normal((1, n_groups))
            + noise_sd * rng.standard_normal((n_seeds, n_groups)))


@pytest.mark.parametrize("n_seeds", [2, 3, 5])
@pytest.mark.parametrize("sds", [(0.1, 0.1, 0.2), (0.2, 0.0, 0.1), (0.0, 0.2, 0.1), (0.1, 0.02, 0.1)])
def test_paired_effect_covers_a_known_effect_and_rejects_a_null_at_about_the_nominal_rate(sds, n_seeds) -> None:
    # 24 conversations like the default run; seed-, conversation- or noise-dominated; 2, 3 and 5 seeds.
    rng = np.random.default_rng(0)
    seed_sd, group_sd, noise_sd = sds
    runs = 800
    covered = rejected = 0
    for _ in range(runs):
        diff = _simulate(rng, 0.05, n_seeds, seed_sd=seed_sd, group_sd=group_sd, noise_sd=noise_sd)
        effect = paired_effect(diff, np.zeros_like(diff), confidence=0.95)
        covered += effect["ci_low"] <= 0.05 <= effect["ci_high"]
        null = _simulate(rng, 0.0, n_seeds, seed_sd=seed_sd, group_sd=group_sd, noise_sd=noise_sd)
        rejected += paired_effect(null, np.zeros_like(null))["p"] < 0.05
    # Binomial SE at 800 runs is ~0.008: nominal 0.95 / 0.05 give these bands with room to spare.
    assert 0.92 <= covered / runs <= 0.985
    assert 0.015 <= rejected / runs <= 0.08


def test_ignoring_the_seed_effect_would_reject_a_null_far_too_often() -> None:
    # What the old per-checkpoint test did: pool the tweets, ignore retraining. With a real seed effect
    # (one retrained model differs from the next) its false positives pile up; ours stay near alpha.
    rng = np.random.default_rng(1)
    ours = naive = 0
    for _ in range(400):
        null = _simulate(rng, 0.0, seed_sd=0.2, group_sd=0.05, noise_sd=0.1)
        ours += paired_effect(null, np.zeros_like(null))["p"] < 0.05
        naive += stats.ttest_1samp(null.ravel(), 0.0).pvalue < 0.05
    assert ours / 400 < 0.1 < 0.4 < naive / 400


def test_d_z_and_wilcoxon_on_the_per_group_differences_by_hand() -> None:
    a = np.array([[1.0, 2.0, 4.0, 3.0], [1.0, 4.0, 2.0, 5.0]])
    b = np.zeros_like(a)
    effect = paired_effect(a, b)
    per_group = np.array([1.0, 3.0, 3.0, 4.0])  # seed-averaged differences
    assert effect["diff"] == pytest.approx(per_group.mean())
    assert effect["d_z"] == pytest.approx(per_group.mean() / per_group.std(ddof=1))  # 2.75 / 1.258
    assert effect["wilcoxon_p"] == pytest.approx(stats.wilcoxon(per_group).pvalue)
    assert effect["level"] == "seed" and effect["n_seeds"] == 2 and effect["n_groups"] == 4
    assert paired_effect(a, a)["p"] == 1.0 and paired_effect(a, a)["d_z"] == 0.0


def test_mean_variance_by_hand_and_one_seed_is_checkpoint_level() -> None:
    diff = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 7.0]])
    # seed means 2, 4; group means 1.5, 2.5, 5; grand 3. MS_seed = 3*2/1 = 6, MS_group = 2*6.5/2 = 6.5,
    # residuals +-0.5, +-0.5, -+1 -> MS_residual = 3/2 = 1.5. Both components positive:
    # var = (6 + 6.5 - 1.5) / 6 = 11/6, Satterthwaite df = 11^2 / (6^2/1 + 6.5^2/2 + 1.5^2/2).
    variance, df, level = mean_variance(diff)
    assert variance == pytest.approx(11 / 6) and level == "seed"
    assert df == pytest.approx(121 / (36 + 6.5**2 / 2 + 1.5**2 / 2))
    variance, df, level = mean_variance(diff[:1])
    assert level == "checkpoint" and variance == pytest.approx(np.var([1, 2, 3], ddof=1) / 3) and df == 2
    effect = paired_effect(diff[:1], np.zeros((1, 3)))
    assert effect["level"] == "checkpoint" and effect["mde"] > 0


def test_holm_and_bonferroni() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    # Holm: sorted 0.01*4, 0.03*3, 0.04*2 (raised to the running max 0.09), 0.5*1
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 1.0])


def test_bootstrap_ci_brackets_the_mean() -> None:
    values = np.random.default_rng(1).uniform(size=50)
    low, high = bootstrap_ci(values, confidence=0.95, n_resamples=500, seed=0)
    assert low < values.mean() < high
    assert bootstrap_ci(values, confidence=0.95, n_resamples=500, seed=0) == (low, high)  # seeded: reproducible
    assert bootstrap_ci(np.full(5, 0.3)) == pytest.approx((0.3, 0.3))


def test_bootstrap_ci_resamples_whole_groups_around_the_per_value_mean() -> None:
    # One big group of 1s and nine singletons of 0s: the per-value mean is 10/19, the per-group mean 0.1.
    values = np.r_[np.ones(10), np.zeros(9)]
    groups = ["big"] * 10 + [f"g{i}" for i in range(9)]
    low, high = bootstrap_ci(values, groups, confidence=0.9, n_resamples=2000)
    assert low < 10 / 19 < high
    # Values of one group move together: wider than treating the 19 values as independent.
    flat_low, flat_high = bootstrap_ci(values, confidence=0.9, n_resamples=2000)
    assert high - low > flat_high - flat_low


def simulate(rng, n_seeds: int, n_groups: int, sds: tuple[float, float, float], delta: float, reps: int) -> np.ndarray:
    """``reps`` differences [seed, group] = delta + seed effect + group effect + residual."""
    seed_sd, group_sd, residual_sd = sds
    return (delta + rng.normal(0, seed_sd, (reps, n_seeds, 1)) + rng.normal(0, group_sd, (reps, 1, n_groups))
            + rng.normal(0, residual_sd, (reps, n_seeds, n_groups)))


def test_variance_components_recover_the_simulated_ones() -> None:
    # A large design (60 x 80): each estimate within 30% of the truth (0.04, 0.01, 0.09), ~1.6 of its SDs.
    (diff,) = simulate(np.random.default_rng(0), 60, 80, (0.2, 0.1, 0.3), 0.0, 1)
    np.testing.assert_allclose(variance_components(diff), (0.04, 0.01, 0.09), rtol=0.3)


def test_seeds_needed_reaches_the_power_it_promises() -> None:
    # Seed variance dominates, as in the GRPO comparisons: the planned seed count detects the effect
    # about 80% of the time in simulation (t test of `paired_effect`), one seed fewer clearly less often.
    sds, n_groups, delta, alpha = (0.08, 0.05, 0.1), 16, 0.1, 0.05
    planned = seeds_needed((sds[0] ** 2, sds[1] ** 2, sds[2] ** 2), n_groups, delta, alpha)
    assert planned == 9  # t quantiles with Satterthwaite df; normal quantiles would say 7
    rng = np.random.default_rng(1)

    def power(n_seeds: int) -> float:
        sims = simulate(rng, n_seeds, n_groups, sds, delta, 600)
        return np.mean([paired_effect(d, np.zeros_like(d), 1 - alpha)["p"] < alpha for d in sims])

    assert 0.72 <= power(planned) <= 0.92
    assert power(planned - 1) < power(planned)
    # More groups cannot need more seeds; no effect needs no plan.
    assert seeds_needed((sds[0] ** 2, sds[1] ** 2, sds[2] ** 2), 4 * n_groups, delta, alpha) <= planned
    assert seeds_needed((0.01, 0.0, 0.0), n_groups, 0.0, alpha) is None
