"""`replyrl compare`: each model against itself in another run, paired by seed and conversation."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from replyrl.__main__ import main
from replyrl.configs.evaluate import EvaluateConfig
from replyrl.configs.loader import ConfigError
from replyrl.evaluation.compare import PER_PROMPT, Run, compare, load_run, render_comparison
from replyrl.evaluation.verdicts import verdict_code

PROPOSED, WARM_START = "grpo_from_polychromic", "polychromic_phase1"  # the default primary model, and one other
METRICS = ("pass@5", "pass@10", "gold_score", "predicted_engagement", "semantic_diversity")


def per_prompt(effect: float = 0.0, seeds=(1, 2, 3), n_tweets: int = 8, gold: bool = True) -> pd.DataFrame:
    """One row per (model, seed, tweet), each tweet its own conversation; values in [0.1, 0.6] drawn the
    same for every call, then ``effect`` plus a little noise (0.02 SD, per seed and tweet) added to
    `PROPOSED`'s: a candidate run's with ``effect`` > 0 is better on every seed, its warm-start unchanged."""
    base, noise = np.random.default_rng(0), np.random.default_rng(1)
    rows = []
    for model in (PROPOSED, WARM_START):
        for seed in seeds:
            for i in range(n_tweets):
                shift = effect + noise.normal(0, 0.02) if model == PROPOSED and effect else 0.0
                rows.append({"model": model, "seed": seed, "tweet_id": f"id:{i}", "group_id": f"conversation:{i}",
                             **{m: base.uniform(0.1, 0.6) + shift for m in METRICS}})
    table = pd.DataFrame(rows)
    return table if gold else table.drop(columns="gold_score")


def run(label: str, table: pd.DataFrame, trained_on: dict[str, str] | None = None) -> Run:
    return Run(label, label, table, EvaluateConfig(), trained_on or {})


def test_a_real_effect_on_every_seed_is_better_on_the_primary() -> None:
    result = compare(run("HEAD", per_prompt()), run("ablation", per_prompt(effect=0.3)))
    primary = result.table.iloc[0]
    # The default primary: evaluate.significance.primary's model and metric, the model against itself.
    assert (primary.model, primary.other, primary.metric, primary.role) == (
        f"{PROPOSED}@ablation", f"{PROPOSED}@HEAD", "pass@5", "primary")
    assert primary["diff"] == pytest.approx(0.3, abs=0.02) and primary.df == 2 and primary.test_level == 0.05
    assert primary.verdict == "better" and primary.seeds_up == 3 and np.isnan(primary.p_adj)
    # Every model both runs have, on the verdict metrics; the warm-start did not change.
    assert set(zip(result.table.model, result.table.metric)) == {
        (f"{m}@ablation", metric) for m in (PROPOSED, WARM_START) for metric in ("pass@5", "gold_score",
                                                                                 "semantic_diversity")}
    assert result.unchanged == [WARM_START] and result.seeds == [1, 2, 3]
    text = render_comparison(result)
    assert "**better**" in text and f"| {WARM_START}@ablation vs {WARM_START}@HEAD | gold_score |" in text


def test_identical_tables_are_never_better() -> None:
    table = per_prompt()
    result = compare(run("HEAD", table), run("copy", table.copy()))
    assert len(result.table) == 6 and result.unchanged == [PROPOSED, WARM_START]
    # Zero difference everywhere: the verdict rules say "no difference" where the design can see one.
    assert all(verdict_code(v) != 1 for v in result.table.verdict)
    assert all(v.startswith(("no difference", "inconclusive")) for v in result.table.verdict)
    # --models keeps the BH family to the models an ablation touches.
    assert set(compare(run("HEAD", table), run("copy", table), models=[PROPOSED]).table.model) == {f"{PROPOSED}@copy"}


def test_runs_on_different_tweets_or_seeds_are_refused_or_paired_on_what_they_share(caplog) -> None:
    with pytest.raises(ConfigError, match="different test tweets"):
        compare(run("HEAD", per_prompt()), run("ablation", per_prompt(n_tweets=7)))
    with pytest.raises(ConfigError, match="no seed in common"):
        compare(run("HEAD", per_prompt()), run("ablation", per_prompt(seeds=(4, 5))))
    with caplog.at_level(logging.WARNING):
        result = compare(run("HEAD", per_prompt()), run("ablation", per_prompt(seeds=(1, 2, 4))))
    assert "seeds differ" in caplog.text and result.seeds == [1, 2] and (result.table.n_seeds == 2).all()
    # Sampled hotter: the same columns, not the same measurement.
    hotter = Run("ablation", "ablation", per_prompt(), EvaluateConfig(temperature=1.0), {})
    with caplog.at_level(logging.WARNING):
        compare(run("HEAD", per_prompt()), hotter)
    assert "evaluate.temperature differ" in caplog.text
    with pytest.raises(ConfigError, match="must be one of"):
        compare(run("HEAD", per_prompt()), run("ablation", per_prompt()), primary=("grpo_from_baseline", "pass@5"))


def write_run(folder: Path, table: pd.DataFrame, params: dict) -> None:
    (folder / "reports").mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / PER_PROMPT, index=False)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


def test_a_metric_either_run_trained_on_is_marked_and_out_of_the_family(tmp_path, capsys) -> None:
    # No gold (the user's own data): the judge `auto` is the learned one, and quality is predicted
    # engagement. The ablation trains GRPO on that learned reward: its Pass@k and predicted engagement
    # are trained on in that run, so in the comparison too, the primary included.
    base, cand = tmp_path / "base", tmp_path / "cand"
    write_run(base, per_prompt(gold=False), {})
    write_run(cand, per_prompt(effect=0.3, gold=False), {"grpo": {"reward_type": "learned"}})
    out = tmp_path / "rows.json"
    main(["compare", str(base / PER_PROMPT), str(cand / PER_PROMPT), "--params", str(base / "params.yaml"),
          "--json", str(out)])
    result = compare(load_run(str(base / PER_PROMPT), params_file=base / "params.yaml"),
                     load_run(str(cand / PER_PROMPT), params_file=cand / "params.yaml"))
    table = result.table.set_index(["model", "metric"])
    for metric in ("pass@5", "predicted_engagement"):
        row = table.loc[(f"{PROPOSED}@{cand / PER_PROMPT}", metric)]
        assert row.trained_on == f"GRPO reward ({cand / PER_PROMPT} only)" and row.verdict == "trained on: not evidence"
        assert np.isnan(row.p_adj)
    assert table.loc[(f"{PROPOSED}@{cand / PER_PROMPT}", "pass@5")].role == "primary"
    diversity = table.xs("semantic_diversity", level="metric")
    assert diversity.trained_on.str.startswith("polychromic SFT").all() and (diversity.role == "trained on").all()
    # The CLI read one params file for both (the default's: no reward marked): the table printed, rows written.
    assert "| comparison | metric |" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert len(rows) == 6 and rows[0]["role"] == "primary" and rows[0]["verdict"] == "better"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.com",
                           "-c", "commit.gpgsign=false", *args], check=True, capture_output=True, text=True).stdout


def test_runs_load_from_a_git_revision_and_a_dvc_experiment_name(tmp_path) -> None:
    # A baseline commit and an experiment commit on it, referenced as `dvc exp run -n my-ablation` does
    # (refs/exps/<baseline sha[:2]>/<baseline sha[2:]>/my-ablation), with HEAD back on the baseline.
    git(tmp_path, "init", "-q")
    write_run(tmp_path, per_prompt(), {"grpo": {"reward_type": "heuristic", "diversity_weight": 0.0}})
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "baseline")
    baseline = git(tmp_path, "rev-parse", "HEAD").strip()
    write_run(tmp_path, per_prompt(effect=0.3), {"grpo": {"reward_type": "heuristic", "diversity_weight": 0.5}})
    git(tmp_path, "commit", "-q", "-am", "experiment")
    experiment = git(tmp_path, "rev-parse", "HEAD").strip()
    git(tmp_path, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/my-ablation", experiment)
    git(tmp_path, "update-ref", f"refs/exps/ff/{'f' * 38}/my-ablation", baseline)  # same name, another baseline
    git(tmp_path, "reset", "-q", "--hard", baseline)

    head, ablation = load_run("HEAD", repo=tmp_path), load_run("my-ablation", repo=tmp_path)
    assert (head.label, head.source, ablation.label, ablation.source) == ("HEAD", baseline, "my-ablation", experiment)
    # Each revision's own params: the diversity bonus only in the experiment.
    assert ablation.trained_on["semantic_diversity"] == "polychromic SFT, GRPO diversity bonus"
    assert head.trained_on["semantic_diversity"] == "polychromic SFT"
    result = compare(head, ablation)
    row = result.table[result.table.metric == "semantic_diversity"].iloc[0]
    assert row.trained_on == "polychromic SFT, GRPO diversity bonus (my-ablation only)"
    assert result.table.iloc[0].verdict == "better"
    workspace = load_run(str(tmp_path / PER_PROMPT), repo=tmp_path, params_file=tmp_path / "params.yaml")
    assert workspace.label == "workspace"  # the repository's own per-prompt file, not its long path
    with pytest.raises(ConfigError, match="not a file, a DVC experiment"):
        load_run("no-such-run", repo=tmp_path)
