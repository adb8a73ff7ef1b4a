import json

import numpy as np
import pytest
from scipy import stats

from replyrl.rewards.report import correlation_metrics, evaluate_rewards, plot_rewards, read_pairs


def test_read_pairs_names_file_line_and_field(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {"tweet": "t", "reply": "r", "engagement": 0.5}
    for bad, message in [
        ({"tweet": "t", "engagement": 0.5}, "field 'reply' must be a string, got None"),
        ({**good, "engagement": 1.5}, "field 'engagement' must be a number in \\[0, 1\\], got 1.5"),
        ({**good, "engagement": True}, "field 'engagement' must be a number in \\[0, 1\\], got True"),
    ]:
        path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(ValueError, match=f"pairs.jsonl:2: {message}"):
            read_pairs(path)
    path.write_text("")
    with pytest.raises(ValueError, match="no rows"):
        read_pairs(path)


def test_correlation_metrics_match_scipy_and_handle_constant_scores():
    rng = np.random.default_rng(0)
    engagement = rng.uniform(size=50)
    scores = engagement + rng.normal(0, 0.2, size=50)
    metrics = correlation_metrics(scores, engagement)
    assert metrics["pearson"] == pytest.approx(stats.pearsonr(scores, engagement).statistic)
    assert metrics["spearman"] == pytest.approx(stats.spearmanr(scores, engagement).statistic)
    assert metrics["mse"] == pytest.approx(np.mean((scores - engagement) ** 2))
    # A constant score has no defined correlation: null in the JSON, not NaN.
    assert correlation_metrics(np.full(50, 0.3), engagement)["pearson"] is None


def test_evaluate_rewards_gives_flat_keys_and_a_constant_baseline(tmp_path):
    rows = [{"tweet": "t", "reply": "r" * n, "engagement": n / 10} for n in range(10)]

    class ReplyLength:  # a reward that is exactly engagement * 10
        name = "length"

        def __call__(self, tweets, replies):
            return np.array([len(r) for r in replies], dtype=float)

    metrics, scores = evaluate_rewards({"length": ReplyLength()}, rows, train_mean=0.45)
    assert metrics["length/pearson"] == pytest.approx(1.0) and metrics["length/spearman"] == pytest.approx(1.0)
    # mean of (n/10 - 0.45)^2 for n = 0..9: variance 0.0825 + 0 bias
    assert metrics["constant/mse"] == pytest.approx(0.0825)
    assert metrics["test/n_pairs"] == 10
    plot_rewards(scores, np.array([r["engagement"] for r in rows]), tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_gold_correlations_and_the_ceiling_when_rows_carry_the_gold():
    rng = np.random.default_rng(0)
    gold = rng.uniform(size=200)
    engagement = np.clip(gold + rng.normal(scale=0.3, size=200), 0, 1)
    rows = [{"tweet": "t", "reply": f"{i}", "engagement": e, "gold": g} for i, (e, g) in enumerate(zip(engagement, gold))]

    def noisy_gold(tweets, replies):  # a proxy that sees the gold through more noise
        return gold[[int(r) for r in replies]] + np.random.default_rng(1).normal(scale=0.2, size=len(replies))

    metrics, _ = evaluate_rewards({"proxy": noisy_gold}, rows, train_mean=0.5)
    proxy = noisy_gold(None, [r["reply"] for r in rows])
    assert metrics["ceiling/pearson"] == pytest.approx(stats.pearsonr(gold, engagement).statistic)
    assert metrics["ceiling/spearman"] == pytest.approx(stats.spearmanr(gold, engagement).statistic)
    assert metrics["proxy/gold_pearson"] == pytest.approx(stats.pearsonr(proxy, gold).statistic)
    assert metrics["proxy/gold_spearman"] == pytest.approx(stats.spearmanr(proxy, gold).statistic)
    # The proxy sees engagement only through the gold, so it cannot beat the ceiling.
    assert metrics["proxy/pearson"] < metrics["ceiling/pearson"]
    # Without the gold on every row (user data) there are no gold keys at all.
    metrics, _ = evaluate_rewards({"proxy": noisy_gold}, [{k: v for k, v in r.items() if k != "gold"} for r in rows], 0.5)
    assert not any("gold" in key or "ceiling" in key for key in metrics)
