"""What a training run leaves for a person: stage metrics from the log history, and PNGs of its curves.

The PNGs are for offline viewing: `dvc plots show` renders HTML that loads its chart library online.
Both work from `trainer.state.log_history`, which survives a resume from a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from replyrl.io import new_figure, save_figure


def _series(log_history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    rows = [row for row in log_history if key in row]
    return [row["step"] for row in rows], [row[key] for row in rows]


def plot_sft_losses(log_history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Train/eval loss (and, for polychromic, CE and set diversity) over steps."""
    polychromic = any("polychromic/set_diversity" in row for row in log_history)
    fig, axes = new_figure(1, 2 if polychromic else 1, figsize=(12 if polychromic else 6, 4), squeeze=False)
    losses = axes[0][0]
    for key, label in [("loss", "train loss"), ("ce_loss", "train CE"), ("eval_loss", "eval loss (CE)")]:
        steps, values = _series(log_history, key)
        if steps:
            losses.plot(steps, values, marker="o" if key == "eval_loss" else None, label=label)
    losses.set(xlabel="step", title="loss")
    losses.legend()
    if polychromic:
        diversity = axes[0][1]
        diversity.plot(*_series(log_history, "polychromic/set_diversity"), label="set diversity")
        diversity.plot(*_series(log_history, "polychromic/set_score"), label="f(set)")
        diversity.set(xlabel="step", title="sampled sets")
        diversity.legend()
    save_figure(fig, path)


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def summarize_grpo(
    log_history: Sequence[dict[str, Any]], reward_names: Sequence[str], kl_alarm: float, monitors: Sequence[str] = ()
) -> dict[str, Any]:
    """GRPO stage metrics: reward trend (total and per term), monitor trends (e.g. the gold, never trained
    on), reply length, KL, safeguards, time."""
    logs = [row for row in log_history if "reward" in row]
    if not logs:
        return {"steps": 0}
    # 10% of the logged steps, rounded up: 14 demo steps compare two steps at each end, not one.
    tenth = math.ceil(len(logs) / 10)

    def trend(key: str, name: str) -> dict[str, float | None]:
        values = [row[key] for row in logs if row.get(key) is not None]
        return {f"{name}/mean": _mean(values), f"{name}/final": values[-1] if values else None,
                f"{name}/first_10pct": _mean(values[:tenth]), f"{name}/last_10pct": _mean(values[-tenth:])}

    # `reward` is the weighted total GRPO maximises; `reward/<name>` each term before weighting.
    metrics: dict[str, Any] = {"steps": logs[-1]["step"], **trend("reward", "reward")}
    metrics["reward/delta"] = metrics["reward/last_10pct"] - metrics["reward/first_10pct"]
    for name in reward_names:
        metrics.update(trend(f"rewards/{name}/mean", f"reward/{name}"))
    for name in monitors:
        metrics.update(trend(f"{name}/mean", name))
        if metrics[f"{name}/first_10pct"] is not None:
            metrics[f"{name}/delta"] = metrics[f"{name}/last_10pct"] - metrics[f"{name}/first_10pct"]
    metrics.update(trend("completions/mean_length", "completion_tokens"))
    kls = [row["kl"] for row in logs if row.get("kl") is not None]
    metrics.update({"kl/mean": _mean(kls), "kl/max": max(kls, default=None), "kl/final": kls[-1] if kls else None,
                    "kl/alarm_steps": sum(kl > kl_alarm for kl in kls)})
    metrics["frac_reward_zero_std/mean"] = _mean([row["frac_reward_zero_std"] for row in logs])
    metrics["train_time_s"] = float(sum(row.get("step_time", 0.0) for row in logs))
    return metrics


def plot_grpo_history(
    log_history: Sequence[dict[str, Any]], reward_names: Sequence[str], kl_alarm: float, path: str | Path,
    monitors: Sequence[str] = (),
) -> None:
    """Rewards (and monitors such as the gold, dashed: not trained on), KL to the warm-start, reply length
    and the share of groups with no learning signal over GRPO steps."""
    logs = [row for row in log_history if "reward" in row]
    steps = [row["step"] for row in logs]
    fig, (rewards, kl, length, flat) = new_figure(1, 4, figsize=(20, 4))
    for key, label in [("reward", "total (weighted)"), *((f"rewards/{n}/mean", n) for n in reward_names)]:
        rewards.plot(steps, [row.get(key) for row in logs], label=label)
    for name in monitors:
        rewards.plot(steps, [row.get(f"{name}/mean") for row in logs], "k--", label=f"{name} (not trained on)")
    rewards.set(xlabel="step", title="mean score of the rollouts per step")
    rewards.legend()
    kl.plot(steps, [row.get("kl") for row in logs])
    kl.axhline(kl_alarm, color="r", ls="--", lw=0.8, label=f"kl_alarm {kl_alarm:g}")
    kl.set_yscale("symlog", linthresh=1e-3)  # typical KLs (1e-3..1) and the alarm (10) on one axis; step 0 is 0
    kl.set(xlabel="step", title="KL to the warm-start")
    kl.legend()
    length.plot(steps, [row.get("completions/mean_length") for row in logs])
    length.set(xlabel="step", title="mean reply length (tokens)")
    # A group whose rewards are all equal gets zero advantages: it teaches nothing.
    flat.plot(steps, [row.get("frac_reward_zero_std") for row in logs])
    flat.set(xlabel="step", ylim=(-0.05, 1.05), title="share of groups with equal rewards")
    save_figure(fig, path)
