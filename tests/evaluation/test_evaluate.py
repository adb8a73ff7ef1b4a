"""Metrics aggregation on synthetic generations with stand-in scorers (see conftest.py)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from replyrl.configs.evaluate import EvaluateConfig, PassAtKConfig
from replyrl.configs.grpo import GRPOStageConfig
from replyrl.evaluation.evaluate import (
    evaluate,
    load_generations,
    read_grpo_kl,
    resolve_judge,
    training_objectives,
)
from replyrl.evaluation.report import metric_table
from replyrl.io import write_json, write_jsonl
from tests.evaluation.conftest import make_rows

MODELS = ["baseline_full", "grpo_from_polychromic"]


def config(**kwargs) -> EvaluateConfig:
    """The learned judge and the median criterion unless a test says otherwise (the defaults, gold and
    per_tweet, have tests of their own)."""
    kwargs.setdefault("pass_at_k", PassAtKConfig(judge="learned", threshold="median"))
    return EvaluateConfig(sft_models=["baseline_full"], **kwargs)


def generations(seeds=(1,)) -> dict:
    """baseline: 2 of 10 samples "good" on even tweets, none on odd; grpo: all good, always the same text."""
    out = {}
    for seed in seeds:
        out["baseline_full", seed] = make_rows(lambda i, j: f"{'good' if i % 2 == 0 and j < 2 else 'meh'} {i} {j}")
        out["grpo_from_polychromic", seed] = make_rows(lambda i, j: f"good good reply to {i}")
    return out


def test_pass_at_k_uses_the_median_human_score_as_threshold(scorers) -> None:
    result = evaluate(generations(), scorers, config())
    m = result.metrics
    assert m["pass_threshold"] == 0.5  # median of the references' 0/1 engagement
    # baseline: even tweets have c=2 of n=10 -> pass@1 = 0.2; odd tweets 0; mean over 8 tweets 0.1
    assert m["baseline_full.pass@1"] == pytest.approx(0.1)
    assert m["baseline_full.pass@10"] == pytest.approx(0.5)
    assert m["grpo_from_polychromic.pass@10"] == 1.0
    assert m["baseline_full.pass@1_ci_low"] <= 0.1 <= m["baseline_full.pass@1_ci_high"]
    assert list(result.passk.columns) == ["model", "k", "pass@k", "ci_low", "ci_high"]
    assert result.passk["k"].tolist() == [1, 3, 5, 10, 1, 3, 5, 10]
    json.dumps(m, allow_nan=False)  # every value is JSON-safe


def test_threshold_override_and_heuristic_judge(scorers) -> None:
    # heuristic = len/100; "good good reply to 3" is 20 chars -> 0.2 < 0.25: nothing of grpo passes
    m = evaluate(generations(), scorers, config(pass_at_k=PassAtKConfig(judge="heuristic", threshold=0.25))).metrics
    assert m["pass_threshold"] == 0.25
    assert m["grpo_from_polychromic.pass@10"] == 0.0


def test_diversity_is_per_tweet_and_quality_uses_greedy(scorers) -> None:
    m = evaluate(generations(), scorers, config()).metrics
    assert m["grpo_from_polychromic.self_bleu"] == pytest.approx(1.0)  # identical samples, as a fraction
    assert m["grpo_from_polychromic.semantic_diversity"] == pytest.approx(0.0, abs=1e-6)
    assert m["grpo_from_polychromic.distinct_1"] == pytest.approx(4 / 50)  # good, reply, to, i; 5 words x 10
    assert m["baseline_full.semantic_diversity"] > 0.5
    assert m["grpo_from_polychromic.predicted_engagement"] == 1.0
    assert m["baseline_full.rouge_l"] < 1.0 and m["bertscore_layer"] == 3


def test_mean_and_std_over_seeds(scorers) -> None:
    gens = generations(seeds=(1, 2))
    # seed 2's baseline passes nothing: per-seed pass@1 is 0.1 and 0.0
    gens["baseline_full", 2] = make_rows(lambda i, j: f"meh {i} {j}")
    m = evaluate(gens, scorers, config()).metrics
    assert m["baseline_full.pass@1"] == pytest.approx(0.05)
    assert m["baseline_full.pass@1_std"] == pytest.approx(np.std([0.1, 0.0], ddof=1))
    assert m["grpo_from_polychromic.pass@1_std"] == 0.0 and m["n_seeds"] == 2


def test_per_tweet_criterion_on_hand_made_scores(scorers) -> None:
    # Heuristic stand-in = length / 100. Tweet i's human replies are "good human reply i" (18 chars) and
    # "plain human reply i" (19): per tweet, a sample passes at >= 0.19. Samples have 10, 12, ..., 28
    # characters, so samples 5-9 (20-28 characters) pass: 5 of 10.
    gens = {("baseline_full", 1): make_rows(lambda i, j: "y" * (10 + 2 * j))}
    result = evaluate(gens, scorers, config(pass_at_k=PassAtKConfig(judge="heuristic", threshold="per_tweet")))
    np.testing.assert_allclose(result.thresholds["heuristic"], np.full(8, 0.19))
    assert result.metrics["baseline_full.pass@1"] == pytest.approx(0.5)
    # Sanity figures: only each tweet's best human reply passes per tweet; the median lets half through.
    assert result.metrics["human_pass_rate.per_tweet"] == 0.5 and result.metrics["human_pass_rate.median"] == 0.5
    # A tweet whose best human reply is long needs a long sample: give tweet 0 a 30-character reply.
    gens[("baseline_full", 1)][0]["references"] = ["z" * 30]
    result = evaluate(gens, scorers, config(pass_at_k=PassAtKConfig(judge="heuristic", threshold="per_tweet")))
    assert result.thresholds["heuristic"][0] == pytest.approx(0.30)
    assert result.per_prompt["pass@10"].tolist()[:2] == [0.0, 1.0]


def test_trained_on_marks_follow_the_training_params() -> None:
    marks = training_objectives("heuristic", 0.1, {"group"}, "heuristic", config(pass_at_k=PassAtKConfig(judge="heuristic")))
    assert marks["heuristic_reward"] == "GRPO reward, polychromic SFT"
    assert marks["grpo_reward"] == "GRPO reward (all terms)"  # the whole reward, whatever its terms
    assert marks["pass@10"] == marks["heuristic_reward"]  # a Pass@k judged by a training reward is marked too
    assert marks["semantic_diversity"] == "polychromic SFT, GRPO diversity bonus"
    assert "predicted_engagement" not in marks and "gold_score" not in marks
    marks = training_objectives("learned", 0.0, {"group", "max_at_k"}, "none", config(pass_at_k=PassAtKConfig(judge="gold")))
    assert marks["predicted_engagement"] == "GRPO reward" and marks["pass@10_learned"] == "GRPO reward"
    assert "pass@10" not in marks and "heuristic_reward" not in marks


def test_final_kl_is_read_per_grpo_run(tmp_path) -> None:
    write_json(tmp_path / "from_polychromic_seed_1.json", {"kl/final": 2.5})
    write_json(tmp_path / "from_baseline_seed_1.json", {"kl/final": None})
    assert read_grpo_kl(tmp_path, ["from_polychromic", "from_baseline", "missing"], [1]) == {
        "grpo_from_polychromic/seed_1": 2.5}


def test_load_generations_checks_files(tmp_path) -> None:
    rows = make_rows(lambda i, j: "x")
    write_jsonl(tmp_path / "baseline_full" / "seed_1.jsonl", rows)
    with pytest.raises(FileNotFoundError, match="grpo_from_polychromic/seed_1.jsonl is missing"):
        load_generations(tmp_path, MODELS, [1], 10)
    write_jsonl(tmp_path / "grpo_from_polychromic" / "seed_1.jsonl", rows[::-1])
    with pytest.raises(ValueError, match="tweets differ"):
        load_generations(tmp_path, MODELS, [1], 10)
    with pytest.raises(ValueError, match=r"seed_1.jsonl:1: 10 samples, need >= 20"):
        load_generations(tmp_path, MODELS[:1], [1], 20)
    no_greedy = [{k: v for k, v in rows[0].items() if k != "greedy"}]
    write_jsonl(tmp_path / "grpo_from_polychromic" / "seed_1.jsonl", no_greedy)
    with pytest.raises(ValueError, match=r"seed_1.jsonl:1: missing field\(s\) \['greedy'\]"):
        load_generations(tmp_path, MODELS[1:], [1], 10)


def test_gold_and_learned_proxy_are_reported_side_by_side(scorers) -> None:
    # grpo's "good good reply" games the proxy: predicted engagement 1, gold 0 (see conftest).
    result = evaluate(generations(), scorers, config(pass_at_k=PassAtKConfig(threshold="median")))  # judge: auto -> gold
    m = result.metrics
    assert m["pass_threshold"] == 0.5 and m["pass_threshold_learned"] == 0.5  # medians of the human replies
    assert m["grpo_from_polychromic.pass@10"] == 0.0 and m["grpo_from_polychromic.pass@10_learned"] == 1.0
    assert m["baseline_full.pass@10"] == m["baseline_full.pass@10_learned"] == pytest.approx(0.5)
    assert m["grpo_from_polychromic.gold_score"] == 0.0 and m["grpo_from_polychromic.predicted_engagement"] == 1.0
    assert {judge: t.tolist() for judge, t in result.thresholds.items()} == {"gold": [0.5] * 8, "learned": [0.5] * 8}
    # Under the learned judge the gold is still reported beside it.
    m = evaluate(generations(), scorers, config()).metrics
    assert m["grpo_from_polychromic.pass@10"] == 1.0 and m["grpo_from_polychromic.pass@10_gold"] == 0.0


def test_gold_judge_on_user_data_names_the_missing_context(scorers) -> None:
    gens = {key: make_rows(lambda i, j: "good", context=False) for key in generations()}
    with pytest.raises(ValueError, match=r"judge=gold: baseline_full/seed_1.jsonl line 1: .* needs field "
                                         r"'chat_ratings'.*only prepare.source=sample"):
        evaluate(gens, scorers, config(pass_at_k=PassAtKConfig(judge="gold")))
    # Other judges work on such data, and no gold column appears.
    result = evaluate(gens, scorers, config())
    assert "gold_score" not in result.per_prompt and not any(c.endswith("_gold") for c in result.per_prompt)


def test_auto_judge_is_the_gold_on_the_sample_and_the_learned_reward_on_own_data(scorers) -> None:
    # The default judge. The sample's rows carry the chat ratings: the gold judges Pass@k, the learned beside it.
    result = evaluate(generations(), scorers, config(pass_at_k=PassAtKConfig(threshold="median")))
    assert result.metrics["pass_at_k_judge"] == "gold" and list(result.thresholds) == ["gold", "learned"]
    # The user's own rows have none: the learned reward judges, and no gold is reported.
    own = {key: make_rows(lambda i, j: "good", context=False) for key in generations()}
    result = evaluate(own, scorers, config(pass_at_k=PassAtKConfig(threshold="median")))
    assert result.metrics["pass_at_k_judge"] == "learned" and list(result.thresholds) == ["learned"]
    assert "gold_score" not in result.per_prompt
    # One row without ratings is enough to leave the gold out; a set judge is kept as it is.
    mixed = generations()
    del mixed["baseline_full", 1][3]["chat_ratings"]
    assert resolve_judge(config(pass_at_k=PassAtKConfig()), mixed).pass_at_k.judge == "learned"
    assert resolve_judge(config(), generations()).pass_at_k.judge == "learned"


def test_training_marks_follow_the_resolved_judge() -> None:
    own = {key: make_rows(lambda i, j: "good", context=False) for key in generations()}
    # auto -> learned on own data: a Pass@k judged by the GRPO reward is marked as trained on.
    marks = training_objectives("learned", 0.0, {"group"}, "none", resolve_judge(config(pass_at_k=PassAtKConfig()), own))
    assert marks["pass@10"] == "GRPO reward" and "pass@10_learned" not in marks
    # auto -> gold on the sample: the Pass@k is not; its learned column beside it is.
    marks = training_objectives("learned", 0.0, {"group"}, "none",
                                resolve_judge(config(pass_at_k=PassAtKConfig()), generations()))
    assert "pass@10" not in marks and marks["pass@10_learned"] == "GRPO reward"
    # Unresolved, `auto` would name no column: an error, not silently unmarked metrics.
    with pytest.raises(ValueError, match="evaluate.pass_at_k.judge is 'auto'; pass resolve_judge"):
        training_objectives("learned", 0.0, {"group"}, "none", config(pass_at_k=PassAtKConfig()))


def grpo_reward_case() -> tuple[dict, EvaluateConfig, GRPOStageConfig]:
    """One file of 8 tweets x 3 samples, the last at the token cap (8), under a mix reward with every term on."""
    rows = make_rows(lambda i, j: f"{'good' if j == 0 else 'meh'} reply {i} {'x' * 3 * j}", n=3)
    for row in rows:
        row["sample_tokens"] = [2, 5, 8]
    grpo = GRPOStageConfig(reward_type="mix", mix_heuristic_weight=0.5, mix_learned_weight=2.0, diversity_weight=0.1,
                           overlong_weight=0.3, max_completion_length=8, overlong_cache_tokens=4)
    evaluation = config(n_samples=3, max_new_tokens=8,
                        pass_at_k=PassAtKConfig(judge="learned", threshold="median", k=[1, 3]))
    return {("baseline_full", 1): rows}, evaluation, grpo


def test_grpo_reward_is_the_weighted_sum_of_every_training_term(scorers) -> None:
    gens, evaluation, grpo = grpo_reward_case()
    result = evaluate(gens, scorers, evaluation, grpo=grpo)
    expected = []
    for row in gens["baseline_full", 1]:
        heuristic = np.array([len(s) / 100 for s in row["samples"]])  # the stand-in: length / 100
        learned = np.array([float("good" in s) for s in row["samples"]])
        emb = scorers.embed(row["samples"])
        # Mean cosine distance to the tweet's 2 other samples (the stand-in embeddings are unit rows).
        diversity = (1 - emb @ emb.T).sum(axis=1) / 2
        # TRL's lengths: 2 + EOS = 3 <= 8 - 4: 0; 5 + EOS = 6: (4 - 6) / 4; 8, at the cap (no EOS): (4 - 8) / 4.
        overlong = np.array([0.0, -0.5, -1.0])
        expected.append((0.5 * heuristic + 2.0 * learned + 0.1 * diversity + 0.3 * overlong).mean())
    np.testing.assert_allclose(result.per_prompt["grpo_reward"], expected)
    assert result.metrics["baseline_full.grpo_reward"] == pytest.approx(np.mean(expected))
    assert "| grpo_reward |" in metric_table(result)  # the report's table shows it


def test_grpo_reward_needs_the_grpo_config_and_token_counts(scorers, caplog) -> None:
    gens, evaluation, grpo = grpo_reward_case()
    assert "grpo_reward" not in evaluate(gens, scorers, evaluation).per_prompt  # no grpo config: no column
    for row in gens["baseline_full", 1]:
        del row["sample_tokens"]  # a file written before generate counted tokens
    with caplog.at_level(logging.WARNING):
        assert "grpo_reward" not in evaluate(gens, scorers, evaluation, grpo=grpo).per_prompt
    assert "baseline_full/seed_1.jsonl has no sample_tokens" in caplog.text
    # Without the overlong term the counts are not needed.
    no_overlong = GRPOStageConfig(overlong_weight=0.0)
    assert "grpo_reward" in evaluate(gens, scorers, evaluation, grpo=no_overlong).per_prompt
