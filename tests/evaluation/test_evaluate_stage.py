"""The evaluate stage script end to end: real MiniLM encoder, an untrained tiny reward head, synthetic generations."""

from __future__ import annotations

import runpy
import sys

import pandas as pd
import torch
import yaml

from replyrl.io import read_json, write_json, write_jsonl
from replyrl.models.encoder import load_encoder
from replyrl.rewards.learned import FEATURES, EngagementHead, LearnedReward
from tests.conftest import REPO_ROOT
from tests.evaluation.conftest import REFERENCE_PAIRS, make_rows


def test_stage_writes_metrics_plots_and_report(encoder_dir, tiny_base_dir, tmp_path, monkeypatch) -> None:
    encoder = load_encoder(encoder_dir, device="cpu")
    torch.manual_seed(0)
    dim = encoder.get_embedding_dimension()
    architecture = {"embedding_dim": dim, "features": FEATURES, "hidden_sizes": [4], "dropout": 0.0}
    LearnedReward(EngagementHead(dim * len(FEATURES), [4], 0.0), architecture, encoder).save(tmp_path / "reward")
    for model in ("baseline_full", "grpo_from_polychromic"):
        rows = make_rows(lambda i, j: f"{model} says {i} {j % 3}", n=3)
        for row in rows:
            row["sample_tokens"] = [4, 5, 5]  # as generate counts them; 5 is the cap (max_new_tokens)
        write_jsonl(tmp_path / "gen" / model / "seed_3.jsonl", rows)
    write_json(tmp_path / "grpo" / "from_polychromic_seed_3.json", {"kl/final": 0.5})
    write_jsonl(tmp_path / "train.jsonl", REFERENCE_PAIRS)
    params = {"seeds": [3], "grpo": {"runs": [{"name": "from_polychromic", "init": "polychromic", "objective": "group"}]},
              "evaluate": {"base_models": [], "sft_models": ["baseline_full"], "n_samples": 3, "max_new_tokens": 5, "pass_at_k": {"k": [1, 3], "bootstrap_samples": 50},
                                         "report_examples": 1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setattr(sys, "argv", [
        "evaluate.py", "--params", str(tmp_path / "params.yaml"), "--generations", str(tmp_path / "gen"),
        "--encoder", str(encoder_dir), "--reward-model", str(tmp_path / "reward"),
        "--grpo-metrics", str(tmp_path / "grpo"),
        "--metrics", str(tmp_path / "metrics.json"), "--plots", str(tmp_path / "plots"),
        "--report", str(tmp_path / "reports" / "evaluation.md"), "--per-prompt", str(tmp_path / "reports" / "pp.csv"),
        "--samples", str(tmp_path / "reports" / "samples.csv"), "--reference", str(tmp_path / "train.jsonl"),
        "--tokenizer", str(tiny_base_dir),
    ])
    runpy.run_path(str(REPO_ROOT / "stages" / "evaluate.py"), run_name="__main__")

    metrics = read_json(tmp_path / "metrics.json")
    assert 0.0 <= metrics["grpo_from_polychromic.pass@3"] <= 1.0 and metrics["grpo_from_polychromic.final_kl"] == 0.5
    assert metrics["bertscore_layer"] == 6 and 0.0 < metrics["pass_threshold"] < 1.0
    assert metrics["pass_at_k_judge"] == "gold"  # the default judge `auto`, on rows with the sample's ratings
    # The people's share at the cap: reference replies of >= max_new_tokens (5) tokens. "good reply 1" has 4
    # ("good", " reply", " ", "1"), "good reply 11" 5: the ten with two digits.
    assert metrics["human.at_token_cap"] == 0.5
    passk = pd.read_csv(tmp_path / "plots" / "passk.csv")
    assert list(passk.columns) == ["model", "k", "pass@k", "ci_low", "ci_high"] and len(passk) == 4
    per_prompt = pd.read_csv(tmp_path / "reports" / "pp.csv")
    assert len(per_prompt) == 16  # 2 models x 8 tweets
    assert per_prompt["grpo_reward"].notna().all()  # the stage passes the grpo config: GRPO's whole reward
    samples = pd.read_csv(tmp_path / "reports" / "samples.csv")
    assert len(samples) == 48 and {"gold_score", "gold.relevance", "copies_tweet", "passes"} <= set(samples.columns)
    for png in ("passk.png", "diversity_vs_quality.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "reports" / "evaluation.md").read_text()
    assert "at the token cap (human 50.0%)" in report and "## What the samples look like" in report and "## Success criteria" in report and "](../plots/passk.png)" in report
    assert "A sample passes Pass@k when its `gold` judge score" in report  # the judge `auto` resolved to
