"""Reward functions in the shape TRL's `GRPOTrainer` calls them.

TRL calls each reward as ``f(prompts=..., completions=..., completion_ids=..., **columns)`` with one
entry per completion, where ``columns`` are the dataset's extra columns repeated alongside (here
``tweet`` and ``group_id``). Scoring each completion against the ``tweet`` it arrived with, and
grouping by the explicit ``group_id`` rather than by position, keeps rewards right however TRL
orders or shuffles a batch. The function's ``__name__`` becomes TRL's log key
``rewards/<name>/mean``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer
from trl.rewards import get_soft_overlong_punishment

from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.reward import RewardConfig
from replyrl.metrics.diversity import distance_to_others
from replyrl.models.encoder import encode
from replyrl.rewards import Reward, load_reward

RewardFunc = Callable[..., list[float]]
DIVERSITY = "diversity"
OVERLONG = "overlong"  # TRL's soft overlong punishment (grpo.overlong_weight)


def _check_finite(name: str, scores: np.ndarray, tweets: Sequence[str], replies: Sequence[str]) -> None:
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        i = int(bad[0])
        raise FloatingPointError(
            f"reward {name!r} returned {scores[i]} for {bad.size} of {len(scores)} completions, e.g. "
            f"tweet={tweets[i]!r} reply={replies[i]!r}; stopping before it reaches the policy update"
        )


def as_reward_func(reward: Reward) -> RewardFunc:
    """Adapt one of our `Reward` objects: each completion is scored against its own ``tweet`` column."""

    def reward_func(completions: list[str], tweet: list[str], **kwargs) -> list[float]:
        if len(tweet) != len(completions):
            raise ValueError(f"reward {reward.name!r}: {len(completions)} completions but {len(tweet)} tweets")
        scores = np.asarray(reward(list(tweet), list(completions)), dtype=np.float64).reshape(-1)
        if len(scores) != len(completions):
            raise ValueError(f"reward {reward.name!r} returned {len(scores)} scores for {len(completions)} completions")
        _check_finite(reward.name, scores, tweet, completions)
        return scores.tolist()

    reward_func.__name__ = reward.name
    return reward_func


def group_distance_to_others(embeddings: np.ndarray, group_ids: Sequence[Hashable]) -> np.ndarray:
    """Each row's mean cosine distance to the other rows that share its group id (0 if alone)."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, gid in enumerate(group_ids):
        members[gid].append(i)
    out = np.zeros(len(group_ids))
    for idx in members.values():
        out[idx] = distance_to_others(embeddings[idx])
    return out


def diversity_reward_func(encoder: SentenceTransformer, batch_size: int = 64) -> RewardFunc:
    """The original recipe's remedy for mode collapse: reward a reply for differing from its siblings.

    A completion's bonus is its mean semantic (encoder cosine) distance to the other completions
    sampled for the same prompt, i.e. the same ``group_id``.
    """

    def diversity(completions: list[str], group_id: list[Hashable], **kwargs) -> list[float]:
        if len(group_id) != len(completions):
            raise ValueError(f"diversity: {len(completions)} completions but {len(group_id)} group ids")
        scores = group_distance_to_others(encode(encoder, completions, batch_size), group_id)
        _check_finite(DIVERSITY, scores, kwargs.get("tweet", completions), completions)
        return scores.tolist()

    diversity.__name__ = DIVERSITY
    return diversity


def build_reward_funcs(
    names: Sequence[str],
    reward_config: RewardConfig,
    encoder: SentenceTransformer,
    reward_model_dir: str | Path | None,
    batch_size: int = 64,
    config: GRPOStageConfig | None = None,
) -> list[RewardFunc]:
    """TRL reward functions for ``names`` ("heuristic", "learned", "diversity", "overlong": the last needs
    ``config``'s lengths), sharing one encoder."""
    def build(name: str) -> RewardFunc:
        if name == DIVERSITY:
            return diversity_reward_func(encoder, batch_size)
        if name == OVERLONG:
            if config is None:
                raise ValueError("the overlong punishment needs the grpo config (max_completion_length)")
            # TRL's function, renamed so its log key is rewards/overlong/mean beside the others.
            punishment = get_soft_overlong_punishment(config.max_completion_length, config.overlong_cache_tokens)
            punishment.__name__ = OVERLONG
            return punishment
        return as_reward_func(load_reward(name, reward_config, encoder, reward_model_dir, batch_size))

    return [build(name) for name in names]


def reward_weights(config: GRPOStageConfig) -> dict[str, float]:
    """Name -> weight of every reward term GRPO sums (zero-weight terms left out)."""
    task = {"heuristic": {"heuristic": 1.0}, "learned": {"learned": 1.0},
            "mix": {"heuristic": config.mix_heuristic_weight, "learned": config.mix_learned_weight}}[config.reward_type]
    weights = {name: w for name, w in task.items() if w > 0}
    if config.diversity_weight > 0:
        weights[DIVERSITY] = config.diversity_weight
    if config.overlong_weight > 0:
        weights[OVERLONG] = config.overlong_weight
    return weights
