"""The report's success criteria, tables and plots, from an evaluation of synthetic generations."""

from __future__ import annotations

import pytest

from replyrl.configs.evaluate import EvaluateConfig, PassAtKConfig
from replyrl.configs.grpo import GRPORun
from replyrl.evaluation.evaluate import evaluate
from replyrl.evaluation.report import check_criteria, plot_diversity_quality, plot_passk, render_report
from tests.evaluation.conftest import REFERENCE_PAIRS, make_rows


def run(scorers, seeds=(7,)):
    # The learned judge: under the gold (see conftest) "good good good" would be a gamed reply and fail.
    # Per tweet, a sample passes when it is as good as the best human reply ("good human reply i": 1).
    config = EvaluateConfig(sft_models=["polychromic_full"], report_examples=2,
                            pass_at_k=PassAtKConfig(judge="learned", threshold="per_tweet"))
    gens = {}
    for seed in seeds:
        # full SFT: one passing sample on tweets 0 and 1 -> Pass@10 = 0.25
        gens["polychromic_full", seed] = make_rows(lambda i, j: f"{'good' if j == 0 and i < 2 else 'meh'} take {i}-{j}")
        # the proposed model: always passes, but repeats itself and shares no words with the humans
        gens["grpo_from_polychromic", seed] = make_rows(lambda i, j: "good good good")
    kl = {f"grpo_from_polychromic/seed_{seed}": 12.0 for seed in seeds}
    runs = [GRPORun("from_polychromic", "polychromic", "group")]
    return evaluate(gens, scorers, config, kl, trained_on={"semantic_diversity": "polychromic SFT"}, grpo_runs=runs), gens, config


@pytest.fixture
def setup(scorers):
    return run(scorers)


def test_criteria_marked_met_and_not_met_from_measured_values(setup, scorers) -> None:
    result, _, _ = setup
    passk, rouge, self_bleu, kl, engagement = check_criteria(result)
    # One seed: the verdict table gives no verdict, so the Pass@k criterion cannot be judged.
    assert passk.met is None and passk.value is None
    assert rouge.met is False and rouge.value < 0.30
    assert self_bleu.met is False and self_bleu.value == pytest.approx(1.0)
    assert kl.met is False and kl.value == 12.0
    assert engagement.met is True and engagement.value == 1.0
    # Three seeds: better than full SFT in the verdict table (its only comparison here), so met.
    passk = check_criteria(run(scorers, seeds=(7, 8, 9))[0])[0]
    assert passk.met is True and passk.value == 1 and passk.target == "better in all 1"


def test_criteria_are_na_without_the_proposed_model(setup) -> None:
    result, _, _ = setup
    result.models = ["baseline_full"]
    result.metrics = {k: v for k, v in result.metrics.items() if "grpo" not in k}
    result.grpo_kl = {}
    assert all(c.met is None and c.value is None for c in check_criteria(result))


def test_report_has_tables_verdicts_criteria_and_examples(setup, scorers, tmp_path) -> None:
    result, gens, config = setup
    text = render_report(result, gens, config)
    assert "| metric | polychromic_full | grpo_from_polychromic | trained on |" in text and "winner" not in text
    assert "| self_bleu (lower is better) |" in text and text.count("**not met**") == 3  # Self-BLEU, ROUGE-L, KL
    assert "| semantic_diversity |" in text and "| polychromic SFT |" in text
    # The per-tweet criterion, its sanity figure, and the gold beside the Pass@k judge.
    assert "at least as high as that tweet's best human reply's" in text
    assert "Sanity: 50% of the human replies themselves pass this way." in text
    assert "| pass@10_gold |" in text and "`pass@k_gold` uses the `gold` judge" in text
    assert "`gold_score` is the sample's ground-truth engagement function (never trained on)" in text
    # One seed: no verdict, said plainly.
    assert "Checkpoint-level: training variance not measured" in text
    assert "| grpo_from_polychromic vs polychromic_full | pass@5 |" in text and "no verdict (one seed)" in text
    assert "### Tweet 2" in text and "### Tweet 3" not in text  # report_examples = 2
    assert "](../plots/passk.png)" in text
    many = render_report(run(scorers, seeds=(7, 8, 9))[0], gens, config)
    assert "Checkpoint-level" not in many and "**Secondary comparisons: exploratory.** Benjamini-Hochberg" in many
    # The primary comparison (grpo_from_baseline) was not evaluated here: said so, before the exploratory table.
    assert many.index("**Primary** (grpo_from_polychromic vs grpo_from_baseline on pass@5): not evaluated") < many.index(
        "| comparison | metric | difference [95% CI] | p | BH q |")
    assert "| 3 of 3 up; P(impr.) 1.00 |" in many and "trained on: not evidence" in many
    assert "| semantic_diversity (trained on: polychromic SFT) |" in many
    plot_passk(result.passk, tmp_path / "passk.png")
    plot_diversity_quality(result, tmp_path / "dq.png")
    for name in ("passk.png", "dq.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_report_on_own_data_names_the_learned_judge_that_auto_chose(scorers) -> None:
    # The user's own rows (no chat ratings) under the default judge `auto`: the learned reward judges.
    config = EvaluateConfig(sft_models=["polychromic_full"], report_examples=1)
    gens = {("polychromic_full", 7): make_rows(lambda i, j: f"meh take {i}-{j}", context=False)}
    text = render_report(evaluate(gens, scorers, config, reference=REFERENCE_PAIRS), gens, config)
    assert "A sample passes Pass@k when its `learned` judge score" in text
    assert "carry no gold context" in text and "`gold_score`" not in text
