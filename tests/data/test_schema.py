import pytest

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
