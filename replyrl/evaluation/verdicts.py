"""The verdict table: the recipe's model comparisons, each a paired difference with seeds as the unit.

One comparison is primary (``evaluate.significance.primary``, pre-registered: the recipe's one
hypothesis), tested alone at ``alpha``, two-sided, with its 1 - alpha CI. Every other row is secondary
and exploratory: Benjamini-Hochberg q-values over them (false discovery rate ``q``) and unadjusted
1 - alpha intervals. A metric some model was trained on stays in the table, marked, and out of every
family: it is not evidence. A verdict says what the design can see: "no difference" only where the
minimum detectable difference (at the level the row is tested at) is smaller than the metric's range,
else "inconclusive" with the seeds it would take. Beside each row, the seeds' own view: rliable's
probability of improvement over seed pairs and how many seeds' differences point the better way.
The two models are paired on the seeds and conversations both have.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from replyrl.configs.evaluate import EvaluateConfig
from replyrl.configs.grpo import GRPORun
from replyrl.io import finite_or_none
from replyrl.metrics.stats import adjust_pvalues, minimum_detectable, paired_effect, seeds_needed, variance_components

logger = logging.getLogger(__name__)

LOWER_IS_BETTER = {"self_bleu"}
# The range of each per-tweet metric (a difference of two lies within +-(high - low)); None: unbounded
# or configurable (heuristic_reward: [0, max_score]; bertscore_f1). Cosine distance spans [0, 2].
UNIT_METRICS = {"gold_score", "predicted_engagement", "self_bleu", "distinct_1", "distinct_2", "rouge_l",
                "llm_win_rate"}
VERDICT_CODES = {"better": 1, "worse": -1, "no difference": 0}  # inconclusive, no verdict, trained on: null
ROLES = ("primary", "exploratory", "trained on")


def metric_range(metric: str) -> tuple[float, float] | None:
    """The values ``metric`` can take, or None where not bounded by construction."""
    if metric.startswith("pass@") or metric in UNIT_METRICS:
        return 0.0, 1.0
    if metric == "semantic_diversity":
        return 0.0, 2.0
    return None


GRPO_VS_WARM_START = "GRPO vs its own warm-start"  # the question of those rows (`verdict_pairs`)


def verdict_pairs(models: Sequence[str], config: EvaluateConfig,
                  grpo_runs: Sequence[GRPORun] = ()) -> list[tuple[str, str, str]]:
    """The recipe's comparisons among the evaluated ``models``, as (model, other, question), each set
    objective of ``grpo_runs`` against the `group` run from the same warm-start, then the configured
    extra pairs. A comparison whose models were not both evaluated is left out (logged)."""
    group = {run.init: run.model for run in grpo_runs if run.objective == "group"}
    wanted = [(m, f"{init}_phase1", GRPO_VS_WARM_START) for init, m in group.items()]
    wanted += [(f"polychromic_{d}", f"baseline_{d}", f"polychromic vs plain SFT ({d} data)") for d in ("full", "phase1")]
    if {"baseline", "polychromic"} <= set(group):
        wanted += [(group["polychromic"], group["baseline"], "GRPO from the polychromic vs the plain warm-start")]
    wanted += [(m, f"{init}_full", "two-phase (SFT + GRPO) vs SFT on all the data") for init, m in group.items()]
    wanted += [(run.model, group[run.init], f"GRPO {run.objective} vs group objective (same warm-start)")
               for run in grpo_runs if run.objective != "group" and run.init in group]
    primary = config.significance.primary
    wanted += [(primary.model, primary.other, "primary (configured)")]
    wanted += [(a, b, "configured") for a, b in config.significance.pairs]
    pairs, seen = [], set()
    for a, b, question in wanted:
        if (a, b) in seen:
            continue
        seen.add((a, b))
        if {a, b} <= set(models):
            pairs.append((a, b, question))
        else:
            logger.info("verdicts: no %s vs %s (%s): not both evaluated", a, b, question)
    return pairs


def verdict_metrics(per_prompt: pd.DataFrame, config: EvaluateConfig) -> list[str]:
    """What every comparison is judged on: the primary Pass@k (``significance.primary.metric`` when it
    is a Pass@k column, else the largest k), the mean quality score (the gold where there is one, else
    predicted engagement) and semantic diversity."""
    primary = config.significance.primary.metric
    is_passk = primary.startswith("pass@") and primary in per_prompt.columns
    passk = primary if is_passk else f"pass@{max(config.pass_at_k.k)}"
    quality = "gold_score" if "gold_score" in per_prompt.columns else "predicted_engagement"
    return [passk, quality, "semantic_diversity"]


def verdicts(per_prompt: pd.DataFrame, config: EvaluateConfig, trained_on: dict[str, str] | None = None,
             grpo_runs: Sequence[GRPORun] = (), pairs: Sequence[tuple[str, str, str]] | None = None) -> pd.DataFrame:
    """The verdict table, the primary row first: one row per (comparison, metric) with the paired
    difference (every conversation weighs the same), its 1 - alpha CI clipped to the possible range and
    p-value (seeds and conversations both random: `stats.paired_effect`), ``p_adj`` (BH q-value, over
    the exploratory rows only), d_z, the minimum detectable difference ``mde`` and the seeds needed
    (`stats.seeds_needed`) at ``test_level``, the level the row is tested at: ``alpha`` for the primary
    (and for a trained-on row, which is not tested), ``q / m`` for an exploratory row in a BH family of
    m (BH's first step, its strictest per-test level: the r-th smallest p needs only ``r q / m``), the
    probability of improvement, the seeds up/down (the better/worse way, `LOWER_IS_BETTER` respected),
    ``role`` (primary, exploratory or trained on) and the verdict (`row_verdict`). The two models are
    paired on the seeds and conversations both have (any other is left out, logged); with no common
    seed or fewer than 2 common conversations the row has no verdict (one common seed: checkpoint-level,
    no verdict either). ``trained_on`` marks metrics that were a training objective; ``grpo_runs``
    (grpo.runs) say which GRPO model is which (`verdict_pairs`); ``pairs``, (model, other, question)
    rows, replace the recipe's comparisons (`replyrl.evaluation.compare`: a model against itself in
    another run)."""
    sig = config.significance
    if pairs is None:
        pairs = verdict_pairs(list(dict.fromkeys(per_prompt["model"])), config, grpo_runs)
    metrics = verdict_metrics(per_prompt, config)
    if per_prompt["group_id"].nunique() < 2:
        logger.warning("verdicts: need at least 2 test conversations, got %d", per_prompt["group_id"].nunique())
        pairs = []
    primary = (sig.primary.model, sig.primary.other, sig.primary.metric)
    if sig.primary.metric not in per_prompt.columns:
        logger.warning("verdicts: the primary metric %r is not a per-tweet column (evaluate.pass_at_k.k?)",
                       sig.primary.metric)
    by_seed = per_prompt.groupby(["model", "seed", "group_id"], sort=True).mean(numeric_only=True)
    rows = []
    for model, other, question in pairs:
        extra = [primary[2]] if (model, other) == primary[:2] and primary[2] in per_prompt.columns else []
        # GRPO against its own warm-start is also judged on its training reward: not evidence (marked),
        # but the check that training did what it optimises.
        reward = [m for m, why in (trained_on or {}).items() if "GRPO reward" in why and m in per_prompt.columns
                  and not m.startswith("pass@")] if question == GRPO_VS_WARM_START else []
        for metric in dict.fromkeys([*extra, *metrics, *reward]):
            a, b = _paired(*(by_seed.loc[m, metric].unstack("group_id") for m in (model, other)), model, other, metric)
            if len(a.index) < 1 or len(a.columns) < 2:
                effect, components = {**{k: np.nan for k in _EFFECT_KEYS}, "level": "unpaired",
                                      "n_seeds": len(a.index), "n_groups": len(a.columns)}, None
            else:
                values, others = a.to_numpy(), b.to_numpy()
                effect = paired_effect(values, others, 1 - sig.alpha, sig.power, metric in LOWER_IS_BETTER)
                # For the planning figure at the row's level, once the family is known; none with one seed.
                components = variance_components(values - others) if effect["level"] == "seed" else None
            bounds = metric_range(metric)
            if bounds is not None:  # a difference of two values in [low, high] lies in +-(high - low)
                width = bounds[1] - bounds[0]
                effect["ci_low"], effect["ci_high"] = np.clip([effect["ci_low"], effect["ci_high"]], -width, width)
            mark = (trained_on or {}).get(metric, "")
            role = "primary" if (model, other, metric) == primary else "trained on" if mark else "exploratory"
            rows.append({"model": model, "other": other, "question": question, "metric": metric, "role": role,
                         **effect, "trained_on": mark, "pilot_components": components})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.sort_values("role", key=lambda r: r != "primary", kind="stable").reset_index(drop=True)
    # Benjamini-Hochberg over the exploratory rows with a verdict; the primary and trained-on rows are out.
    family = (table.role == "exploratory") & (table.level == "seed") & np.isfinite(table.p)
    table["p_adj"] = np.nan
    table.loc[family, "p_adj"] = adjust_pvalues(table.loc[family, "p"].to_numpy(), "bh")
    # Detectable difference and seeds needed at the level each row is tested at (BH: its first step).
    table["test_level"] = np.where(table.role == "exploratory", sig.q / max(int(family.sum()), 1), sig.alpha)
    table["mde"] = [minimum_detectable(r.se, r.df, r.test_level, sig.power) if np.isfinite(r.p) else np.nan
                    for r in table.itertuples()]
    table["seeds_needed"] = [None if r.pilot_components is None else
                             seeds_needed(r.pilot_components, r.n_groups, r.diff, r.test_level, sig.power)
                             for r in table.itertuples()]
    table = table.drop(columns="pilot_components")
    table["verdict"] = [row_verdict(row, config) for row in table.itertuples()]
    return table


# The statistics of `stats.paired_effect`: NaN in a row whose models share no seed or < 2 conversations.
_EFFECT_KEYS = ("diff", "ci_low", "ci_high", "p", "df", "se", "d_z", "wilcoxon_p", "mde", "prob_improvement",
                "seeds_up", "seeds_down")


def _paired(a: pd.DataFrame, b: pd.DataFrame, model: str, other: str,
            metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``a`` and ``b`` ([seed, group_id] values of two models) on the seeds both have and the conversations
    both have a value for at every one of those seeds; what is left out is logged."""
    seeds = a.index.intersection(b.index).sort_values()
    groups = a.columns.intersection(b.columns).sort_values()
    pa, pb = a.loc[seeds, groups], b.loc[seeds, groups]
    complete = (pa.notna() & pb.notna()).all(axis=0)
    pa, pb = pa.loc[:, complete], pb.loc[:, complete]
    if pa.shape != a.shape or pa.shape != b.shape:
        logger.warning("verdicts: %s vs %s on %s paired on %d seeds x %d conversations (of %s and %s)", model,
                       other, metric, *pa.shape, "x".join(map(str, a.shape)), "x".join(map(str, b.shape)))
    return pa, pb


def row_verdict(row, config: EvaluateConfig) -> str:
    """``better`` / ``worse`` where significant (primary: p < alpha; exploratory: BH q <= q); otherwise
    ``no difference (detectable X)`` where the design detects (with ``power``, at the row's level)
    differences smaller than the metric's range, else ``inconclusive: detectable X, needs ~N seeds`` (to
    detect the difference seen). A significant row stays better / worse however low the power (the
    test's level holds at any power), flagged ``better (low power: detectable X)`` where X exceeds the
    metric's range: a significant result from such a design overstates the effect. No verdict with one
    (common) seed, models with no common seed or conversations, where p cannot be computed, or on a
    metric trained on (the primary's too: set `evaluate.significance.primary.metric` to one no model was
    trained on)."""
    sig = config.significance
    if row.level == "checkpoint":
        return "no verdict (one seed)"
    if row.level == "unpaired":
        return "no verdict (no common seeds and conversations)"
    if not np.isfinite(row.p):
        return "no verdict (not computable)"
    if row.role == "trained on" or getattr(row, "trained_on", ""):  # a primary metric trained on too
        return "trained on: not evidence"
    bounds = metric_range(row.metric)
    if (row.p < sig.alpha) if row.role == "primary" else (row.p_adj <= sig.q):
        direction = "better" if (row.diff > 0) != (row.metric in LOWER_IS_BETTER) else "worse"
        low_power = bounds is not None and not row.mde < bounds[1] - bounds[0]
        return f"{direction} (low power: detectable {row.mde:.3f})" if low_power else direction
    if row.role != "primary" and row.p < sig.alpha:
        # Its own 1 - alpha CI excludes 0, but the family's false discovery control does not pass it:
        # "no difference" would overstate what the table shows.
        return f"not significant after BH (q {row.p_adj:.2f}; detectable {row.mde:.3f})"
    if bounds is None or row.mde < bounds[1] - bounds[0]:
        return f"no difference (detectable {row.mde:.3f})"
    if row.diff == 0:
        return f"inconclusive: detectable {row.mde:.3f}"
    needed = f"~{row.seeds_needed:.0f}" if pd.notna(row.seeds_needed) else "> 200"
    return f"inconclusive: detectable {row.mde:.3f}, needs {needed} seeds"


def verdict_code(verdict: str) -> int | None:
    """1 (better), -1 (worse), 0 (no difference), None (inconclusive, no verdict, trained on)."""
    return VERDICT_CODES.get(verdict.split(" (")[0])


def verdict_table_metrics(table: pd.DataFrame) -> dict[str, float | None]:
    """Flat keys ``verdict.{model}_vs_{other}.{metric}.{statistic}`` and, for the primary row,
    ``primary.{statistic}``; ``.verdict`` is `verdict_code`."""
    stats_ = ("diff", "ci_low", "ci_high", "p", "p_adj", "df", "d_z", "mde", "seeds_needed", "prob_improvement",
              "seeds_up", "seeds_down")
    out: dict[str, float | None] = {}
    for row in table.itertuples():
        values = {stat: None if getattr(row, stat) is None else finite_or_none(getattr(row, stat)) for stat in stats_}
        values["verdict"] = verdict_code(row.verdict)
        key = f"verdict.{row.model}_vs_{row.other}.{row.metric}"
        out.update({f"{key}.{stat}": value for stat, value in values.items()})
        if row.role == "primary":
            out.update({f"primary.{stat}": values[stat] for stat in
                        ("diff", "ci_low", "ci_high", "p", "df", "mde", "prob_improvement", "seeds_up", "verdict")})
    return out
