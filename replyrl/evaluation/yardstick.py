"""The yardstick: a judge is fit to judge only if degenerate replies lose to human replies under it.

For held-out (tweet, human reply) pairs, every kind of `replyrl.data.degenerate.KINDS` is scored by
each judge beside the tweet's own human reply; a kind "beats" the human reply on a tweet when it
scores strictly higher. `MAX_BEAT_SHARE` is the bar: at most 10% of tweets for a degenerate reply,
30% for a human reply to another conversation (response selection).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from replyrl.data.degenerate import (
    KINDS,
    LEARNED_REWARD_KINDS,
    MAX_BEAT_SHARE,
    degenerate_replies,
    other_conversation_replies,
)
from replyrl.data.groups import group_key

# (tweets, replies, rows) -> one score per pair; ``rows[i]`` is the human pair whose tweet is tweets[i].
Judge = Callable[[Sequence[str], Sequence[str], Sequence[dict]], np.ndarray]


def beat_rates(judges: Mapping[str, Judge], rows: Sequence[dict], seed: int = 0) -> pd.DataFrame:
    """One row per (judge, kind): ``beats``, the share of ``rows``' tweets where the kind scores strictly
    above the human reply; ``ties``; ``mean_diff``, its mean score minus the human reply's; ``bar``
    (`MAX_BEAT_SHARE`, NaN where there is none) and ``passes``. Each judge scores everything in one call."""
    tweets, replies = [r["tweet"] for r in rows], [r["reply"] for r in rows]
    others = other_conversation_replies(replies, [group_key(r) for r in rows], seed)
    candidates = {"human": replies} | {kind: degenerate_replies(tweets, replies, others, kind, seed) for kind in KINDS}
    n = len(rows)
    records = []
    for name, judge in judges.items():
        flat = np.asarray(judge(tweets * len(candidates), [text for texts in candidates.values() for text in texts],
                                list(rows) * len(candidates)), dtype=np.float64)
        scores = dict(zip(candidates, flat.reshape(len(candidates), n)))
        human = scores.pop("human")
        for kind, score in scores.items():
            bar = MAX_BEAT_SHARE.get(kind, np.nan)
            beats = float(np.mean(score > human))
            records.append({"judge": name, "kind": kind, "beats": beats, "ties": float(np.mean(score == human)),
                            "mean_diff": float(np.mean(score - human)), "bar": bar,
                            "passes": bool(beats <= bar) if np.isfinite(bar) else None})
    return pd.DataFrame(records)


def yardstick_metrics(table: pd.DataFrame, n_tweets: int) -> dict[str, float | int | bool | None]:
    """Flat metrics ``{judge}.{kind}.beats`` (and ``.mean_diff``), ``{judge}.passes`` (every bar met)."""
    metrics: dict[str, float | int | bool | None] = {"n_tweets": n_tweets}
    for row in table.itertuples():
        key = f"{row.judge}.{row.kind.replace(' ', '_')}"
        metrics[f"{key}.beats"], metrics[f"{key}.mean_diff"] = round(row.beats, 4), round(row.mean_diff, 4)
    for judge, group in table.groupby("judge", sort=False):
        metrics[f"{judge}.passes"] = bool(group["passes"].dropna().all())
    return metrics


def yardstick_markdown(table: pd.DataFrame, n_tweets: int) -> str:
    """The beat-rate table, one column per judge, with each kind's bar; a learned-reward cell of a kind
    it was trained on is marked *."""
    judges = list(dict.fromkeys(table["judge"]))
    wide = table.pivot(index="kind", columns="judge", values="beats").reindex(list(KINDS))
    lines = [f"Share of {n_tweets} held-out tweets where the reply beats the tweet's own human reply (scores strictly "
             "higher); bar: the most a fit judge allows. `reply + what about you` is the human reply plus a question: "
             "its row is the mean score change instead (a cheap trick should move little). * = a kind the learned "
             "reward was trained on (negatives of training conversations): its cell shows memory, not generalisation.",
             "",
             "| reply | bar | " + " | ".join(judges) + " |", "|---" * (len(judges) + 2) + "|"]
    diffs = table.pivot(index="kind", columns="judge", values="mean_diff")
    for kind in KINDS:
        bar = MAX_BEAT_SHARE.get(kind)
        if bar is None:
            cells = [f"{diffs.at[kind, j]:+.3f}" for j in judges]
            lines.append(f"| {kind} (mean change) | — | " + " | ".join(cells) + " |")
            continue
        cells = []
        for j in judges:
            value = wide.at[kind, j]
            mark = "*" if j == "learned" and kind in LEARNED_REWARD_KINDS else ""
            cells.append(f"{'**' if value > bar else ''}{value:.0%}{'**' if value > bar else ''}{mark}")
        lines.append(f"| {kind} | {bar:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
