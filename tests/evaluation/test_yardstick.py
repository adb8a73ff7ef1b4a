"""The yardstick: degenerate replies must lose to human replies under the gold (gold v2's own bar)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replyrl.data.degenerate import KINDS, MAX_BEAT_SHARE, degenerate_replies, other_conversation_replies
from replyrl.data.gold import context_of, gold_scores
from replyrl.data.sample import sample_rows
from replyrl.evaluation.yardstick import beat_rates, yardstick_markdown, yardstick_metrics

N_TWEETS = 200
# Measured gaps of gold v2 (README "The yardstick"): corpus word associations tell a tweet's own reply
# from another conversation's, and a stock question from a reply, only about 60% of the time. If
# either starts passing, strict xfail says so and the README must change.
KNOWN_GAPS = {"question template", "reply to another conversation"}


@pytest.fixture(scope="module")
def gold_table() -> pd.DataFrame:
    rows = sample_rows(1000, seed=3)[:N_TWEETS]
    judge = {"gold": lambda tweets, replies, pairs: gold_scores(tweets, replies, [context_of(r) for r in pairs])}
    return beat_rates(judge, rows, seed=1).set_index("kind")


@pytest.mark.parametrize("kind", [
    pytest.param(kind, marks=pytest.mark.xfail(strict=True, reason="measured gap of gold v2")) if kind in KNOWN_GAPS
    else kind for kind in MAX_BEAT_SHARE
])
def test_gold_ranks_each_degenerate_kind_below_the_human_reply(gold_table, kind) -> None:
    assert gold_table.at[kind, "beats"] <= MAX_BEAT_SHARE[kind], gold_table.loc[kind].to_dict()


def test_appending_a_question_to_the_human_reply_moves_the_gold_little(gold_table) -> None:
    # Gold v1 gave this cheap trick +0.094, more than any difference between models; v2 caps cues.
    assert abs(gold_table.at["reply + what about you", "mean_diff"]) < 0.06


def test_beat_rates_count_strict_wins_per_kind_and_judge() -> None:
    # A judge that scores by length: the empty reply never wins, a copy + question always does
    # (every tweet here is longer than its human reply).
    rows = [{"tweet": f"tweet number {i} about my lovely dog", "reply": "ok", "conversation_id": str(i)}
            for i in range(6)]
    table = beat_rates({"length": lambda tweets, replies, pairs: np.array([len(r) for r in replies])}, rows)
    by_kind = table.set_index("kind")
    assert by_kind.at["empty", "beats"] == 0.0 and by_kind.at["copy + question", "beats"] == 1.0
    assert by_kind.at["reply to another conversation", "ties"] == 1.0  # every human reply is "ok"
    assert set(table["kind"]) == set(KINDS) and not by_kind.at["copy", "passes"]
    metrics = yardstick_metrics(table, len(rows))
    assert metrics["length.empty.beats"] == 0.0 and metrics["length.passes"] is False
    assert "| copy + question | 10% | **100%** |" in yardstick_markdown(table, len(rows))


def test_degenerate_kinds_are_deterministic_and_other_replies_come_from_other_conversations() -> None:
    tweets, replies, groups = ["a b c d e", "f g h i j", "k l m n o"], ["r1", "r2", "r3"], ["x", "y", "y"]
    others = other_conversation_replies(replies, groups, seed=0)
    assert others[0] in ("r2", "r3") and others[1] == "r1" and others[2] == "r1"
    for kind in KINDS:
        assert degenerate_replies(tweets, replies, others, kind, 5) == degenerate_replies(tweets, replies, others, kind, 5)
    with pytest.raises(ValueError, match="unknown degenerate kind"):
        degenerate_replies(tweets, replies, others, "nonsense", 0)
