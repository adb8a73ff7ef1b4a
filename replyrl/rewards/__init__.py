"""Rewards for (tweet, reply) pairs: one batched interface, picked by name.

Every reward is a plain callable ``reward(tweets, replies) -> np.ndarray`` (one float per pair)
with a ``name``; GRPO, generation scoring and evaluation all call rewards this way. The sentence
encoder is loaded once by the caller and shared by every reward built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from sentence_transformers import SentenceTransformer

from replyrl.configs.reward import RewardConfig
from replyrl.rewards.heuristic import HeuristicReward
from replyrl.rewards.learned import LearnedReward


@runtime_checkable
class Reward(Protocol):
    """A batched reward: ``tweets[i]`` and ``replies[i]`` form pair ``i``; returns one float per pair."""

    name: str

    def __call__(self, tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray: ...


RewardFactory = Callable[[RewardConfig, SentenceTransformer, Path | None, int], Reward]


def make_heuristic(
    config: RewardConfig, encoder: SentenceTransformer, reward_model_dir: Path | None, batch_size: int
) -> Reward:
    """The original recipe's heuristic (`reward.heuristic` params); ``reward_model_dir`` is unused."""
    return HeuristicReward(config.heuristic, encoder, batch_size)


def make_learned(
    config: RewardConfig, encoder: SentenceTransformer, reward_model_dir: Path | None, batch_size: int
) -> Reward:
    """The engagement model trained by the `reward` stage, read from ``reward_model_dir``."""
    if reward_model_dir is None:
        raise ValueError("the learned reward needs the reward model folder (the `reward` stage's output)")
    return LearnedReward.load(reward_model_dir, encoder, batch_size)


REWARDS: dict[str, RewardFactory] = {"heuristic": make_heuristic, "learned": make_learned}


def load_reward(
    kind: str,
    reward_config: RewardConfig,
    encoder: SentenceTransformer,
    reward_model_dir: str | Path | None = None,
    batch_size: int = 64,
) -> Reward:
    """Build the reward called ``kind`` (a key of :data:`REWARDS`: "heuristic" or "learned")."""
    if kind not in REWARDS:
        raise ValueError(f"unknown reward {kind!r}; choose one of {sorted(REWARDS)}")
    return REWARDS[kind](reward_config, encoder, None if reward_model_dir is None else Path(reward_model_dir), batch_size)


__all__ = ["REWARDS", "HeuristicReward", "LearnedReward", "Reward", "load_reward"]
