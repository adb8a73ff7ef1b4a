"""Seed-level paired effects (coverage and error rates on simulated data, hand-checked pieces), Holm, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from replyrl.metrics.stats import (
    _variance_from_mean_squares,
    adjust_pvalues,
    bootstrap_ci,
    mean_variance,
    paired_effect,
    probability_of_improvement,
    seeds_needed,
    two_sided_p,
    variance_components,
)


def _simulate(rng, mu, n_seeds=3, n_groups=24, seed_sd=0.1, group_sd=0.1, noise_sd=0.2):
    """diff[seed, group] = mu + seed effect + group effect (shared by all seeds) + noise."""
    return (mu + seed_sd * rng.standard_normal((n_seeds, 1)) + group_sd * rng.standard_normal((1, n_groups))
            + noise_sd * rng.standard_normal((n_seeds, n_groups)))


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
    # var = (6 + 6.5 - 1.5) / 6 = 11/6, df = seeds - 1 = 1 (never Satterthwaite's 11^2 / (6^2/1 + 6.5^2/2
    # + 1.5^2/2) = 2.08, which is estimated from the same mean squares: see `mean_variance`).
    variance, df, level = mean_variance(diff)
    assert variance == pytest.approx(11 / 6) and level == "seed"
    assert df == 1
    variance, df, level = mean_variance(diff[:1])
    assert level == "checkpoint" and variance == pytest.approx(np.var([1, 2, 3], ddof=1) / 3) and df == 2
    effect = paired_effect(diff[:1], np.zeros((1, 3)))
    assert effect["level"] == "checkpoint" and effect["mde"] > 0


def test_benjamini_hochberg_holm_and_bonferroni() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    # BH: sorted 0.01*4/1, 0.03*4/2, 0.04*4/3, 0.5*4/4, then a running min from the largest: 0.06 <= 0.0533
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    # Step-up: a small p late in the order rescues the earlier ones (0.04 * 2/1 -> min with 0.045 * 2/2).
    np.testing.assert_allclose(adjust_pvalues([0.04, 0.045], "bh"), [0.045, 0.045])
    # Holm: sorted 0.01*4, 0.03*3, 0.04*2 (raised to the running max 0.09), 0.5*1
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 1.0])
    # A p that cannot be computed stays out of the family (m = 2 here).
    np.testing.assert_allclose(adjust_pvalues([0.01, np.nan, 0.04], "bh"), [0.02, np.nan, 0.04])


def test_probability_of_improvement_and_seed_counts() -> None:
    # Per-seed means 0.6, 0.8, 0.7 vs 0.5, 0.8, 0.6 over all 9 pairs: 0.6 wins 1, ties 1; 0.8 wins 2, ties 1;
    # 0.7 wins 2 -> (5 + 2 / 2) / 9.
    a = np.array([[0.6, 0.6], [0.8, 0.8], [0.7, 0.7]])
    b = np.array([[0.5, 0.5], [0.8, 0.8], [0.6, 0.6]])
    assert probability_of_improvement(a.mean(axis=1), b.mean(axis=1)) == pytest.approx(6 / 9)
    effect = paired_effect(a, b)
    assert effect["prob_improvement"] == pytest.approx(6 / 9)
    assert (effect["seeds_up"], effect["seeds_down"]) == (2, 0)  # seed 2 ties: neither up nor down
    # Lower is better (self_bleu): a's lower seeds are the improvements; diff stays a - b.
    lower = paired_effect(b, a, lower_is_better=True)
    assert lower["prob_improvement"] == pytest.approx(6 / 9) and (lower["seeds_up"], lower["seeds_down"]) == (2, 0)
    assert lower["diff"] == pytest.approx(-effect["diff"])
    assert probability_of_improvement(b.mean(axis=1), a.mean(axis=1), lower_is_better=True) == pytest.approx(6 / 9)
    # A NaN seed mean is left out of the pairs, not counted as a loss: 0.6 vs 0.5 and 0.8 only.
    assert probability_of_improvement([0.6, np.nan], [0.5, 0.8]) == 0.5
    assert np.isnan(probability_of_improvement([np.nan], [0.5]))
    assert two_sided_p(0.1, 0.05, 0.5) != two_sided_p(0.1, 0.05, 0.5)  # df < 1: NaN, no verdict


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
    assert planned == 9  # t quantiles on seeds - 1 df; normal quantiles would say 7
    rng = np.random.default_rng(1)

    def power(n_seeds: int) -> float:
        sims = simulate(rng, n_seeds, n_groups, sds, delta, 600)
        return np.mean([paired_effect(d, np.zeros_like(d), 1 - alpha)["p"] < alpha for d in sims])

    assert 0.72 <= power(planned) <= 0.92
    assert power(planned - 1) < power(planned)
    # More groups cannot need more seeds; no effect needs no plan.
    assert seeds_needed((sds[0] ** 2, sds[1] ** 2, sds[2] ** 2), 4 * n_groups, delta, alpha) <= planned
    assert seeds_needed((0.01, 0.0, 0.0), n_groups, 0.0, alpha) is None


# The levels the verdict table uses: the primary test's alpha, and the per-test levels a family of
# m = 6-12 rows would use (alpha / m; BH's first step). 3 seeds x 12 conversations, the default design.
LEVELS = (0.05, 0.05 / 6, 0.05 / 12)
SIMS = 20_000  # Monte Carlo SE of a rate near 0.05 / 12: ~0.00046; a run takes well under a second


def _null_rates(diff: np.ndarray) -> np.ndarray:
    """Rejection rate at each of `LEVELS` of `mean_variance`'s t test over stacked designs [sim, seed, group]."""
    variance, df, _ = mean_variance(diff)
    p = two_sided_p(diff.mean(axis=(-2, -1)), np.sqrt(variance), df)
    assert np.isfinite(p).all()  # df = S - 1 >= 1: always computable
    return np.array([(p < level).mean() for level in LEVELS])


def _mc_bound(rate: float, sims: int = SIMS) -> float:
    """Three Monte Carlo standard errors of a rejection rate ``rate`` over ``sims`` runs."""
    return 3 * np.sqrt(rate * (1 - rate) / sims)


def _assert_at_most_nominal(rates: np.ndarray) -> None:
    """Each level's rejection rate at most that level plus its own Monte Carlo bound."""
    bounds = np.array([level + _mc_bound(level) for level in LEVELS])
    assert (rates <= bounds).all(), (rates / LEVELS).round(2)


def _bernoulli_pairs(rng, logit: float, seed_sd: float, group_sd: float, delta: float = 0.0, n_seeds: int = 3,
                     n_groups: int = 12, sims: int = SIMS) -> tuple[np.ndarray, np.ndarray]:
    """0/1 passes [sim, seed, group] of two models: a shared conversation difficulty, each model's own seed
    effects (retrained models differ), ``delta`` added to the first model's logit."""
    difficulty = rng.normal(0, group_sd, (sims, 1, n_groups))
    def passes(shift: float) -> np.ndarray:
        seeds = rng.normal(0, seed_sd, (sims, n_seeds, 1))
        return rng.random((sims, n_seeds, n_groups)) < expit(logit + shift + difficulty + seeds)

    a, b = passes(delta), passes(0.0)
    return a.astype(np.float64), b.astype(np.float64)


@pytest.mark.parametrize("n_seeds", [2, 3])
@pytest.mark.parametrize("sds", [(0.1, 0.1, 0.2), (0.0, 0.2, 0.1), (0.1, 0.02, 0.1), (0.0, 0.0, 0.1),
                                 (0.2, 0.1, 0.1), (0.5, 0.2, 0.2), (0.3, 0.1, 0.1)])
def test_null_is_rejected_at_most_at_the_nominal_rate_on_continuous_data(sds, n_seeds) -> None:
    # Seed-, conversation-, residual-dominated and mixed; the last three: seeds dominate with a smaller
    # conversation share, where a Satterthwaite df (estimated from the same mean squares) rejected
    # 1.3-1.4x too often at 0.05 and 2.8-3.9x at 0.05/6-0.05/12 at 3 seeds, worse at 2. At most nominal
    # plus each level's Monte Carlo error (the rule is conservative: see `mean_variance`).
    _assert_at_most_nominal(_null_rates(simulate(np.random.default_rng(0), n_seeds, 12, sds, 0.0, SIMS)))


@pytest.mark.parametrize("n_seeds", [2, 3])
def test_null_rate_is_nominal_where_the_seed_variance_is_all_there_is(n_seeds) -> None:
    # The df S - 1 is exact there (a t over the seed means), so the test is not needlessly conservative
    # either: within each level's Monte Carlo error of nominal, from above and below. (With a residual
    # share it is below: SDs (0.2, 0, 0.1) give ~0.9, 0.4, 0.13 x nominal at 3 seeds; 2 seeds are hit
    # harder, residual SD 0.005 giving ~1.0, 0.76, 0.4.)
    rates = _null_rates(simulate(np.random.default_rng(1), n_seeds, 12, (0.2, 0.0, 0.001), 0.0, SIMS))
    assert (np.abs(rates - LEVELS) <= [_mc_bound(level) for level in LEVELS]).all(), (rates / LEVELS).round(2)


# 0/1 cells (Pass@k with k = n): discrete differences, many exact ties, seed means often equal. The
# pooled-by-pre-test estimator (the seed term dropped where MS_seed <= MS_res) rejected ~3x too often at
# 0.05/12 with seed SD 1 on the logit at 3 seeds, and ~10-20x at 0.05/6-0.05/12 with 2 seeds (as 1.1-1.6x
# at 0.05); it stayed below nominal at 3 seeds with seed SD 0.3. Pass rates ~0.5 (logit 0) and ~0.9 (2.5).
@pytest.mark.parametrize(("n_seeds", "logit", "seed_sd"), [(3, 0.0, 1.0), (3, 2.5, 0.3), (2, 0.0, 0.3),
                                                          (2, 2.5, 0.3)])
def test_null_is_rejected_at_most_at_the_nominal_rate_on_0_1_data(n_seeds, logit, seed_sd) -> None:
    a, b = _bernoulli_pairs(np.random.default_rng(2), logit, seed_sd=seed_sd, group_sd=1.0, n_seeds=n_seeds)
    _assert_at_most_nominal(_null_rates(a - b))


@pytest.mark.parametrize(("logit", "seed_sd", "delta", "least"), [(0.0, 0.3, 1.5, 0.8), (0.0, 1.0, 2.0, 0.65),
                                                                  (2.5, 0.3, -1.5, 0.6)])
def test_a_true_effect_on_0_1_data_is_detected_with_8_seeds(logit, seed_sd, delta, least) -> None:
    # The null tests above pass for a test that never rejects; this one fails for it. A logit shift of
    # 1.5-2 (pass rate ~0.5 -> ~0.8, ~0.9 -> ~0.7) at 8 seeds x 12 is found at 0.05 about 0.9, 0.77 and
    # 0.74 of the time (simulated; at 3 seeds only ~0.1: the seed term's 2 df).
    a, b = _bernoulli_pairs(np.random.default_rng(3), logit, seed_sd, 1.0, delta, n_seeds=8, sims=4000)
    variance, df, _ = mean_variance(a - b)
    p = two_sided_p((a - b).mean(axis=(-2, -1)), np.sqrt(variance), df)
    assert (p < 0.05).mean() > least


def test_a_true_effect_is_detected() -> None:
    # The test can fail: a difference of 3.5 seed SDs on continuous data at 3 seeds x 12 conversations
    # is found most of the time at 0.05.
    diff = simulate(np.random.default_rng(3), 3, 12, (0.1, 0.05, 0.1), 0.35, 4000)
    variance, df, _ = mean_variance(diff)
    p = two_sided_p(diff.mean(axis=(-2, -1)), np.sqrt(variance), df)
    assert (p < 0.05).mean() > 0.8


@pytest.mark.parametrize("n_seeds", [2, 3, 5])
def test_confidence_intervals_cover_a_known_effect(n_seeds) -> None:
    # At least the nominal 95% (conservative), also with 2 seeds, whose df (1) is always computable.
    diff = simulate(np.random.default_rng(4), n_seeds, 12, (0.1, 0.1, 0.2), 0.05, 4000)
    variance, df, _ = mean_variance(diff)
    assert (df == n_seeds - 1).all()
    half = stats.t.ppf(0.975, df) * np.sqrt(variance)
    covered = np.abs(diff.mean(axis=(-2, -1)) - 0.05) <= half
    assert covered.mean() >= 0.95 - _mc_bound(0.05, 4000)


def test_a_float_tie_of_the_mean_squares_does_not_change_the_verdict() -> None:
    # 0/1 cells with one nonzero cell make the three mean squares equal; which one float rounding
    # puts on top depended on the cell's position and flipped the old estimator between df 2 and 1.57
    # (CI +-0.235 vs +-1.135 on a real row). Here every position gives the same variance and df = 2.
    results = set()
    for seed in range(3):
        for group in range(12):
            a = np.zeros((3, 12))
            a[seed, group] = 1.0
            variance, df, _ = mean_variance(a)
            results.add((round(variance, 15), df))
    assert results == {(round(1 / 36**2, 15), 2.0)}  # MS = 1 / 36 each, variance MS / (S G): t = 1
    effect = paired_effect(a, np.zeros_like(a))
    assert effect["df"] == 2 and effect["p"] == pytest.approx(2 * stats.t.sf(1.0, 2))
    # Mean squares a hair apart either way give the same answer.
    m = 1 / 36
    for ms in [(m, m, m), (m * (1 + 1e-15), m, m), (m, m * (1 + 1e-15), m), (m, m, m * (1 + 1e-15))]:
        variance, df = _variance_from_mean_squares(*ms, 3, 12)
        assert df == 2 and variance == pytest.approx(m / 36)
