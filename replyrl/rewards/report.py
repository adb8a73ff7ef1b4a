"""How well each reward tracks real engagement: read scored pairs, correlate, and plot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy import stats

from replyrl.data.schema import GOLD_FIELD
from replyrl.io import finite_or_none, new_figure, read_jsonl, save_figure
from replyrl.rewards import Reward


def read_pairs(path: str | Path) -> list[dict]:
    """Rows of a processed split, checked for the fields the rewards need (``tweet``, ``reply``, ``engagement``)."""
    rows = read_jsonl(path)
    if not rows:
        raise ValueError(f"{path}: no rows")
    # Processed files are written by `write_jsonl`, one row per line, so row i is line i.
    for lineno, row in enumerate(rows, 1):
        for key in ("tweet", "reply"):
            if not isinstance(row.get(key), str):
                raise ValueError(f"{path}:{lineno}: field {key!r} must be a string, got {row.get(key)!r}")
        value = row.get("engagement")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{path}:{lineno}: field 'engagement' must be a number in [0, 1], got {value!r}")
    return rows


def correlation_metrics(scores: np.ndarray, engagement: np.ndarray) -> dict[str, float | None]:
    """Pearson and Spearman correlation of ``scores`` with ``engagement``, and their mean squared error."""
    constant = np.ptp(scores) == 0 or np.ptp(engagement) == 0
    return {
        "pearson": None if constant else finite_or_none(stats.pearsonr(scores, engagement).statistic),
        "spearman": None if constant else finite_or_none(stats.spearmanr(scores, engagement).statistic),
        "mse": float(np.mean((np.asarray(scores, dtype=np.float64) - engagement) ** 2)),
    }


def evaluate_rewards(
    rewards: Mapping[str, Reward], rows: list[dict], train_mean: float
) -> tuple[dict, dict[str, np.ndarray]]:
    """Score every row with every reward; return flat metrics (``<reward>/pearson`` ...) and the scores.

    ``constant/mse`` is the yardstick for the MSEs: always predicting ``train_mean``, the mean
    engagement of the training pairs. When every row carries the gold score of its reply (the sample),
    each reward's correlation with the gold is added (``<reward>/gold_pearson``, ``.../gold_spearman``),
    and so is the ceiling: how well the gold itself tracks the noisy engagement (``ceiling/...``). No
    reward learned from these likes can be expected to beat it.
    """
    tweets = [r["tweet"] for r in rows]
    replies = [r["reply"] for r in rows]
    engagement = np.array([r["engagement"] for r in rows], dtype=np.float64)
    scores = {name: np.asarray(reward(tweets, replies), dtype=np.float64) for name, reward in rewards.items()}
    metrics: dict = {"test/n_pairs": len(rows), "constant/mse": float(np.mean((engagement - train_mean) ** 2))}
    gold = np.array([r[GOLD_FIELD] for r in rows], dtype=np.float64) if all(GOLD_FIELD in r for r in rows) else None
    for name, score in scores.items():
        metrics.update({f"{name}/{k}": v for k, v in correlation_metrics(score, engagement).items()})
        if gold is not None:
            with_gold = correlation_metrics(score, gold)
            metrics.update({f"{name}/gold_pearson": with_gold["pearson"], f"{name}/gold_spearman": with_gold["spearman"]})
    if gold is not None:
        ceiling = correlation_metrics(gold, engagement)
        metrics.update({"ceiling/pearson": ceiling["pearson"], "ceiling/spearman": ceiling["spearman"]})
    return metrics, scores


def plot_rewards(scores: Mapping[str, np.ndarray], engagement: np.ndarray, path: str | Path, bins: int = 10) -> None:
    """One row per reward: a scatter of score vs engagement, and a calibration curve.

    The calibration panel bins pairs by score deciles and plots each bin's mean engagement against
    its mean score; a calibrated engagement predictor lies on the diagonal.
    """
    fig, axes = new_figure(len(scores), 2, figsize=(10, 4 * len(scores)), squeeze=False)
    for (name, score), (scatter, calib) in zip(scores.items(), axes, strict=True):
        scatter.scatter(score, engagement, s=6, alpha=0.3)
        scatter.set(xlabel=f"{name} reward", ylabel="engagement", title=f"{name}: test pairs")
        edges = np.unique(np.quantile(score, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, max(len(edges) - 2, 0))
        mean_score = [score[which == b].mean() for b in np.unique(which)]
        mean_eng = [engagement[which == b].mean() for b in np.unique(which)]
        calib.plot(mean_score, mean_eng, "o-", label="mean per score decile")
        calib.plot([0, 1], [0, 1], "k--", lw=0.8, label="calibrated")
        calib.set(xlabel=f"{name} reward", ylabel="mean engagement", title=f"{name}: calibration")
        calib.set(xlim=(0, 1), ylim=(0, 1))
        calib.legend(loc="upper left")
    save_figure(fig, path)
