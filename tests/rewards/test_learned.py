import json

import numpy as np
import pytest
from scipy import stats

from replyrl.configs.reward import LearnedRewardConfig, RewardConfig
from replyrl.data.groups import holdout_mask
from replyrl.rewards import REWARDS, HeuristicReward, LearnedReward, Reward, load_reward
from replyrl.rewards.learned import train_reward_model

# A head sized for the 16-dim stand-in encoder; a few hundred pairs train in seconds.
SMALL = LearnedRewardConfig(
    hidden_sizes=[32], dropout=0.0, learning_rate=1e-2, batch_size=64, max_epochs=60, patience=10
)


def synthetic_pairs(encoder, n_tweets: int, replies_per_tweet: int, prefix: str) -> list[dict]:
    """Pairs whose engagement is a known function of the (stand-in) embeddings u, v.

    engagement = sigmoid(8 u·v + 4 v[0]): how well the reply matches the tweet plus a property of
    the reply alone, so the head must use both the interaction and the reply features.
    """
    rows = []
    for t in range(n_tweets):
        tweet = f"{prefix} tweet {t}"
        for r in range(replies_per_tweet):
            reply = f"{prefix} reply {t}-{r}"
            u, v = (x / np.linalg.norm(x) for x in (encoder.vector(tweet), encoder.vector(reply)))
            engagement = 1 / (1 + np.exp(-(8 * u @ v + 4 * v[0])))
            rows.append({"tweet": tweet, "reply": reply, "engagement": float(engagement)})
    return rows


def test_learns_a_known_signal_and_generalises_to_new_tweets(random_encoder):
    train = synthetic_pairs(random_encoder, 80, 5, "train")
    test = synthetic_pairs(random_encoder, 40, 5, "test")
    reward, report = train_reward_model(train, random_encoder, SMALL, progress=False)
    predicted = reward([r["tweet"] for r in test], [r["reply"] for r in test])
    truth = [r["engagement"] for r in test]
    # A head that ignored either term would stay well below this; the signal is noise-free.
    assert stats.pearsonr(predicted, truth).statistic > 0.9
    assert ((0 <= predicted) & (predicted <= 1)).all()
    assert report["best_epoch"] <= report["epochs_run"] and report["n_val"] == 8 * 5


def test_early_stopping_restores_the_best_epoch(random_encoder):
    # Pure-noise targets and a large learning rate: the head overfits within a few epochs, so
    # validation MSE stops improving and training must stop `patience` epochs after the best one.
    rng = np.random.default_rng(0)
    rows = [{"tweet": f"t{i}", "reply": f"r{i}", "engagement": float(rng.uniform())} for i in range(60)]
    config = LearnedRewardConfig(hidden_sizes=[64], learning_rate=0.05, batch_size=16, max_epochs=200, patience=3)
    reward, report = train_reward_model(rows, random_encoder, config, progress=False)
    assert report["epochs_run"] == report["best_epoch"] + 3 < 200
    assert min(report["history"], key=lambda h: h["val_mse"])["epoch"] == report["best_epoch"]
    # The returned weights are the best epoch's: they reproduce its validation MSE.
    val = [r for r, held in zip(rows, holdout_mask(rows, config.validation_fraction, config.seed)) if held]
    predicted = reward([r["tweet"] for r in val], [r["reply"] for r in val])
    mse = np.mean((predicted - [r["engagement"] for r in val]) ** 2)
    assert mse == pytest.approx(report["val_mse"], rel=1e-4)


def test_saved_model_reloads_with_identical_scores(random_encoder, table_encoder, tmp_path):
    rows = synthetic_pairs(random_encoder, 20, 3, "save")
    reward, _ = train_reward_model(rows, random_encoder, SMALL, progress=False)
    reward.save(tmp_path)
    # Plain safetensors + JSON: nothing pickled.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((tmp_path / "config.json").read_text())["embedding_dim"] == 16

    reloaded = LearnedReward.load(tmp_path, random_encoder)
    tweets, replies = ["a tweet", "another"], ["a reply", "one more"]
    np.testing.assert_allclose(reloaded(tweets, replies), reward(tweets, replies), rtol=1e-6)
    with pytest.raises(ValueError, match="trained on 16-dim embeddings"):
        LearnedReward.load(tmp_path, table_encoder({"x": [1.0, 0.0]}))
    with pytest.raises(FileNotFoundError, match="dvc repro reward"):
        LearnedReward.load(tmp_path / "missing", random_encoder)


def test_load_reward_builds_each_kind_by_name(random_encoder, tmp_path):
    rows = synthetic_pairs(random_encoder, 10, 2, "kind")
    train_reward_model(rows, random_encoder, SMALL, progress=False)[0].save(tmp_path)
    for kind, cls in [("heuristic", HeuristicReward), ("learned", LearnedReward)]:
        reward = load_reward(kind, RewardConfig(), random_encoder, reward_model_dir=tmp_path)
        assert isinstance(reward, cls) and isinstance(reward, Reward) and reward.name == kind
        assert reward(["t1", "t2"], ["r1", "r2"]).shape == (2,)
    assert set(REWARDS) == {"heuristic", "learned"}
    with pytest.raises(ValueError, match="unknown reward 'llm'; choose one of \\['heuristic', 'learned'\\]"):
        load_reward("llm", RewardConfig(), random_encoder)


def test_on_the_sample_the_learned_reward_beats_the_constant_predictor(minilm):
    # The sample's likes carry a learnable signal (the gold's text components): the MLP on MiniLM
    # features must predict test engagement better than the training mean. Half the default sample
    # keeps this under a minute on 2 cores; the default run's figures are in metrics/reward.json.
    from replyrl.configs.split import SplitConfig
    from replyrl.data.prepare import prepare_rows, sample_lines
    from replyrl.data.split import split_rows
    from replyrl.rewards.report import evaluate_rewards

    rows = prepare_rows(sample_lines(3000, seed=0), max_chars=500).kept
    splits = split_rows(rows, SplitConfig())
    reward, _ = train_reward_model(splits["full"], minilm, LearnedRewardConfig(), progress=False)
    train_mean = float(np.mean([r["engagement"] for r in splits["full"]]))
    metrics, _ = evaluate_rewards({"learned": reward}, splits["test"], train_mean)
    assert metrics["learned/mse"] < metrics["constant/mse"]
    assert metrics["learned/gold_pearson"] > 0.2 and metrics["learned/pearson"] > 0.1
