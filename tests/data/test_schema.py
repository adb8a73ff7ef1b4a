import pytest

from replyrl.data.groups import group_key
from replyrl.data.schema import engagement


@pytest.mark.parametrize(
    ("tweet_likes", "reply_likes", "expected"),
    [
        (10, 3, 0.3),  # plain ratio
        (4, 10, 1.0),  # a reply more liked than its tweet is capped at 1
        (0, 0, 0.0),  # nobody liked anything: no engagement, not a division by zero
        (0, 2, 1.0),  # an unliked tweet counts as 1 like, so any reply like hits the cap
        (1, 0, 0.0),
    ],
)
def test_engagement(tweet_likes, reply_likes, expected):
    assert engagement(tweet_likes, reply_likes) == pytest.approx(expected)


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
