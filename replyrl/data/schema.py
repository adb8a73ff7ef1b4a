"""The data contract: what one input row (a tweet and one reply to it) must and may contain.

Input is JSONL, one (tweet, reply) pair per line. ``prepare`` checks every row against this contract;
later stages read only prepared rows and rely on it.
"""

from __future__ import annotations

TEXT_FIELDS = ("tweet", "reply")
LIKE_FIELDS = ("tweet_likes", "reply_likes")
REQUIRED_FIELDS = TEXT_FIELDS + LIKE_FIELDS
# Kept when present (as are any other fields). Ids must be str or int: they decide the split groups.
# `conversation_id` groups the pairs of one thread (several tweets, each with replies): when present it,
# not the tweet, is the unit no split may divide (`groups.group_key`).
ID_FIELDS = ("tweet_id", "reply_id", "conversation_id")
# Only the built-in sample has these: the chat's human ratings (the gold's context) and the gold
# engagement of the human reply (`gold.py`). Evaluation reads them; training never does.
CONTEXT_FIELD = "chat_ratings"
GOLD_FIELD = "gold"
OPTIONAL_FIELDS = ID_FIELDS + ("tweet_author", "reply_author", "created_at", CONTEXT_FIELD, GOLD_FIELD)


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
