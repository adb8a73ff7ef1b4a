"""GRPO stage on a tiny random model: warm-start hand-off, what training moves, reward plumbing, resume."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from peft import LoraConfig, get_peft_model

from replyrl.configs.grpo import GRPOLoraConfig, GRPORun, GRPOStageConfig, ObjectiveKStep
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.reward import RewardConfig
from replyrl.io import read_json, read_jsonl, write_jsonl
from replyrl.metrics.diversity import distance_to_others
from replyrl.models.base import load_base
from replyrl.models.policy import load_policy, write_lineage
from replyrl.prompts import build_prompt
from replyrl.training.grpo import COMPLETIONS_FILE, SAMPLES_FILE, GRPOPaths, phase2_dataset, run_grpo
from replyrl.training.grpo_rewards import (
    OVERLONG,
    as_reward_func,
    build_reward_funcs,
    diversity_reward_func,
    group_distance_to_others,
)
from replyrl.training.grpo_trainer import ReplyGRPOTrainer, SetObjective, build_trainer
from replyrl.training.report import summarize_grpo
from replyrl.training.set_advantages import max_at_k_advantages, pkpo_advantages, polychromic_advantages

# Two rows share a tweet id: GRPO must see that tweet once.
ROWS = [{"tweet_id": f"t{i}", "tweet": f"tweet number {i} about topic {i * 7}", "reply": "r"} for i in range(6)]
ROWS.append({"tweet_id": "t0", "tweet": ROWS[0]["tweet"], "reply": "another reply"})
TWEET_OF = {f"id:{row['tweet_id']}": row["tweet"] for row in ROWS}  # keyed like replyrl.data.schema.group_key
PROMPT = PromptConfig()


def tiny_config(**overrides) -> GRPOStageConfig:
    settings = dict(
        num_generations=3, prompts_per_step=2, max_completion_length=6, max_steps=2, save_steps=1,
        overlong_weight=0.0,  # the default's 8-token cache does not fit 6 tokens (its own test sets it)
        learning_rate=1e-2,  # large, so a two-step run visibly moves the adapter
        bf16=False, sample_every=1, sample_prompts=2,
        lora=GRPOLoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    return GRPOStageConfig(**{**settings, **overrides})


class LengthReward:
    """Stands in for our rewards: scores reply length, records every (tweet, reply) pair it sees."""

    name = "length"

    def __init__(self, nan_on_training_call: int | None = None, batch: int = 6) -> None:
        self.pairs: list[tuple[str, str]] = []
        self.training_calls = 0
        self.nan_on_training_call, self.batch = nan_on_training_call, batch

    def __call__(self, tweets, replies) -> np.ndarray:
        self.pairs += zip(tweets, replies)
        scores = np.array([len(r) for r in replies], dtype=float)
        if len(replies) == self.batch:  # sample-writer calls have a different size
            self.training_calls += 1
            if self.training_calls == self.nan_on_training_call:
                scores[0] = math.nan
        return scores


def alignment_check(seen: list):
    """A TRL reward that records what TRL passes, to check each completion comes with its own tweet."""

    def alignment(prompts, completions, tweet, group_id, **kwargs):
        seen.extend(zip(prompts, tweet, group_id))
        return [0.0] * len(completions)

    return alignment


@pytest.fixture(scope="module")
def warm_start(tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake SFT output: a LoRA adapter with random non-zero B, so skipping the merge changes the outputs."""
    model, tokenizer = load_base(tiny_base_dir)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0.0, 0.5)
    out = tmp_path_factory.mktemp("sft_warm_start")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_lineage(out, tiny_base_dir, [])
    return out


@pytest.fixture(scope="module")
def phase2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("phase2") / "phase2.jsonl"
    write_jsonl(path, ROWS)
    return path


def train(config: GRPOStageConfig, paths: GRPOPaths, reward_funcs: list, objective: str = "group") -> dict:
    return run_grpo(config, paths, prompt=PROMPT, reward=RewardConfig(), seed=0, reward_funcs=reward_funcs,
                    objective=objective)


def logits(model: torch.nn.Module, tokenizer, text: str = "a tweet and its reply") -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits


def lora_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


# ---- reward plumbing (no model)


def test_reward_adapter_scores_each_completion_against_its_own_tweet():
    reward = LengthReward()
    func = as_reward_func(reward)
    assert func.__name__ == "length"
    tweets, replies = ["t1", "t2", "t1"], ["a", "bbb", "cc"]
    assert func(prompts=["p1", "p2", "p1"], completions=replies, tweet=tweets, group_id=[1, 2, 1]) == [1.0, 3.0, 2.0]
    assert reward.pairs == list(zip(tweets, replies))


def test_reward_adapter_stops_on_non_finite_scores():
    func = as_reward_func(LengthReward(nan_on_training_call=1, batch=2))
    with pytest.raises(FloatingPointError, match=r"reward 'length' returned nan .* tweet='t1' reply='a'"):
        func(completions=["a", "b"], tweet=["t1", "t2"], group_id=[1, 2])


def test_group_distance_uses_group_ids_not_positions():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 5))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = ["b", "a", "b", "a", "c", "b"]  # interleaved, as after any reordering; "c" is alone
    got = group_distance_to_others(emb, ids)
    for gid in set(ids):
        idx = [i for i, g in enumerate(ids) if g == gid]
        np.testing.assert_allclose(got[idx], distance_to_others(emb[idx]))
    assert got[4] == 0.0


class StubEncoder:
    """Embeds a text as a one-hot of its first letter (enough to tell equal replies from different ones)."""

    def encode(self, texts, **kwargs) -> np.ndarray:
        return np.stack([np.eye(26, dtype=np.float32)[ord(t[0]) - ord("a")] for t in texts])


def test_diversity_bonus_is_computed_within_each_group():
    func = diversity_reward_func(StubEncoder())
    assert func.__name__ == "diversity"
    # Group 1 repeats one reply (no bonus); group 2's replies all differ (orthogonal: distance 1).
    scores = func(completions=["apple", "bear", "avocado", "cat"], group_id=[1, 2, 1, 2])
    assert scores == [0.0, 1.0, 0.0, 1.0]


def test_summary_compares_the_first_and_last_tenth_of_steps_rounded_up():
    # 14 logged steps: ceil(1.4) = 2 steps at each end; rows without a reward (e.g. the final summary) are skipped.
    rewards = [0.1, 0.3, *[0.5] * 10, 0.7, 0.9]
    history = [{"step": i + 1, "reward": r, "kl": 0.01 * i, "frac_reward_zero_std": 0.0, "step_time": 2.0,
                "rewards/heuristic/mean": r / 2} for i, r in enumerate(rewards)] + [{"train_runtime": 30.0}]
    metrics = summarize_grpo(history, ["heuristic"], kl_alarm=0.1)
    assert metrics["steps"] == 14 and metrics["train_time_s"] == 28.0
    assert metrics["reward/first_10pct"] == pytest.approx(0.2) and metrics["reward/last_10pct"] == pytest.approx(0.8)
    assert metrics["reward/delta"] == pytest.approx(0.6)
    assert metrics["reward/heuristic/first_10pct"] == pytest.approx(0.1)
    assert metrics["kl/final"] == pytest.approx(0.13) and metrics["kl/alarm_steps"] == 3  # 0.11, 0.12, 0.13 > 0.1


def test_phase2_dataset_keeps_each_tweet_once(tiny_base_dir: Path):
    _, tokenizer = load_base(tiny_base_dir)
    dataset = phase2_dataset(ROWS, tokenizer, PROMPT)
    assert dataset["group_id"] == [f"id:t{i}" for i in range(6)]
    assert dataset["prompt"][1] == build_prompt(tokenizer, ROWS[1]["tweet"], PROMPT)
    with pytest.raises(ValueError, match="row 2: field 'tweet' must be a non-empty string"):
        phase2_dataset([ROWS[0], {"tweet_id": "x", "tweet": ""}], tokenizer, PROMPT)
    # The chat ratings reach the trainer only for monitors: reward functions never see them otherwise.
    rated = [row | {"chat_ratings": {"interesting": 5, "witty": 5, "upbeat": 5}} for row in ROWS]
    assert "chat_ratings" not in phase2_dataset(rated, tokenizer, PROMPT).column_names
    assert phase2_dataset(rated, tokenizer, PROMPT, context=True)["chat_ratings"][0] == rated[0]["chat_ratings"]
    with pytest.raises(ValueError, match="every row needs 'chat_ratings' for the monitors"):
        phase2_dataset(ROWS, tokenizer, PROMPT, context=True)


# ---- hand-off and training


def test_step0_policy_is_the_warm_start(warm_start: Path):
    merged, tokenizer = load_policy(warm_start, merge=True)
    reference, _ = load_policy(warm_start, merge=False)  # the SFT adapter unmerged: what SFT trained
    dataset = phase2_dataset(ROWS, tokenizer, PROMPT)
    # Unscaled advantages (reply length minus the group mean, in characters) to exercise the clip below.
    config = tiny_config(scale_rewards="none", advantage_clip=0.5)
    trainer = build_trainer(config, merged, tokenizer, dataset, [as_reward_func(LengthReward())], [1.0],
                            output_dir=Path(warm_start).parent / "unused", seed=0)
    expected = logits(reference, tokenizer)
    torch.testing.assert_close(logits(trainer.model, tokenizer), expected)
    with trainer.model.disable_adapter():  # TRL's reference policy
        torch.testing.assert_close(logits(trainer.model, tokenizer), expected)
    base, _ = load_base(read_json(Path(warm_start, "lineage.json"))["base"])
    assert not torch.allclose(logits(base, tokenizer), expected, atol=1e-3), "fake warm-start must differ from the base"

    # One rollout batch, as TRL's sampler yields it (each prompt num_generations times in a row).
    trainer.model.train()
    batch = [row for row in dataset.select(range(2)) for _ in range(config.num_generations)]
    advantages = trainer._generate_and_score_completions(batch)["advantages"]
    assert advantages.abs().max() <= 0.5
    assert trainer._metrics["train"]["advantages/clipped_frac"][-1] > 0


def test_grpo_trains_only_the_new_adapter_and_saves_a_loadable_policy(warm_start: Path, phase2_file: Path, tmp_path: Path):
    reward, seen = LengthReward(), []
    out, live = tmp_path / "out", tmp_path / "live"
    paths = GRPOPaths(warm_start=warm_start, data=phase2_file, checkpoints=tmp_path / "ckpt", out=out, live=live,
                      plot=tmp_path / "curves.png")
    metrics = train(tiny_config(), paths, [(as_reward_func(reward), 1.0), (alignment_check(seen), 0.0)])
    assert metrics["steps"] == 2 and metrics["kl/alarm_steps"] == 0 and (tmp_path / "curves.png").exists()
    # KL is measured before the first update, when policy and reference are the same model.
    kl_rows = (live / "plots/metrics/kl.tsv").read_text().splitlines()  # header, then step 1
    assert float(kl_rows[1].split("\t")[-1]) == pytest.approx(0.0, abs=1e-6)
    recipe_names = ("train/policy_loss", "train/avg_reward", "train/reward_std", "train/kl_penalty")
    for name in (*recipe_names, "frac_reward_zero_std", "completions/mean_length"):
        assert (live / f"plots/metrics/{name}.tsv").exists(), name

    # Every completion came with the tweet and group id of the prompt it was sampled from: those of
    # the 2 training steps (2 prompts x 3) and of the 3 sample points (2 tweets x 2 samples).
    assert len(seen) == 2 * 2 * 3 + 3 * 2 * 2
    for prompt, tweet, group_id in seen:
        assert TWEET_OF[group_id] == tweet and tweet in prompt
    assert {t for t, _ in reward.pairs} <= set(TWEET_OF.values())

    # The saved folder rebuilds base + warm-start + GRPO adapter; the GRPO adapter moved, the reference did not.
    policy, tokenizer = load_policy(out, merge=False)
    warm, _ = load_policy(warm_start, merge=True)
    assert any(p.abs().sum() > 0 for n, p in lora_weights(policy).items() if "lora_B" in n)
    with policy.disable_adapter():
        torch.testing.assert_close(logits(policy, tokenizer), logits(warm, tokenizer))
    assert not torch.allclose(logits(policy, tokenizer), logits(warm, tokenizer))
    assert read_json(out / "lineage.json")["merged"] == [str(warm_start)]

    samples = read_jsonl(out / SAMPLES_FILE)
    assert sorted({row["step"] for row in samples}) == [0, 1, 2]
    assert all(row["tweet"] == TWEET_OF[row["group_id"]] and "length" in row["rewards"] for row in samples)


def test_policy_and_reference_forwards_run_each_prompt_once_per_group(warm_start: Path, phase2_file: Path,
                                                                       tmp_path: Path, monkeypatch):
    from replyrl.models import shared_prefix

    plans = []
    original = shared_prefix._shared_prefix_hidden
    monkeypatch.setattr(shared_prefix, "_shared_prefix_hidden", lambda *args: plans.append(args[-1]) or original(*args))
    config = tiny_config(sample_every=100, sample_prompts=1)
    paths = GRPOPaths(warm_start=warm_start, data=phase2_file, checkpoints=tmp_path / "ckpt", out=tmp_path / "out")
    train(config, paths, [(as_reward_func(LengthReward()), 1.0)])
    # Each step: the reference's and the policy's forward, over 2 prompts x 3 completions, 2 prompts run.
    assert len(plans) == 2 * 2 and all(len(plan.unique) == 2 and len(plan.row_of) == 6 for plan in plans)


def test_non_finite_reward_stops_the_run_and_a_rerun_resumes(warm_start: Path, phase2_file: Path, tmp_path: Path):
    config = tiny_config(max_steps=3, sample_every=100, sample_prompts=1)
    paths = GRPOPaths(warm_start=warm_start, data=phase2_file, checkpoints=tmp_path / "ckpt", out=tmp_path / "out")
    with pytest.raises(FloatingPointError, match="reward 'length' returned nan"):
        train(config, paths, [(as_reward_func(LengthReward(nan_on_training_call=2)), 1.0)])
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("checkpoint-*")) == ["checkpoint-1"]
    assert not (tmp_path / "out").exists()

    reward = LengthReward()
    metrics = train(config, paths, [(as_reward_func(reward), 1.0)])
    assert metrics["resumed_from_step"] == 1 and metrics["steps"] == 3
    assert reward.training_calls == 2  # only steps 2 and 3 were run again
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()
    assert not (tmp_path / "ckpt").exists()  # a finished run leaves nothing to resume


def read_completions(live: Path) -> pd.DataFrame:
    return pd.read_csv(live / COMPLETIONS_FILE, keep_default_na=False)  # an empty completion stays ""


def test_the_rollouts_of_the_sampled_steps_are_written_with_the_advantages_the_loss_used(
        warm_start: Path, phase2_file: Path, tmp_path: Path, monkeypatch):
    used = {}  # step -> sorted (completion tokens, advantage) of the batch the loss saw
    original = ReplyGRPOTrainer._compute_loss

    def compute_loss(self, model, inputs):
        pairs = zip(inputs["completion_mask"].sum(dim=1).tolist(), inputs["advantages"].tolist())
        used[self.state.global_step + 1] = sorted(pairs)
        return original(self, model, inputs)

    monkeypatch.setattr(ReplyGRPOTrainer, "_compute_loss", compute_loss)
    # Unscaled advantages (length differences in characters) so that the clip at 0.5 binds.
    config = tiny_config(max_steps=3, sample_every=5, scale_rewards="none", advantage_clip=0.5)
    live = tmp_path / "live"
    paths = GRPOPaths(warm_start=warm_start, data=phase2_file, checkpoints=tmp_path / "ckpt", out=tmp_path / "out",
                      live=live)
    train(config, paths, [(as_reward_func(LengthReward()), 1.0)])

    rows = read_completions(live)
    assert list(rows.columns) == ["step", "tweet", "completion", "rewards/length", "reward", "advantage",
                                  "completion_tokens", "truncated"]
    # Step 1 and the last step (sample_every 5 takes no other), each 2 prompts x 3 completions.
    assert rows["step"].tolist() == [1] * 6 + [3] * 6
    for step, batch in rows.groupby("step"):
        assert batch["tweet"].value_counts().tolist() == [3, 3] and set(batch["tweet"]) <= set(TWEET_OF.values())
        pairs = sorted(zip(batch["completion_tokens"], batch["advantage"]))
        assert [n for n, _ in pairs] == [n for n, _ in used[step]]
        np.testing.assert_allclose([a for _, a in pairs], [a for _, a in used[step]], rtol=1e-5, atol=1e-6)
    assert rows["advantage"].abs().max() == pytest.approx(0.5)  # clipped, as the loss saw them: TRL's go past 0.5
    # Each reward is its own completion's (LengthReward scores characters); weight 1: the total is that reward.
    assert (rows["rewards/length"] == rows["completion"].str.len()).all()
    assert (rows["reward"] == rows["rewards/length"]).all()
    assert (rows.loc[rows["truncated"], "completion_tokens"] == config.max_completion_length).all()
    # The rows are the rollouts behind each step's logged reward.
    logged = pd.read_csv(live / "plots/metrics/reward.tsv", sep="\t").set_index("step")["reward"]
    for step, batch in rows.groupby("step"):
        assert batch["reward"].mean() == pytest.approx(logged[step], rel=1e-4)


def test_a_resumed_run_redoes_the_rollouts_after_its_checkpoint(warm_start: Path, phase2_file: Path, tmp_path: Path):
    config = tiny_config(sample_prompts=1)
    live, checkpoints = tmp_path / "live", tmp_path / "ckpt"
    # No `out`: the checkpoints stay, as after a kill.
    paths = GRPOPaths(warm_start=warm_start, data=phase2_file, checkpoints=checkpoints, live=live)
    train(config, paths, [(as_reward_func(LengthReward()), 1.0)])
    assert read_completions(live)["step"].tolist() == [1] * 6 + [2] * 6
    # Killed while saving step 2's checkpoint: step 2's rollouts were already written (on_step_end comes first).
    shutil.rmtree(checkpoints / "checkpoint-2")
    metrics = train(config, paths, [(as_reward_func(LengthReward()), 1.0)])
    assert metrics["resumed_from_step"] == 1
    assert read_completions(live)["step"].tolist() == [1] * 6 + [2] * 6


def trainer_on_two_groups(warm_start: Path, folder: str, objective: str = "group", **overrides) -> tuple:
    """A trainer with groups of 4 (advantages unclipped) and one rollout batch: 2 prompts x 4, as TRL yields them."""
    merged, tokenizer = load_policy(warm_start, merge=True)
    dataset = phase2_dataset(ROWS, tokenizer, PROMPT)
    trainer = build_trainer(tiny_config(num_generations=4, advantage_clip=100.0, **overrides), merged, tokenizer,
                            dataset, [as_reward_func(LengthReward(batch=8))], [1.0],
                            output_dir=Path(warm_start).parent / folder, seed=0, objective=objective)
    trainer.model.train()
    return trainer, [row for row in dataset.select(range(2)) for _ in range(4)]


def test_set_objective_advantages_replace_trls(warm_start: Path):
    trainer, batch = trainer_on_two_groups(warm_start, "unused_set")
    trls = trainer._generate_and_score_completions(batch)["advantages"]
    rewards = trainer._gathered[0][:, 0].view(-1, 4).double().numpy()
    # k = 1 is the mean-reward objective: exactly TRL's group-normalised advantages.
    trainer.objective = SetObjective("max_at_k", k=1)
    torch.testing.assert_close(trainer._set_advantages(len(batch)), trls)
    # k = 2: the max@2 marginal contributions divided by the group's reward std (as TRL divides), then one
    # factor for the batch that gives them the RMS of TRL's advantages of the same rewards.
    trainer.objective = SetObjective("max_at_k", k=2)
    scaled = np.concatenate([max_at_k_advantages(r, 2) / (r.std(ddof=1) + 1e-4) for r in rewards])
    expected = scaled * np.sqrt(np.mean(trls.numpy().astype(np.float64) ** 2) / np.mean(scaled**2))
    torch.testing.assert_close(trainer._set_advantages(len(batch)), torch.as_tensor(expected, dtype=torch.float32))


def test_pass_at_k_weights_groups_by_how_far_they_are_from_saturation(warm_start: Path):
    trainer, batch = trainer_on_two_groups(warm_start, "unused_passk")
    trainer._generate_and_score_completions(batch)
    # Passes (reward >= 0.5): group 1 has one of four, group 2 three of four.
    trainer._gathered = (torch.tensor([0.9, 0.1, 0.2, 0.3, 0.9, 0.8, 0.7, 0.1]).unsqueeze(1), None)
    trainer.objective = SetObjective("max_at_k", k=2, threshold=0.5)
    got = trainer._set_advantages(len(batch)).view(2, 4)
    passes = torch.tensor([[1.0, 0, 0, 0], [1, 1, 1, 0]])
    grpo = (passes - passes.mean(1, keepdim=True)) / (passes.std(1, keepdim=True) + 1e-4)
    # With three passes every pair already holds one: Pass@2 has nothing to gain, plain GRPO still pushes.
    torch.testing.assert_close(got[1], torch.zeros(4))
    assert grpo[1].abs().sum() > 0
    # The one-pass group keeps GRPO's direction; the batch as a whole keeps GRPO's RMS.
    assert torch.allclose(got[0] / got[0].abs().max(), grpo[0] / grpo[0].abs().max(), atol=1e-5)
    torch.testing.assert_close(got.square().mean(), grpo.square().mean())


def completion_logps(trainer, inputs) -> torch.Tensor:
    """Sum of each completion's token log-probs under the trainer's current policy."""
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    with torch.no_grad():
        logps = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, inputs["completion_ids"].size(1))[0]
    return (logps * inputs["completion_mask"]).sum(dim=1)


@pytest.mark.parametrize("estimator", ["marginal", "pkpo", "verl_passk"])
def test_a_max_at_k_step_raises_the_best_completion_more_than_a_group_step(warm_start: Path, estimator: str):
    trainer, batch = trainer_on_two_groups(warm_start, f"unused_step_{estimator}")
    inputs = trainer._generate_and_score_completions(batch)  # fixed rollouts: both steps train on the same ones
    # Hand-set rewards, distinct within each group so "best" is strict; group 2 in another order.
    rewards = torch.tensor([0.0, 1.0, 2.0, 3.0, 2.5, 0.5, 3.5, 1.5]).unsqueeze(1)
    trainer._gathered = (rewards, None)
    best = torch.tensor([3, 6])
    groups = rewards.view(2, 4)
    group = ((groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + 1e-4)).flatten()
    trainer.objective = SetObjective("max_at_k", k=2, estimator=estimator)
    max_at_k = trainer._set_advantages(len(batch))
    start = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    before = completion_logps(trainer, inputs)

    def one_step(advantages: torch.Tensor) -> torch.Tensor:
        """The best completions' log-prob gain from one plain gradient step on the GRPO loss."""
        with torch.no_grad():
            for name, p in trainer.model.named_parameters():
                if p.requires_grad:
                    p.copy_(start[name])
                    p.grad = None
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which this step skips
        trainer.compute_loss(trainer.model, {**inputs, "advantages": advantages}).backward()
        with torch.no_grad():
            for p in trainer.model.parameters():
                if p.grad is not None:
                    p -= 0.5 * p.grad  # small enough for the first-order regime, large enough to see
        return (completion_logps(trainer, inputs) - before)[best]

    # Same scale (GRPO's RMS), other credit: each max@k estimator puts more of it on each group's best reply.
    assert (max_at_k[best] > group[best]).all()
    gain_max_at_k, gain_group = one_step(max_at_k), one_step(group)
    # Summed over the two groups: per group the gains can come within float noise of each other (seen:
    # +0.0112 vs +0.0113), because on this random tiny model the replies share most tokens, so credit on
    # the second best also lifts the best.
    assert (gain_max_at_k > 0).all() and gain_max_at_k.sum() > gain_group.sum()


MAX_AT_K_RUNS = [GRPORun("max_at_k_run", "polychromic", "max_at_k")]  # so the config takes max_at_k's params


def test_verl_passk_is_verls_std_normalised_advantage_times_one_batch_factor(warm_start: Path):
    trainer, batch = trainer_on_two_groups(warm_start, "unused_verl", objective="max_at_k", runs=MAX_AT_K_RUNS,
                                           max_at_k_estimator="verl_passk")
    # verl_passk has no k: build_trainer gives it the whole group's (max@G), with no schedule.
    assert (trainer.objective.estimator, trainer.objective.k, trainer.objective.k_schedule) == ("verl_passk", 4, ())
    # Two groups with different spreads, so the std normalisation shows.
    rewards = torch.tensor([0.0, 1.0, 2.0, 3.0, 2.5, 0.5, 4.5, 1.5]).unsqueeze(1)
    trainer._gathered = (rewards, None)
    groups = rewards.view(2, 4)
    # verl's compute_grpo_passk_outcome_advantage with norm_adv_by_std_in_grpo (its eps 1e-6; TRL's 1e-4 here),
    # which scale_rewards group reproduces; then one factor for the batch gives it plain GRPO's RMS.
    top2 = groups.topk(2, dim=1).values
    verl = torch.zeros(2, 4)
    verl[torch.arange(2), groups.argmax(dim=1)] = (top2[:, 0] - top2[:, 1]) / (groups.std(dim=1) + 1e-4)
    grpo = (groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + 1e-4)
    expected = verl * grpo.square().mean().sqrt() / verl.square().mean().sqrt()
    torch.testing.assert_close(trainer._set_advantages(len(batch)).view(2, 4), expected)


def test_the_k_schedule_sets_k_by_optimizer_step_and_logs_the_k_in_use(warm_start: Path):
    schedule = [ObjectiveKStep(step=1, k=2), ObjectiveKStep(step=3, k=1)]  # 3 (objective_k) before step 1
    trainer, batch = trainer_on_two_groups(warm_start, "unused_schedule", objective="max_at_k", runs=MAX_AT_K_RUNS,
                                           objective_k=3, max_at_k_estimator="pkpo", objective_k_schedule=schedule)
    assert trainer.objective == SetObjective("max_at_k", 3, estimator="pkpo", k_schedule=[(1, 2), (3, 1)])
    rewards = torch.tensor([0.0, 1.0, 2.0, 3.0, 2.5, 0.5, 4.5, 1.5]).unsqueeze(1)
    groups = rewards.view(2, 4).double().numpy()
    for step, k in [(0, 3), (1, 2), (2, 2), (3, 1), (10, 1)]:
        trainer.state.global_step = step
        trainer._gathered = (rewards, None)
        got = trainer._set_advantages(len(batch)).double().view(2, 4).numpy()
        # PKPO at that k, not divided by the groups' stds (1.29 and 1.71 here: that would bias it); the batch
        # factor is checked elsewhere, so compare directions.
        raw = np.stack([pkpo_advantages(r, k) for r in groups])
        np.testing.assert_allclose(got / np.linalg.norm(got), raw / np.linalg.norm(raw), atol=1e-6)
    trainer.state.global_step = 1
    trainer._generate_and_score_completions(batch)
    assert trainer._metrics["train"]["objective_k"] == [2]


def test_polychromic_objective_trains_with_encoder_embeddings(warm_start: Path, phase2_file: Path, tmp_path: Path,
                                                            encoder_dir: Path):
    config = tiny_config(objective_k=2, sample_every=100, sample_prompts=1)
    paths = GRPOPaths(warm_start=warm_start, data=phase2_file, checkpoints=tmp_path / "ck", out=tmp_path / "out",
                      encoder=encoder_dir, live=tmp_path / "live")
    assert train(config, paths, [(as_reward_func(LengthReward()), 1.0)], objective="polychromic")["steps"] == 2
    assert (tmp_path / "live/plots/metrics/advantages/polychromic_abs_mean.tsv").exists()


def test_an_annealed_pkpo_run_uses_each_steps_k(warm_start: Path, phase2_file: Path, tmp_path: Path):
    # Groups of 3: k = 2 for the first step, then k = 1 (PKPO's annealing from a high k down to 1).
    config = tiny_config(runs=MAX_AT_K_RUNS, objective_k=2, max_at_k_estimator="pkpo",
                         objective_k_schedule=[ObjectiveKStep(step=1, k=1)], sample_every=100, sample_prompts=1)
    paths = GRPOPaths(warm_start=warm_start, data=phase2_file, checkpoints=tmp_path / "ck", out=tmp_path / "out",
                      live=tmp_path / "live")
    assert train(config, paths, [(as_reward_func(LengthReward()), 1.0)], objective="max_at_k")["steps"] == 2
    logged = pd.read_csv(tmp_path / "live/plots/metrics/objective_k.tsv", sep="\t")
    assert logged["objective_k"].tolist() == [2, 1]


def test_polychromic_advantages_get_one_batch_factor_not_the_reward_std(warm_start: Path):
    trainer, batch = trainer_on_two_groups(warm_start, "unused_poly")
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(8, 5))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    trainer.objective = SetObjective("polychromic", k=2, embed=lambda texts: emb[: len(texts)])
    got = trainer._generate_and_score_completions(batch)
    rewards = trainer._gathered[0][:, 0].view(-1, 4).double().numpy()
    # Embeddings come in the gathered completions' order: row i of the batch is completion i.
    raw = np.concatenate([polychromic_advantages(r, emb[4 * g: 4 * g + 4], 2) for g, r in enumerate(rewards)])
    # Not divided by the rewards' std (tied rewards, std 0, still differ in diversity, and would blow up):
    # one factor for the batch gives them the RMS of TRL's advantages of the same rewards.
    grpo = np.concatenate([(r - r.mean()) / (r.std(ddof=1) + 1e-4) for r in rewards])
    expected = raw * np.sqrt(np.mean(grpo**2) / np.mean(raw**2))
    torch.testing.assert_close(got["advantages"], torch.as_tensor(expected, dtype=torch.float32))


def test_a_monitor_is_logged_beside_the_reward_but_never_trained_on(warm_start: Path, tmp_path: Path):
    # The sample's rows carry the chat ratings: they reach the monitor (the gold in the grpo stage).
    ratings = {"interesting": 7, "witty": 5, "upbeat": 6}
    data = tmp_path / "phase2.jsonl"
    write_jsonl(data, [row | {"chat_ratings": ratings} for row in ROWS])
    seen = []

    def monitor(completions, tweet, chat_ratings, **_):
        seen.extend(zip(tweet, chat_ratings))
        return [len(c) / 100 for c in completions]

    def run(name: str, monitors) -> tuple[dict, dict]:
        paths = GRPOPaths(warm_start=warm_start, data=data, checkpoints=tmp_path / name / "ckpt",
                          out=tmp_path / name / "out", live=tmp_path / name / "live", plot=tmp_path / name / "p.png")
        metrics = run_grpo(tiny_config(), paths, prompt=PROMPT, reward=RewardConfig(), seed=0,
                           reward_funcs=[(as_reward_func(LengthReward()), 1.0)], monitors=monitors)
        return metrics, lora_weights(load_policy(paths.out, merge=False)[0])

    monitored, weights = run("monitored", {"gold": monitor})
    assert len(seen) == 2 * 2 * 3 and all(r == ratings and t in TWEET_OF.values() for t, r in seen)
    assert {"gold/mean", "gold/first_10pct", "gold/last_10pct", "gold/delta"} <= set(monitored)
    assert (tmp_path / "monitored/live/plots/metrics/gold/mean.tsv").exists()
    rollouts = read_completions(tmp_path / "monitored/live")
    np.testing.assert_allclose(rollouts["gold"], rollouts["completion"].str.len() / 100, rtol=1e-5)
    # The same run without the monitor trains the same weights: the monitor is never in the loss.
    plain, plain_weights = run("plain", None)
    assert "gold/mean" not in plain and plain["reward/mean"] == pytest.approx(monitored["reward/mean"])
    assert "gold" not in read_completions(tmp_path / "plain/live")
    for name, value in weights.items():
        torch.testing.assert_close(value, plain_weights[name], msg=name)


def test_the_overlong_punishment_scores_rollouts_by_length_and_the_samples_too(warm_start: Path, phase2_file: Path,
                                                                               tmp_path: Path):
    config = tiny_config(max_steps=1, overlong_weight=0.5, overlong_cache_tokens=2)  # 0 up to 4 tokens, -1 at 6
    (overlong,) = build_reward_funcs([OVERLONG], RewardConfig(), encoder=None, reward_model_dir=None, config=config)
    paths = GRPOPaths(warm_start=warm_start, data=phase2_file, checkpoints=tmp_path / "ck", out=tmp_path / "out",
                      live=tmp_path / "live")
    train(config, paths, [(as_reward_func(LengthReward()), 1.0), (overlong, 0.5)])
    rollouts = pd.read_csv(tmp_path / "live" / COMPLETIONS_FILE)
    expected = [0.0 if n <= 4 else (4 - n) / 2 for n in rollouts["completion_tokens"]]
    np.testing.assert_allclose(rollouts["rewards/overlong"], expected)
    assert rollouts["completion_tokens"].max() > 4  # the random tiny model writes past the cache
    samples = read_jsonl(tmp_path / "out" / SAMPLES_FILE)  # the sample writer passes token ids too
    assert all(-1.0 <= row["rewards"][OVERLONG] <= 0.0 for row in samples)
