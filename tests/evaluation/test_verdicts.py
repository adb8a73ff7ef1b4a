"""The verdict table: which comparisons, the primary test, the exploratory BH family, what the design can see."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from replyrl.configs.evaluate import EvaluateConfig, PassAtKConfig, PrimaryConfig, SignificanceConfig
from replyrl.configs.grpo import DEFAULT_RUNS, GRPORun, GRPOStageConfig
from replyrl.evaluation.evaluate import evaluate, training_objectives
from replyrl.evaluation.verdicts import metric_range, row_verdict, verdict_code, verdict_pairs, verdicts
from replyrl.metrics.stats import adjust_pvalues, minimum_detectable
from tests.evaluation.conftest import make_rows

RUNS = [GRPORun("from_polychromic", "polychromic", "group")]  # grpo.runs: plain GRPO from the polychromic SFT
BOTH_RUNS = [*RUNS, GRPORun("from_baseline", "baseline", "group")]


def config(**kwargs) -> EvaluateConfig:
    """The learned judge and the median criterion, as in test_evaluate.py (the primary metric: pass@5)."""
    kwargs.setdefault("pass_at_k", PassAtKConfig(judge="learned", threshold="median"))
    return EvaluateConfig(sft_models=["baseline_full"], **kwargs)


def verdict_generations(seeds=(1, 2, 3)) -> dict:
    """polychromic_full passes on tweets 0 and 1 only (3 of 10 samples); grpo_from_polychromic on every tweet
    but one that changes with the seed (training variance); polychromic_phase1 is grpo's warm-start, equal
    to full."""
    out = {}
    for seed in seeds:
        sft = make_rows(lambda i, j: f"{'good' if i < 2 and j < 3 else 'meh'} {i} {j}")
        out["polychromic_full", seed] = sft
        out["polychromic_phase1", seed] = sft
        out["grpo_from_polychromic", seed] = make_rows(
            lambda i, j, s=seed: f"{'meh' if i == 2 + s else 'good'} reply {i} {j} {s}")
    return out


def test_verdicts_compare_each_grpo_model_with_its_warm_start_over_seeds(scorers) -> None:
    result = evaluate(verdict_generations(), scorers, config(), trained_on={"semantic_diversity": "polychromic SFT"},
                      grpo_runs=RUNS)
    table = result.verdicts
    pairs = set(zip(table.model, table.other))
    assert pairs == {("grpo_from_polychromic", "polychromic_phase1"), ("grpo_from_polychromic", "polychromic_full")}
    # The table's Pass@k is the primary one (pass@5), not the largest k.
    assert set(table.metric) == {"pass@5", "gold_score", "semantic_diversity"} and len(table) == 6
    row = table[(table.other == "polychromic_phase1") & (table.metric == "pass@5")].iloc[0]
    # Per seed, grpo passes on 7 of 8 tweets; the warm-start's Pass@5 is 1 - C(7,5)/C(10,5) = 11/12 on 2.
    assert row["diff"] == pytest.approx((7 - 2 * 11 / 12) / 8) and row.level == "seed" and row.n_seeds == 3
    assert row.ci_low > 0 and row.p_adj < 0.10 and row.verdict == "better" and row.role == "exploratory"
    assert (row.seeds_up, row.prob_improvement) == (3, 1.0)  # every seed up; every seed pair an improvement
    # BH over the exploratory rows; the trained-on rows are out of the family, with no verdict.
    family = table.role == "exploratory"
    assert table.p_adj[family].tolist() == pytest.approx(adjust_pvalues(table.p[family].to_numpy(), "bh").tolist())
    trained = table[table.metric == "semantic_diversity"]
    assert (trained.trained_on == "polychromic SFT").all() and (trained.role == "trained on").all()
    assert trained.p_adj.isna().all() and (trained.verdict == "trained on: not evidence").all()
    key = "verdict.grpo_from_polychromic_vs_polychromic_phase1"
    assert result.metrics[f"{key}.pass@5.verdict"] == 1 and result.metrics[f"{key}.pass@5.seeds_up"] == 3
    assert result.metrics[f"{key}.semantic_diversity.verdict"] is None
    assert result.metrics[f"{key}.semantic_diversity.p_adj"] is None
    assert not any(k.startswith("primary.") for k in result.metrics)  # grpo_from_baseline was not evaluated


def test_grpo_is_judged_on_its_whole_training_reward_against_its_warm_start_only(scorers) -> None:
    gens = verdict_generations()
    for rows in gens.values():
        for row in rows:
            row["sample_tokens"] = [3] * len(row["samples"])  # below the cap: the overlong term can be computed
    trained_on = training_objectives("heuristic", 0.1, {"group"}, "none", config())
    table = evaluate(gens, scorers, config(), trained_on=trained_on, grpo_runs=RUNS, grpo=GRPOStageConfig()).verdicts
    reward = table[table.metric.isin(["grpo_reward", "heuristic_reward"])]
    # The check that training did what it optimises: marked, never evidence, and not asked of other comparisons.
    assert set(zip(reward.other, reward.metric)) == {("polychromic_phase1", "grpo_reward"),
                                                     ("polychromic_phase1", "heuristic_reward")}
    assert (reward.role == "trained on").all() and (reward.verdict == "trained on: not evidence").all()
    assert reward.set_index("metric").at["grpo_reward", "trained_on"] == "GRPO reward (all terms)"


def test_the_primary_comparison_comes_first_tested_alone_at_alpha(scorers) -> None:
    gens = verdict_generations()
    for seed in (1, 2, 3):  # GRPO from the plain warm-start: passes on tweets 0-3 only
        gens["grpo_from_baseline", seed] = make_rows(lambda i, j, s=seed: f"{'good' if i < 4 else 'meh'} {i} {j} {s}")
    result = evaluate(gens, scorers, config(), grpo_runs=BOTH_RUNS)
    table = result.verdicts
    primary = table.iloc[0]
    assert (primary.model, primary.other, primary.metric, primary.role) == (
        "grpo_from_polychromic", "grpo_from_baseline", "pass@5", "primary")
    assert (table.role == "primary").sum() == 1
    # No correction: the primary p is held against alpha itself; it has no q-value and is not in the BH family.
    # df = seeds - 1 = 2 (`stats.mean_variance`): p ~0.18, detectable ~0.98, just inside Pass@k's range.
    assert primary.df == 2 and primary.test_level == 0.05
    assert np.isnan(primary.p_adj) and 0.05 < primary.p < 0.25 and primary.verdict == "no difference (detectable 0.981)"
    family = table.role == "exploratory"
    assert family.sum() == len(table) - 1
    assert table.p_adj[family].tolist() == pytest.approx(adjust_pvalues(table.p[family].to_numpy(), "bh").tolist())
    # Its CI is the 1 - alpha one: diff +- t(0.975, df) * se.
    half = stats.t.ppf(0.975, primary.df) * primary.se
    assert primary.ci_high == pytest.approx(min(primary["diff"] + half, 1.0))
    m = result.metrics
    assert m["primary.diff"] == pytest.approx(primary["diff"]) and m["primary.p"] == pytest.approx(primary.p)
    assert m["primary.verdict"] == verdict_code(primary.verdict)
    assert m["verdict.grpo_from_polychromic_vs_grpo_from_baseline.pass@5.diff"] == m["primary.diff"]


def test_each_set_objective_is_compared_with_group_grpo_from_the_same_warm_start() -> None:
    runs = [*DEFAULT_RUNS, GRPORun("max_at_k_from_polychromic", "polychromic", "max_at_k"),
            GRPORun("polychromic_from_baseline", "baseline", "polychromic"), GRPORun("max_at_k_only", "baseline", "max_at_k")]
    models = ["baseline_full", "polychromic_full", "baseline_phase1", "polychromic_phase1",
              *(run.model for run in runs)]
    pairs = {(a, b): q for a, b, q in verdict_pairs(models, config(), runs)}
    assert pairs[("grpo_max_at_k_from_polychromic", "grpo_from_polychromic")].startswith("GRPO max_at_k vs group")
    assert ("grpo_polychromic_from_baseline", "grpo_from_baseline") in pairs
    assert ("grpo_max_at_k_only", "grpo_from_baseline") in pairs
    # Group runs keep the recipe's rows; a set objective is judged against group GRPO only (a smaller family).
    assert ("grpo_from_polychromic", "grpo_from_baseline") in pairs and ("grpo_from_baseline", "baseline_full") in pairs
    assert not any(a == "grpo_max_at_k_from_polychromic" and b != "grpo_from_polychromic" for a, b in pairs)
    assert len(pairs) == 7 + 3
    # Without a group run from its warm-start, a set objective has nothing to be compared with.
    alone = [GRPORun("max_at_k_from_polychromic", "polychromic", "max_at_k")]
    assert not [p for p in verdict_pairs(models, config(), alone) if p[0] == "grpo_max_at_k_from_polychromic"]
    # A primary comparison outside the recipe's pairs is added.
    custom = config(significance=SignificanceConfig(primary=PrimaryConfig("baseline_full", "polychromic_full")))
    assert ("baseline_full", "polychromic_full", "primary (configured)") in verdict_pairs(
        ["polychromic_full", "baseline_full"], custom)


def test_one_seed_gives_no_verdict(scorers) -> None:
    result = evaluate(verdict_generations(seeds=(1,)), scorers, config(), grpo_runs=RUNS)
    assert (result.verdicts.verdict == "no verdict (one seed)").all()
    assert (result.verdicts.level == "checkpoint").all()
    assert result.metrics["verdict.grpo_from_polychromic_vs_polychromic_phase1.pass@5.verdict"] is None


def _row(**kwargs) -> SimpleNamespace:
    """A verdict-table row with a computable, non-significant exploratory result unless told otherwise."""
    row = dict(level="seed", p=0.5, p_adj=0.6, role="exploratory", diff=0.1, metric="pass@5", mde=0.3,
               seeds_needed=9.0)
    return SimpleNamespace(**(row | kwargs))


def test_a_verdict_says_what_the_design_can_see() -> None:
    c = config()
    assert row_verdict(_row(), c) == "no difference (detectable 0.300)"
    # A detectable difference wider than the metric's range [0, 1]: the design cannot see a difference.
    assert row_verdict(_row(mde=1.213), c) == "inconclusive: detectable 1.213, needs ~9 seeds"
    assert row_verdict(_row(mde=1.213, seeds_needed=np.nan), c) == "inconclusive: detectable 1.213, needs > 200 seeds"
    assert row_verdict(_row(mde=1.5, metric="semantic_diversity"), c).startswith("no difference")  # range [0, 2]
    # Exploratory rows are decided by their BH q-value (q = 0.10), the primary by p against alpha (0.05).
    assert row_verdict(_row(p=0.01, p_adj=0.09, diff=-0.2), c) == "worse"
    assert row_verdict(_row(p=0.01, p_adj=0.09, diff=-0.2, metric="self_bleu"), c) == "better"  # lower is better
    assert row_verdict(_row(p=0.01, p_adj=0.10), c) == "better"  # BH rejects at q-value <= q
    # Its own CI excludes 0 (p < alpha) but BH does not pass it: not "no difference".
    assert row_verdict(_row(p=0.01, p_adj=0.1001), c) == "not significant after BH (q 0.10; detectable 0.300)"
    assert verdict_code("not significant after BH (q 0.10; detectable 0.300)") is None
    # Significant, but the design could not see a difference inside the metric's range: flagged.
    low_power = row_verdict(_row(p=0.001, p_adj=0.01, mde=1.2), c)
    assert low_power == "better (low power: detectable 1.200)" and verdict_code(low_power) == 1
    assert row_verdict(_row(p=0.001, p_adj=0.01, mde=1.2, metric="heuristic_reward"), c) == "better"  # unbounded
    assert row_verdict(_row(p=0.04, p_adj=np.nan, role="primary"), c) == "better"
    assert row_verdict(_row(p=0.06, p_adj=np.nan, role="primary"), c).startswith("no difference")
    assert row_verdict(_row(p=0.001, role="trained on"), c) == "trained on: not evidence"
    assert row_verdict(_row(p=np.nan), c) == "no verdict (not computable)"
    assert [verdict_code(v) for v in ("better", "worse", "no difference (detectable 0.300)",
                                      "inconclusive: detectable 1.213", "trained on: not evidence")] == [1, -1, 0, None, None]
    assert metric_range("pass@5") == (0.0, 1.0) and metric_range("heuristic_reward") is None


def test_intervals_are_clipped_to_the_possible_range(scorers) -> None:
    # Two seeds (df = 1): the t multiplier is ~12, so the raw interval of a Pass@k difference is far wider
    # than +-1; it is clipped there, and the verdict is inconclusive rather than "no difference".
    gens = verdict_generations(seeds=(1, 2))
    for seed in (1, 2):  # a noisy warm-start: seed 1 passes on tweets 0-5, seed 2 on none
        gens["polychromic_phase1", seed] = make_rows(lambda i, j, s=seed: f"{'good' if s == 1 and i < 6 else 'meh'} {i}")
    table = evaluate(gens, scorers, config(), grpo_runs=RUNS).verdicts
    row = table[(table.other == "polychromic_phase1") & (table.metric == "pass@5")].iloc[0]
    assert 1 <= row.df < 2 and row.ci_low >= -1 and row.ci_high == 1.0 and row.mde > 1
    assert row.verdict.startswith("inconclusive: detectable")


def test_conversations_are_the_unit_of_intervals_and_tests(scorers) -> None:
    # Tweets 2c and 2c+1 share conversation c: per-conversation Pass@10 is baseline 0.5, grpo 1.
    gens = {
        ("baseline_full", 1): make_rows(lambda i, j: f"{'good' if i % 2 == 0 and j < 2 else 'meh'} {i} {j}",
                                        tweets_per_group=2),
        ("grpo_from_polychromic", 1): make_rows(lambda i, j: f"good {i} {j}", tweets_per_group=2),
    }
    result = evaluate(gens, scorers, config(significance=SignificanceConfig(
        primary=PrimaryConfig(metric="pass@10"), pairs=[["grpo_from_polychromic", "baseline_full"]])))
    assert result.metrics["n_prompts"] == 8 and result.metrics["n_groups"] == 4
    row = result.verdicts[result.verdicts.metric == "pass@10"].iloc[0]
    assert row.n_groups == 4 and row.wilcoxon_p == pytest.approx(stats.wilcoxon(np.full(4, 0.5)).pvalue)


def test_a_primary_metric_trained_on_is_not_evidence_either() -> None:
    # E.g. Pass@k judged by the learned reward while GRPO trains on it: still the first row, no verdict.
    row = _row(p=0.001, p_adj=np.nan, role="primary", trained_on="GRPO reward")
    assert row_verdict(row, config()) == "trained on: not evidence"


def _per_prompt(values: dict[tuple[str, int], list[float]], metric: str = "self_bleu") -> pd.DataFrame:
    """Per-tweet rows, one per (model, seed, conversation): ``values[model, seed][g]`` is conversation g's."""
    rows = [{"model": m, "seed": seed, "group_id": f"c{g}", "pass@10": v, "gold_score": v, "semantic_diversity": v,
             metric: v} for (m, seed), vs in values.items() for g, v in enumerate(vs) if v is not None]
    return pd.DataFrame(rows)


def test_models_are_paired_on_the_seeds_and_conversations_both_have() -> None:
    # m2 lacks seed 3 and conversation c5 and has a seed 4 that m1 lacks: paired on seeds 1, 2 x c0-c4 (no
    # KeyError). self_bleu, lower is better, is the primary: m1 is lower on both seeds, so both are "up".
    base = [0.5, 0.4, 0.6, 0.3, 0.5, 0.7]
    values = {("m1", s): [v - 0.1 * s for v in base] for s in (1, 2, 3)}
    values |= {("m2", s): [*base[:5], None] for s in (1, 2, 4)}
    values |= {("m3", s): base for s in (7, 8)}  # no seed in common with m1
    sig = SignificanceConfig(primary=PrimaryConfig("m1", "m2", "self_bleu"), pairs=[["m1", "m3"]])
    table = verdicts(_per_prompt(values), config(significance=sig))
    primary = table.iloc[0]
    assert (primary.role, primary.metric, primary.n_seeds, primary.n_groups) == ("primary", "self_bleu", 2, 5)
    assert primary["diff"] == pytest.approx(-0.15) and primary.df == 1
    assert (primary.seeds_up, primary.seeds_down, primary.prob_improvement) == (2, 0, 1.0)
    unpaired = table[table.other == "m3"]
    assert len(unpaired) == 3 and (unpaired.verdict == "no verdict (no common seeds and conversations)").all()
    assert unpaired.p.isna().all() and unpaired.p_adj.isna().all() and unpaired.mde.isna().all()
    # Exploratory rows: detectable difference and seeds needed at q / m (BH's first step), the primary's at alpha.
    family = (table.role == "exploratory") & table.p.notna()
    assert family.sum() == 3 and np.allclose(table.test_level[family], 0.10 / 3)
    for r in table[family].itertuples():
        assert r.mde == pytest.approx(minimum_detectable(r.se, r.df, 0.10 / 3, 0.8))
    assert primary.test_level == 0.05 and primary.mde == pytest.approx(minimum_detectable(primary.se, 1, 0.05, 0.8))
