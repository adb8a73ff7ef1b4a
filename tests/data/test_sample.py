import json

import numpy as np
import pytest

from replyrl.data.sample import chat_pairs, sample_rows, simulate_likes
from replyrl.data.schema import REQUIRED_FIELDS, engagement


def _turn(sender, *texts):
    return [{"text": t, "sender": sender, "timestamp": f"2018-05-02T19:38:{i:02d}Z"} for i, t in enumerate(texts)]


CHATS = {
    "c1": {
        "ratings": {"interesting": 10, "witty": 10, "upbeat": 10},
        "messages": [
            _turn("a", "hi", "how are you?"), _turn("b", "good"), _turn("a", "nice"), _turn("b", "bye"), _turn("a", "x")
        ],
    },
    # Unrated chats cannot drive the likes simulation and are skipped.
    "c2": {"messages": [_turn("a", "unrated"), _turn("b", "chat")]},
    "c3": {"ratings": {"interesting": 1, "witty": 1, "upbeat": 1}, "messages": [_turn("c", "q"), _turn("d", "r")]},
}


def test_chat_pairs_use_non_overlapping_adjacent_turns():
    rows, quality = chat_pairs(CHATS)
    # c1 has 5 turns -> pairs (0,1), (2,3); the dangling last turn is unused. c3 -> (0,1).
    assert [(r["tweet"], r["reply"]) for r in rows] == [("hi how are you?", "good"), ("nice", "bye"), ("q", "r")]
    assert [r["tweet_id"] for r in rows] == ["c1/0", "c1/2", "c3/0"]
    assert [r["reply_id"] for r in rows] == ["c1/1", "c1/3", "c3/1"]
    assert rows[0]["tweet_author"] == "a" and rows[0]["reply_author"] == "b"
    np.testing.assert_allclose(quality, [1.0, 1.0, -1.0])


def test_sample_is_deterministic_and_complete(tmp_path):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(CHATS))
    first = sample_rows(2, seed=3, path=path)
    assert first == sample_rows(2, seed=3, path=path)
    for row in first:
        assert set(REQUIRED_FIELDS) <= set(row)
        assert isinstance(row["tweet_likes"], int) and isinstance(row["reply_likes"], int)
    with pytest.raises(ValueError, match="sample_size=4 but .* yields only 3 pairs"):
        sample_rows(4, seed=0, path=path)


def test_simulated_engagement_follows_ratings_and_is_not_degenerate():
    rng = np.random.default_rng(0)
    quality = rng.uniform(-1.0, 1.0, size=10_000)
    tweet_likes, reply_likes = simulate_likes(quality, rng)
    assert (tweet_likes >= 0).all() and (reply_likes >= 0).all()
    eng = np.array([engagement(t, r) for t, r in zip(tweet_likes, reply_likes)])
    # Better-rated chats earn relatively more reply likes...
    assert eng[quality > 0.5].mean() > eng[quality < -0.5].mean() + 0.2
    # ...yet engagement spreads out, so quartile edges are distinct.
    edges = np.quantile(eng, [0.25, 0.5, 0.75])
    assert len(set(edges)) == 3 and (eng == 0).mean() < 0.25 and (eng == 1).mean() < 0.25


def test_packaged_corpus_rows_carry_ids():
    rows = sample_rows(200, seed=0)
    assert len(rows) == 200
    assert all(row["tweet_id"] and row["reply_id"] for row in rows)
    assert len({row["tweet_id"] for row in rows}) == 200
