"""Grouped, engagement-stratified split into test, phase 1 (SFT warm-start) and phase 2 (GRPO).

Groups are conversations, or tweets where rows carry no ``conversation_id`` (`groups.group_key`): all
pairs of one conversation land in one split, so nothing a test pair comes from is trained on. Each group is stratified by the engagement quartile of its mean
engagement, with quartile edges taken from the whole prepared set; sklearn's ``train_test_split``
then draws the test groups, and splits the rest into phase 1 and phase 2, in each stratum alike.
Each split's rows are written sorted by (group, tweet, reply), so the files are byte-identical for
any order of the input rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats
from sklearn.model_selection import train_test_split

from replyrl.configs.split import SplitConfig
from replyrl.data.groups import group_key, tweet_key

logger = logging.getLogger(__name__)

SPLITS = ("phase1", "phase2", "full", "test")  # full = phase1 + phase2, for the full-SFT comparison models
DISJOINT = ("phase1", "phase2", "test")  # full overlaps the phases by definition; it must not overlap test
QUARTILES = ("q1", "q2", "q3", "q4")


def quartile_edges(engagement: Sequence[float]) -> np.ndarray:
    """The three inner quartile edges (25th, 50th, 75th percentiles)."""
    return np.quantile(np.asarray(engagement, dtype=np.float64), [0.25, 0.5, 0.75])


def assign_quartiles(engagement: Sequence[float], edges: np.ndarray) -> np.ndarray:
    """Quartile index 0-3 per value: (-inf, e1], (e1, e2], (e2, e3], (e3, inf).

    Tied edges (e.g. many zeros) leave a quartile empty rather than splitting equal values.
    """
    return np.searchsorted(edges, np.asarray(engagement, dtype=np.float64), side="left")


def row_order(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """Sort key of the split files: group, tweet, then the texts (prepared (tweet, reply) pairs are unique)."""
    return group_key(row), tweet_key(row), row["reply"], row["tweet"]


def check_one_group_per_tweet(rows: Sequence[dict[str, Any]]) -> None:
    """Every tweet belongs to exactly one group, so splitting by group never divides a tweet."""
    groups: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault(tweet_key(row), set()).add(group_key(row))
    for tweet, keys in groups.items():
        if len(keys) > 1:
            raise ValueError(
                f"tweet {tweet!r} appears in {len(keys)} groups {sorted(keys)}: every row of one tweet needs the same "
                "conversation_id (or none at all), else the tweet could be trained on and tested on"
            )


def split_rows(rows: Sequence[dict[str, Any]], config: SplitConfig) -> dict[str, list[dict[str, Any]]]:
    """Split prepared rows into ``SPLITS``, each sorted by `row_order` (independent of the input order).

    Raises when a tweet's replies name different groups (two conversation ids, or an id on some rows
    only): the tweet could then land in two splits.
    """
    check_one_group_per_tweet(rows)
    frame = pd.DataFrame({"group": [group_key(row) for row in rows], "engagement": [row["engagement"] for row in rows]})
    edges = quartile_edges(frame["engagement"])
    # Sorted group keys make the split independent of the order of the input rows.
    groups = frame.groupby("group", sort=True)["engagement"].mean()
    strata = pd.Series(assign_quartiles(groups.to_numpy(), edges), index=groups.index)
    try:
        rest, test = train_test_split(
            groups.index.to_numpy(), test_size=config.test_fraction, stratify=strata, random_state=config.seed
        )
        phase1, phase2 = train_test_split(
            rest, train_size=config.split_ratio, stratify=strata[rest], random_state=config.seed
        )
    except ValueError as e:
        raise ValueError(
            f"cannot split {len(groups)} tweets ({len(rows)} rows) with split.test_fraction={config.test_fraction}, "
            f"split.split_ratio={config.split_ratio} stratified by engagement quartile: {e}"
        ) from None
    membership = {"phase1": set(phase1), "phase2": set(phase2), "full": set(rest), "test": set(test)}
    return {
        name: sorted((row for row, group in zip(rows, frame["group"]) if group in keys), key=row_order)
        for name, keys in membership.items()
    }


def overlaps(splits: dict[str, list[dict[str, Any]]], key: Callable[[dict[str, Any]], str]) -> dict[str, int]:
    """How many ``key`` values (tweets, conversations) each pair of disjoint splits shares; all must be 0."""
    values = {name: {key(row) for row in splits[name]} for name in DISJOINT}
    return {f"{a}_{b}": len(values[a] & values[b]) for a, b in combinations(DISJOINT, 2)}


def split_statistics(splits: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Counts, per-quartile counts, engagement summaries, phase 1 vs 2 tests, and the tweet and
    conversation (group) overlaps between every pair of splits."""
    all_rows = splits["full"] + splits["test"]
    edges = quartile_edges([row["engagement"] for row in all_rows])
    engagement = {name: pd.Series([row["engagement"] for row in rows], dtype=float) for name, rows in splits.items()}
    quartile_counts = {
        name: np.bincount(assign_quartiles(values, edges), minlength=len(QUARTILES))
        for name, values in engagement.items()
    }
    # Quartiles empty in both phases (tied edges) carry no information and would divide by zero.
    table = np.stack([quartile_counts["phase1"], quartile_counts["phase2"]])
    table = table[:, table.sum(axis=0) > 0]
    chi2 = stats.chi2_contingency(table)
    ks = stats.ks_2samp(engagement["phase1"], engagement["phase2"])
    return {
        "rows": {name: len(rows) for name, rows in splits.items()} | {"total": len(all_rows)},
        "tweets": {name: len({tweet_key(row) for row in rows}) for name, rows in splits.items()},
        "groups": {name: len({group_key(row) for row in rows}) for name, rows in splits.items()},
        "quartile_edges": {q: float(edge) for q, edge in zip(("q1_max", "q2_max", "q3_max"), edges)},
        "quartile_counts": {
            name: {q: int(n) for q, n in zip(QUARTILES, counts)} for name, counts in quartile_counts.items()
        },
        "engagement": {
            name: {"mean": float(values.mean()), "median": float(values.median()), "std": float(values.std())}
            for name, values in engagement.items()
        },
        "chi_square_phase1_vs_phase2": {
            "statistic": float(chi2.statistic), "dof": int(chi2.dof), "p_value": float(chi2.pvalue)
        },
        "ks_phase1_vs_phase2": {"statistic": float(ks.statistic), "p_value": float(ks.pvalue)},
        # Groups are conversations when rows carry conversation_id, else tweets (then the two agree).
        "tweet_overlap": overlaps(splits, tweet_key),
        "group_overlap": overlaps(splits, group_key),
    }


def plot_split_distributions(
    splits: dict[str, list[dict[str, Any]]], statistics: dict[str, Any], path: str | Path
) -> None:
    """PNG: engagement histogram per split, and each split's share of rows per quartile."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    hist_ax, share_ax = fig.subplots(1, 2)
    bins = np.linspace(0.0, 1.0, 21)
    names = ("phase1", "phase2", "test")
    for name in names:
        values = [row["engagement"] for row in splits[name]]
        hist_ax.hist(values, bins=bins, density=True, histtype="step", linewidth=1.5, label=f"{name} (n={len(values)})")
    hist_ax.set(
        xlabel="engagement = min(reply_likes / max(tweet_likes, 1), 1)", ylabel="density", title="Engagement per split"
    )
    hist_ax.legend()
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        counts = np.array([statistics["quartile_counts"][name][q] for q in QUARTILES])
        share_ax.bar(np.arange(len(QUARTILES)) + (i - 1) * width, counts / counts.sum(), width=width, label=name)
    chi2 = statistics["chi_square_phase1_vs_phase2"]
    share_ax.set(
        xticks=range(len(QUARTILES)),
        xticklabels=QUARTILES,
        xlabel="engagement quartile (edges from the whole set)",
        ylabel="share of split's rows",
        title=f"Quartile shares (phase 1 vs 2: chi2={chi2['statistic']:.2f}, p={chi2['p_value']:.2f})",
    )
    share_ax.set_ylim(0.0, share_ax.get_ylim()[1] * 1.3)  # headroom so the legend covers no bar
    share_ax.legend(loc="upper center", ncols=len(names))
    fig.savefig(path, dpi=100)
