"""Which rows belong together: the one definition of a group, and the one grouped hold-out.

Two keys, one job each. `tweet_key` says which tweet a reply answers (prompts are built once per
tweet; evaluation collects a tweet's human replies). `group_key` is the unit that carries the
signal and that no split may divide: the conversation when rows say which one they come from
(``conversation_id``), else the tweet. Every place that keeps rows together (the test/phase split,
the SFT and reward validation slices, evaluation's pairing of models) groups by `group_key`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def tweet_key(row: Mapping[str, Any]) -> str:
    """The tweet a reply belongs to: ``tweet_id`` when present, else the tweet text.

    The prefixes keep an id from colliding with a tweet whose text happens to equal it.

    >>> tweet_key({"tweet_id": 7, "tweet": "hi"})
    'id:7'
    >>> tweet_key({"tweet": "hi"})
    'text:hi'
    """
    tweet_id = row.get("tweet_id")
    return f"id:{tweet_id}" if tweet_id is not None else f"text:{row['tweet']}"


def group_key(row: Mapping[str, Any]) -> str:
    """The split unit of a row: its ``conversation_id`` when present, else its tweet (`tweet_key`).

    >>> group_key({"conversation_id": "c9", "tweet_id": 7, "tweet": "hi"})
    'conversation:c9'
    >>> group_key({"tweet_id": 7, "tweet": "hi"})
    'id:7'
    """
    conversation = row.get("conversation_id")
    return f"conversation:{conversation}" if conversation is not None else tweet_key(row)


def holdout_mask(rows: Sequence[Mapping[str, Any]], fraction: float, seed: int) -> np.ndarray:
    """Which rows are held out: ``fraction`` of the groups (rounded up), each group whole on one side.

    The one validation slice of the project: SFT's eval loss and the learned reward's early stopping.
    """
    groups = [group_key(row) for row in rows]
    if len(set(groups)) < 2:
        raise ValueError(f"need at least 2 distinct groups (conversations or tweets) to hold some out, "
                         f"got {len(set(groups))}")
    # Imported here: sklearn adds ~2 s to the start of every stage that only needs the keys above.
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    _, held_out = next(splitter.split(rows, groups=groups))
    mask = np.zeros(len(rows), dtype=bool)
    mask[held_out] = True
    return mask


def holdout_groups(
    rows: Sequence[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """:func:`holdout_mask` as (kept rows, held-out rows), each in input order."""
    mask = holdout_mask(rows, fraction, seed)
    return [row for row, held in zip(rows, mask) if not held], [row for row, held in zip(rows, mask) if held]
