"""GRPO's reward terms as TRL calls them: the weights each param turns on, and TRL's overlong punishment."""

from __future__ import annotations

import pytest

from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.loader import ConfigError
from replyrl.configs.reward import RewardConfig
from replyrl.training.grpo_rewards import OVERLONG, build_reward_funcs, reward_weights


def test_overlong_term_is_weighted_when_on_and_left_out_at_zero() -> None:
    assert reward_weights(GRPOStageConfig(overlong_weight=0.2))[OVERLONG] == 0.2
    assert OVERLONG not in reward_weights(GRPOStageConfig(overlong_weight=0.0))


def test_overlong_punishment_is_zero_until_the_cache_then_falls_to_minus_one_at_the_cap() -> None:
    config = GRPOStageConfig(max_completion_length=32, overlong_cache_tokens=8, overlong_weight=0.1)
    (punish,) = build_reward_funcs([OVERLONG], RewardConfig(), encoder=None, reward_model_dir=None, config=config)
    assert punish.__name__ == OVERLONG  # TRL logs it as rewards/overlong/mean
    lengths = [5, 24, 28, 32]
    assert punish(completion_ids=[[7] * n for n in lengths]) == [0.0, 0.0, -0.5, -1.0]


def test_overlong_punishment_needs_the_grpo_config() -> None:
    with pytest.raises(ValueError, match="max_completion_length"):
        build_reward_funcs([OVERLONG], RewardConfig(), encoder=None, reward_model_dir=None)


@pytest.mark.parametrize("cache", [0, 33])
def test_overlong_cache_must_fit_in_the_completion(cache: int) -> None:
    with pytest.raises(ConfigError, match="grpo.overlong_cache_tokens"):
        GRPOStageConfig(max_completion_length=32, overlong_cache_tokens=cache, overlong_weight=0.1)
    GRPOStageConfig(max_completion_length=32, overlong_cache_tokens=cache, overlong_weight=0.0)  # off: not used
