"""The report's success criteria, tables and plots, from an evaluation of synthetic generations."""

from __future__ import annotations

import pytest

from replyrl.configs.evaluate import EvaluateConfig, PassAtKConfig
from replyrl.evaluation.evaluate import evaluate
from replyrl.evaluation.report import check_criteria, plot_diversity_quality, plot_passk, render_report
from tests.evaluation.conftest import make_rows


@pytest.fixture
def setup(scorers):
    # The learned judge: under the gold (see conftest) "good good good" would be a gamed reply and fail.
    config = EvaluateConfig(sft_models=["baseline_full"], grpo_inits=["polychromic"], report_examples=2,
                            pass_at_k=PassAtKConfig(judge="learned"))
    gens = {
        # baseline: one passing sample on even tweets -> Pass@10 = 0.5
        ("baseline_full", 7): make_rows(lambda i, j: f"{'good' if j == 0 and i % 2 == 0 else 'meh'} take {i}-{j}"),
        # the proposed model: always passes, but repeats itself and shares no words with the humans
        ("grpo_from_polychromic", 7): make_rows(lambda i, j: "good good good"),
    }
    kl = {"grpo_from_polychromic/seed_7": 12.0}
    return evaluate(gens, scorers, config, kl), gens, config


def test_criteria_marked_met_and_not_met_from_measured_values(setup) -> None:
    result, _, _ = setup
    passk, rouge, self_bleu, p_value, kl, engagement = check_criteria(result)
    assert passk.met is True and passk.value == 1.0 and passk.target == "> 0.500 (best other)"
    assert rouge.met is False and rouge.value < 0.30
    assert self_bleu.met is False and self_bleu.value == pytest.approx(1.0)
    # 4 of 8 tweets differ, all one way: the exact Wilcoxon p is 2/16 = 0.125, not below 0.05
    assert p_value.met is False and p_value.value == pytest.approx(0.125)
    assert kl.met is False and kl.value == 12.0
    assert engagement.met is True and engagement.value == 1.0


def test_criteria_are_na_without_the_proposed_model(setup) -> None:
    result, _, _ = setup
    result.models = ["baseline_full"]
    result.metrics = {k: v for k, v in result.metrics.items() if "grpo" not in k}
    result.grpo_kl = {}
    assert all(c.met is None and c.value is None for c in check_criteria(result))


def test_report_has_table_criteria_and_examples(setup, tmp_path) -> None:
    result, gens, config = setup
    text = render_report(result, gens, config)
    assert "| metric | baseline_full | grpo_from_polychromic | winner |" in text
    assert "| self_bleu |" in text and text.count("**not met**") == 4  # Self-BLEU, ROUGE-L, p-value, KL
    # The gold is reported beside the Pass@k judge, with its own threshold, and explained.
    assert "| pass@10_gold |" in text and "`pass@k_gold` uses the `gold` judge at >= 0.5000" in text
    assert "`gold_score` is the sample's ground-truth engagement function (never trained on)" in text
    assert "### Tweet 2" in text and "### Tweet 3" not in text  # report_examples = 2
    assert "holm-adjusted" in text and "](../plots/passk.png)" in text
    plot_passk(result.passk, tmp_path / "passk.png")
    plot_diversity_quality(result, tmp_path / "dq.png")
    for name in ("passk.png", "dq.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
