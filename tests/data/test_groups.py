"""The group key and the grouped hold-out: no group on both sides of a split."""

import numpy as np
import pytest

from replyrl.data.groups import group_key, holdout_groups, holdout_mask, tweet_key


def test_group_key_prefers_tweet_id_even_when_falsy():
    # Two replies to the same tweet id share a group even if the tweet text was edited in between.
    assert group_key({"tweet_id": "t1", "tweet": "a"}) == group_key({"tweet_id": "t1", "tweet": "b"})
    # Id 0 is an id, not "absent".
    assert group_key({"tweet_id": 0, "tweet": "a"}) == "id:0"


def test_group_key_falls_back_to_tweet_text():
    assert group_key({"tweet": "same text"}) == group_key({"tweet": "same text", "reply": "other"})
    assert group_key({"tweet": "one"}) != group_key({"tweet": "two"})
    # A tweet whose text looks like an id does not join that id's group.
    assert group_key({"tweet": "7"}) != group_key({"tweet_id": 7, "tweet": "x"})


def test_validation_slice_holds_out_whole_tweets():
    rows = [{"tweet": f"t{i // 3}", "reply": f"r{i}"} for i in range(300)]  # 100 tweets x 3 replies
    mask = holdout_mask(rows, 0.2, seed=1)
    by_tweet = {}
    for row, held in zip(rows, mask):
        by_tweet.setdefault(row["tweet"], set()).add(bool(held))
    assert all(len(v) == 1 for v in by_tweet.values())  # no tweet on both sides
    assert mask.sum() == 20 * 3
    np.testing.assert_array_equal(mask, holdout_mask(rows, 0.2, seed=1))  # deterministic
    with pytest.raises(ValueError, match="at least 2 distinct groups"):
        holdout_mask(rows[:3], 0.2, seed=1)


def test_validation_split_keeps_each_tweet_on_one_side():
    rows = [{"tweet_id": f"t{i // 2}", "tweet": f"tweet {i // 2}", "reply": f"reply {i}"} for i in range(40)]
    train, val = holdout_groups(rows, 0.25, seed=0)
    assert len(train) + len(val) == 40 and val
    assert not {r["tweet_id"] for r in train} & {r["tweet_id"] for r in val}


def test_conversation_id_is_the_group_and_the_tweet_stays_the_tweet():
    a = {"conversation_id": "c1", "tweet_id": "c1/0", "tweet": "x"}
    b = {"conversation_id": "c1", "tweet_id": "c1/2", "tweet": "y"}
    assert group_key(a) == group_key(b) == "conversation:c1"
    assert tweet_key(a) != tweet_key(b)
    # An integer conversation id 0 is an id; it never collides with a tweet key.
    assert group_key({"conversation_id": 0, "tweet": "z"}) == "conversation:0"
    assert group_key({"tweet_id": "conversation:0", "tweet": "z"}) != "conversation:0"


def test_validation_slice_holds_out_whole_conversations():
    # 60 conversations of 4 pairs each, every pair a different tweet: grouping by tweet would split them.
    rows = [{"conversation_id": i // 4, "tweet_id": i, "tweet": f"t{i}", "reply": f"r{i}"} for i in range(240)]
    train, val = holdout_groups(rows, 0.2, seed=3)
    assert len(val) == 12 * 4
    assert not {r["conversation_id"] for r in train} & {r["conversation_id"] for r in val}
