"""Which rows belong together: the one definition of a group, and the one grouped hold-out.

Every place that keeps rows together (the test/phase split, validation slices, evaluation's pairing
of a tweet with its human replies) groups by `group_key`, so no group is on both sides of a split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import GroupShuffleSplit


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


def holdout_mask(rows: Sequence[Mapping[str, Any]], fraction: float, seed: int) -> np.ndarray:
    """Which rows are held out: ``fraction`` of the groups (rounded up), each group whole on one side.

    The one validation slice of the project: SFT's eval loss and the learned reward's early stopping.
    """
    groups = [group_key(row) for row in rows]
    if len(set(groups)) < 2:
        raise ValueError(f"need at least 2 distinct tweets to hold some out, got {len(set(groups))}")
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
