"""TRL's GRPO loss switches (`grpo.<switch>`): each reaches TRL's config, and one step of TRL's loss through
the shared-prefix forward (`replyrl.models.shared_prefix`) equals the same step through TRL's own forward."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from trl import GRPOConfig

from replyrl.configs.grpo import GRPO_LOSS_TYPES, TRL_LOSS_SWITCHES, GRPOStageConfig
from replyrl.configs.loader import ConfigError
from replyrl.models import shared_prefix
from replyrl.models.policy import load_policy
from replyrl.training import grpo_trainer
from replyrl.training.grpo import phase2_dataset
from replyrl.training.grpo_rewards import as_reward_func
from tests.training.test_grpo import PROMPT, ROWS, LengthReward, tiny_config, warm_start  # noqa: F401 (fixture)

# What each loss_type needs besides itself (GRPOStageConfig rejects it otherwise). cispo's cap binds at 1.2
# on the perturbed ratios below.
LOSS_TYPE_NEEDS = {"cispo": {"epsilon_high": 1.2}, "luspo": {"importance_sampling_level": "sequence"}}
# One non-default value of each switch, and every loss_type.
SWITCHES = {
    # Clips need num_iterations > 1 (the config rejects them at 1). Upper clip 2: a few positive-advantage
    # tokens' ratios below are in (1.2, 2].
    "epsilon_high": {"epsilon_high": 1.0, "num_iterations": 2},
    "delta": {"delta": 1.3, "num_iterations": 2},
    "sequence ratios": {"importance_sampling_level": "sequence"},
    "mask_truncated_completions": {"mask_truncated_completions": True},
    "top_entropy_quantile": {"top_entropy_quantile": 0.2},
    "entropy_coef": {"entropy_coef": 0.1},
    # A target above any entropy of the tiny model: the controller raises the coefficient after step 1.
    "adaptive entropy": {"use_adaptive_entropy": True, "entropy_coef": 0.1, "entropy_target": 100.0,
                         "entropy_coef_min": 0.05, "entropy_coef_max": 0.5, "entropy_coef_delta": 0.02},
    "sapo temperatures": {"loss_type": "sapo", "sapo_temperature_pos": 0.5, "sapo_temperature_neg": 2.0},
    "vespo k and lambda": {"loss_type": "vespo", "vespo_k_pos": 1.0, "vespo_lambda_pos": 2.0, "vespo_k_neg": 2.0,
                           "vespo_lambda_neg": 1.0},
    **{f"loss_type {loss}": {"loss_type": loss, **LOSS_TYPE_NEEDS.get(loss, {})} for loss in GRPO_LOSS_TYPES},
}
# (words, ends with EOS) of each rollout, two groups of three with different lengths (so different rewards):
# rows 1 and 5 stop at max_completion_length (6) without EOS (truncated), row 3 reaches it with EOS, row 4
# is EOS alone.
ROLLOUTS = [(1, True), (6, False), (3, True), (5, True), (0, True), (6, False)]
TRUNCATED = [1, 5]
ALL_TRUNCATED = [(6, False)] * 6


@pytest.fixture(scope="module")
def merged(warm_start: Path):
    return load_policy(warm_start, merge=True)


def build(merged, overrides: dict, out: Path, shared: bool) -> grpo_trainer.ReplyGRPOTrainer:
    """A trainer on the tiny warm-start with ``overrides``; ``shared=False`` leaves TRL's own forward in place.
    Both variants get the same random LoRA weights (B nonzero, so A has gradients and the policy is not the
    reference)."""
    model, tokenizer = merged
    with pytest.MonkeyPatch.context() as patch:
        if not shared:
            patch.setattr(grpo_trainer, "add_shared_prefix_forward", lambda *args, **kwargs: None)
        trainer = grpo_trainer.build_trainer(
            tiny_config(**overrides), copy.deepcopy(model), tokenizer, phase2_dataset(ROWS, tokenizer, PROMPT),
            [as_reward_func(LengthReward())], [1.0], output_dir=out, seed=0)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in trainer.model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, 0.2, generator=generator)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which these steps skip
    return trainer


def rollouts(trainer: grpo_trainer.ReplyGRPOTrainer, shapes: list[tuple[int, bool]]) -> dict:
    """TRL's batch (masks, rewards, advantages, reference log-probs) for fixed completions of ``shapes``: the
    sampler is replaced, everything after it is TRL's."""
    tokenizer = trainer.processing_class
    words = tokenizer(" fine thanks a lot my friend indeed", add_special_tokens=False)["input_ids"]
    completions = [words[row % 2: row % 2 + n] + [tokenizer.eos_token_id] * eos for row, (n, eos) in enumerate(shapes)]
    trainer._generate_single_turn = lambda *args, **kwargs: ([list(ids) for ids in completions], None)
    dataset = trainer.train_dataset
    return trainer._generate_and_score_completions([row for row in dataset.select(range(2)) for _ in range(3)])


def off_policy(trainer: grpo_trainer.ReplyGRPOTrainer, inputs: dict) -> dict:
    """``inputs`` as in a later iteration of num_iterations (mu): old log-probs off the current ones by
    N(0, 0.5), so the ratios reach both sides of every clip (at ratio 1 most switches do nothing)."""
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    with torch.no_grad():
        width = inputs["completion_ids"].size(1)
        logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, width)
    noise = torch.randn(logps.shape, generator=torch.Generator().manual_seed(0))
    return {**inputs, "old_per_token_logps": logps + 0.5 * noise}


def steps(trainer: grpo_trainer.ReplyGRPOTrainer, inputs: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Loss and LoRA gradients of a step without an update; with adaptive entropy control of two, the second
    applying what the controller measured in the first (its first step never has a bonus)."""
    out = []
    for _ in range(2 if trainer.use_adaptive_entropy else 1):
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, inputs)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.requires_grad])
        out.append((loss.detach(), grads))
    return out


@pytest.fixture(scope="module")
def default_step(merged, tmp_path_factory: pytest.TempPathFactory) -> torch.Tensor:
    """LoRA gradients of the default config's step, to check that each switch changes the step."""
    trainer = build(merged, {}, tmp_path_factory.mktemp("default"), shared=True)
    return steps(trainer, off_policy(trainer, rollouts(trainer, ROLLOUTS)))[-1][1]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"loss_type": "ppo"}, "grpo.loss_type: 'ppo' is not allowed; choose one of ("),
    ({"importance_sampling_level": "reply"}, "grpo.importance_sampling_level: 'reply' is not allowed; choose one of"),
    # cispo's cap is on the weight itself: TRL's null would cap it at epsilon (0.2).
    ({"loss_type": "cispo"}, "grpo.epsilon_high: None is not allowed; loss_type cispo caps the IS weight at"),
    ({"epsilon_high": 0.1, "num_iterations": 2}, "grpo.epsilon_high: 0.1 is not allowed; must be >= epsilon (0.2)"),
    ({"epsilon_high": 0.28}, "grpo.epsilon_high: 0.28 is not allowed; clips nothing with num_iterations 1"),
    ({"delta": 2.0, "loss_type": "sapo", "num_iterations": 2},
     "grpo.delta: 2.0 is not allowed; loss_type sapo has no ratio clip"),
    ({"delta": 1.2, "num_iterations": 2}, "grpo.delta: 1.2 is not allowed; must be > 1 + epsilon_high (1.2)"),
    ({"loss_type": "luspo"}, "grpo.importance_sampling_level: 'token' is not allowed; loss_type luspo needs"),
    ({"loss_type": "vespo", "importance_sampling_level": "sequence"},
     "grpo.importance_sampling_level: 'sequence' is not allowed; loss_type vespo computes"),
    ({"top_entropy_quantile": 1.5}, "grpo.top_entropy_quantile: 1.5 is not allowed; must be in [0, 1]"),
    ({"entropy_coef": -0.1}, "grpo.entropy_coef: -0.1 is not allowed; must be >= 0"),
    ({"entropy_coef_min": 2.0}, "grpo.entropy_coef_max: 1.0 is not allowed; must be >= entropy_coef_min (2.0)"),
    ({"use_adaptive_entropy": True, "entropy_coef": 2.0}, "grpo.entropy_coef: 2.0 is not allowed; use_adaptive"),
    ({"use_adaptive_entropy": True, "entropy_coef_delta": 0.0}, "grpo.entropy_coef_delta: 0.0 is not allowed"),
    ({"sapo_temperature_neg": 0.0}, "grpo.sapo_temperature_neg: 0.0 is not allowed; must be > 0"),
])
def test_bad_switches_give_one_line(overrides: dict, message: str):
    with pytest.raises(ConfigError) as error:
        GRPOStageConfig(**overrides)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_every_switch_reaches_trls_config():
    values = {"epsilon_high": 0.28, "delta": 1.5, "num_iterations": 2, "importance_sampling_level": "sequence",
              "loss_type": "grpo", "mask_truncated_completions": True, "top_entropy_quantile": 0.2,
              "entropy_coef": 0.01, "use_adaptive_entropy": True, "entropy_target": 3.0, "entropy_coef_min": 0.001,
              "entropy_coef_max": 0.1, "entropy_coef_delta": 0.002, "sapo_temperature_pos": 0.9,
              "sapo_temperature_neg": 1.1, "vespo_k_pos": 1.5, "vespo_lambda_pos": 2.5, "vespo_k_neg": 2.5,
              "vespo_lambda_neg": 1.5}
    assert set(values) - {"loss_type", "num_iterations"} == set(TRL_LOSS_SWITCHES)
    args = grpo_trainer.grpo_args(tiny_config(**values), "unused", seed=0, reward_weights=[1.0])
    assert {name: getattr(args, name) for name in values} == values


def test_defaults_are_trls():
    ours = grpo_trainer.grpo_args(tiny_config(), "unused", seed=0, reward_weights=[1.0])
    trls = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    assert {name: getattr(ours, name) for name in TRL_LOSS_SWITCHES} == {name: trls[name] for name in TRL_LOSS_SWITCHES}


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_switch_through_the_shared_prefix_forward_equals_trls_forward(switch: str, merged, default_step,
                                                                      tmp_path: Path, monkeypatch):
    shared, trls = (build(merged, SWITCHES[switch], tmp_path / name, name == "shared") for name in ("shared", "trls"))
    calls = []
    original = shared_prefix._shared_prefix_hidden
    monkeypatch.setattr(shared_prefix, "_shared_prefix_hidden", lambda *args: calls.append(1) or original(*args))
    # The same rollouts through both: the same masks and advantages; the reference log-probs (a forward each).
    inputs, shared_inputs = rollouts(trls, ROLLOUTS), rollouts(shared, ROLLOUTS)
    assert calls, "the reference forward must split the batch"
    assert shared_inputs["advantages"].abs().min() > 0
    for key in ("completion_mask", "advantages", "num_items_in_batch"):
        torch.testing.assert_close(shared_inputs[key], inputs[key])
    torch.testing.assert_close(shared_inputs["ref_per_token_logps"], inputs["ref_per_token_logps"], atol=1e-5,
                               rtol=1e-4)
    assert bool((inputs["completion_mask"][TRUNCATED].sum(dim=1) == 0).all()) == trls.mask_truncated_completions
    inputs = off_policy(trls, inputs)

    calls.clear()
    expected, got = steps(trls, inputs), steps(shared, inputs)
    assert calls, "the policy forward must split the batch"
    for (loss, grads), (expected_loss, expected_grads) in zip(got, expected):
        torch.testing.assert_close(loss, expected_loss, atol=1e-6, rtol=1e-4)
        assert expected_grads.abs().max() > 0
        torch.testing.assert_close(grads, expected_grads, atol=1e-6, rtol=1e-4)
    assert shared.entropy_coef == pytest.approx(trls.entropy_coef)
    # Guards against a switch that is lost on its way: it changes the step on this batch. Not dapo (the
    # default) nor bnpo: on one process without accumulation both divide by the batch's token count.
    if switch not in ("loss_type dapo", "loss_type bnpo"):
        assert not torch.allclose(got[-1][1], default_step, atol=1e-6, rtol=1e-4)


def test_a_batch_of_only_masked_truncated_replies_goes_to_trls_forward(merged, tmp_path: Path, monkeypatch):
    # Every reply cut at the cap and masked: nothing is scored, so there is nothing to split.
    def shared_path(*args):
        raise AssertionError("shared path taken")

    monkeypatch.setattr(shared_prefix, "_shared_prefix_hidden", shared_path)
    overrides = {"mask_truncated_completions": True, "entropy_coef": 0.1}
    shared, trls = (build(merged, overrides, tmp_path / name, name == "shared") for name in ("shared", "trls"))
    inputs = rollouts(trls, ALL_TRUNCATED)
    assert inputs["completion_mask"].sum() == 0
    torch.testing.assert_close(rollouts(shared, ALL_TRUNCATED)["ref_per_token_logps"], inputs["ref_per_token_logps"])
    inputs = off_policy(trls, inputs)
    (loss, grads), (expected_loss, expected_grads) = steps(shared, inputs)[0], steps(trls, inputs)[0]
    assert loss == expected_loss == 0 and not grads.any() and not expected_grads.any()
