"""The data contract: what one input row (a tweet and one reply to it) must and may contain.

Input is JSONL, one (tweet, reply) pair per line. ``prepare`` checks every row against this contract;
later stages read only prepared rows and rely on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TEXT_FIELDS = ("tweet", "reply")
LIKE_FIELDS = ("tweet_likes", "reply_likes")
REQUIRED_FIELDS = TEXT_FIELDS + LIKE_FIELDS
# Kept when present (as are any other fields). Ids must be str or int: they decide the split groups.
ID_FIELDS = ("tweet_id", "reply_id")
OPTIONAL_FIELDS = ID_FIELDS + ("tweet_author", "reply_author", "created_at")


def engagement(tweet_likes: int, reply_likes: int) -> float:
    """Reply likes relative to the tweet's likes, capped at 1.

    ``max(tweet_likes, 1)`` keeps a reply to an unliked tweet finite; the cap stops a viral reply
    under a quiet tweet from dominating the scale.

    >>> engagement(10, 3)
    0.3
    >>> engagement(0, 2)
    1.0
    """
    return min(reply_likes / max(tweet_likes, 1), 1.0)


def group_key(row: Mapping[str, Any]) -> str:
    """The tweet a reply belongs to: ``tweet_id`` when present, else the tweet text.

    The split keeps all replies of one group in one split, and evaluation groups replies by it.
    The prefixes keep an id from colliding with a tweet whose text happens to equal it.

    >>> group_key({"tweet_id": 7, "tweet": "hi"})
    'id:7'
    >>> group_key({"tweet": "hi"})
    'text:hi'
    """
    tweet_id = row.get("tweet_id")
    return f"id:{tweet_id}" if tweet_id is not None else f"text:{row['tweet']}"
