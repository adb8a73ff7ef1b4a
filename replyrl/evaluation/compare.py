"""`python -m replyrl compare`: the same models in two runs (an ablation and its baseline), seed-level verdicts.

Each model both runs evaluated is compared with itself: ``<model>@<candidate>`` minus
``<model>@<baseline>``, paired by seed (the same seeds, so the same data order and warm-starts) and by
conversation (the same test tweets), on the verdict table's metrics (`verdicts.verdict_metrics`), with
`verdicts.verdicts`' statistics: one pre-registered primary row (by default the model and metric of the
baseline's `evaluate.significance.primary`) tested alone at alpha, every other row exploratory with
Benjamini-Hochberg over them, a metric either run trained on marked and out of the families.

A run is a per-prompt table (`reports/evaluation_per_prompt.csv`, which the evaluate stage writes and git
tracks) with the params it was made with: a file (with the workspace's params file), or any git revision
or DVC experiment name (its commit's file and params.yaml, via `git show`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from dvc.repo.experiments.exceptions import AmbiguousExpRefInfo
from dvc.repo.experiments.utils import resolve_name
from dvc.scm import SCM

from replyrl.configs.evaluate import EvaluateConfig, PrimaryConfig
from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.loader import PARAMS_FILE, ConfigError, from_dict, load_params, to_dict
from replyrl.configs.sft import SFTStageConfig
from replyrl.evaluation.evaluate import training_objectives
from replyrl.evaluation.report import primary_verdict, verdict_table
from replyrl.evaluation.verdicts import verdict_metrics, verdicts

logger = logging.getLogger(__name__)

PER_PROMPT = "reports/evaluation_per_prompt.csv"  # the evaluate stage's --per-prompt (dvc.yaml)
# The `evaluate` params a per-tweet value depends on: where the runs differ in one, a column may not
# measure the same thing in both (the model lists, the report and the significance settings do not matter).
MEASUREMENT_PARAMS = ("max_prompts", "prompt_seed", "n_samples", "temperature", "top_p", "max_new_tokens",
                      "pass_at_k", "bertscore_layer")


@dataclass
class Run:
    """One side of a comparison."""

    label: str  # its models are named <model>@<label>: the revision or path given, `workspace` for PER_PROMPT
    source: str  # the file read, or the commit
    per_prompt: pd.DataFrame
    evaluate: EvaluateConfig  # its `evaluate` params, the Pass@k judge resolved (`resolved_judge`)
    trained_on: dict[str, str]  # `training_objectives` of its params


@dataclass
class Comparison:
    baseline: Run
    candidate: Run
    config: EvaluateConfig  # the baseline's, its primary the compared model and metric
    table: pd.DataFrame  # `verdicts.verdicts` rows
    seeds: list[int]  # those both runs have: the pairing
    unchanged: list[str]  # models whose values are the same in both runs (DVC reused their outputs)


def _git(repo: str | Path, *args: str) -> str:
    """stdout of ``git args`` in ``repo``; a failure is a one-line ConfigError with git's own message."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, encoding="utf-8",
                          check=False)
    if done.returncode:
        raise ConfigError(f"git {' '.join(args)}: {' '.join(done.stderr.split()) or f'exit {done.returncode}'}")
    return done.stdout


def resolve_revision(rev: str, repo: str | Path = ".") -> str:
    """The commit of ``rev``: a DVC experiment's name (the Experiment column of `dvc exp show`, or
    ``dvc exp run -n``'s), resolved by DVC itself (a name shared by experiments of several baselines means
    the one based on HEAD, else it is ambiguous), else any git revision (``HEAD``, a branch, a sha, a full
    ``refs/exps/...`` ref)."""
    scm = SCM(str(repo))
    try:
        ref = resolve_name(scm, rev)[rev]
    except AmbiguousExpRefInfo as e:
        raise ConfigError(f"{rev}: {' '.join(str(e).split())}; give the full ref (refs/exps/...)") from None
    finally:
        scm.close()
    if ref is not None:
        return _git(repo, "rev-parse", "--verify", str(ref)).strip()
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except ConfigError:
        raise ConfigError(f"{rev}: not a file, a DVC experiment (`dvc exp show`) or a git revision") from None


def resolved_judge(config: EvaluateConfig, per_prompt: pd.DataFrame) -> EvaluateConfig:
    """``config`` with ``pass_at_k.judge: auto`` made concrete as the evaluate stage resolved it
    (`evaluate.resolve_judge`): `gold` exactly where the gold was scored, which a `gold_score` column shows."""
    if config.pass_at_k.judge != "auto":
        return config
    judge = "gold" if "gold_score" in per_prompt.columns else "learned"
    return dataclasses.replace(config, pass_at_k=dataclasses.replace(config.pass_at_k, judge=judge))


def load_run(name: str, repo: str | Path = ".", params_file: str | Path = PARAMS_FILE) -> Run:
    """The run ``name`` names: a per-prompt CSV file (its params: ``params_file``), else a DVC experiment
    or git revision of ``repo`` (`resolve_revision`; its commit's `PER_PROMPT` and params.yaml)."""
    label = name
    if Path(name).is_file():
        per_prompt, params, where, source = pd.read_csv(name), load_params(params_file), str(params_file), name
        if Path(name).resolve() == (Path(repo) / PER_PROMPT).resolve():
            label = "workspace"  # the usual file, whose path would make every model name long
    else:
        source = resolve_revision(name, repo)
        per_prompt = pd.read_csv(io.StringIO(_git(repo, "show", f"{source}:{PER_PROMPT}")))
        where = f"{name}:{PARAMS_FILE}"
        try:
            params = yaml.safe_load(_git(repo, "show", f"{source}:{PARAMS_FILE}")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{where}: not valid YAML ({' '.join(str(e).split())})") from None
    sections = {section: from_dict(cls, params.get(section) or {}, f"{where}: {section}") for section, cls in
                (("evaluate", EvaluateConfig), ("grpo", GRPOStageConfig), ("sft", SFTStageConfig))}
    evaluate, grpo = resolved_judge(sections["evaluate"], per_prompt), sections["grpo"]
    trained_on = training_objectives(grpo.reward_type, grpo.diversity_weight, {run.objective for run in grpo.runs},
                                     sections["sft"].polychromic.quality, evaluate)
    return Run(label, source, per_prompt, evaluate, trained_on)


def merge_trained_on(baseline: dict[str, str], candidate: dict[str, str], labels: tuple[str, str]) -> dict[str, str]:
    """Every metric either run trained on (`training_objectives` of each), with what trained on it; a
    reason of one run only names it (``labels``: baseline's, candidate's).

    >>> merge_trained_on({"semantic_diversity": "polychromic SFT"},
    ...                  {"semantic_diversity": "polychromic SFT, GRPO diversity bonus"}, ("HEAD", "exp"))
    {'semantic_diversity': 'polychromic SFT, GRPO diversity bonus (exp only)'}
    """
    merged = {}
    for metric in dict.fromkeys([*baseline, *candidate]):
        a, b = (run[metric].split(", ") if metric in run else [] for run in (baseline, candidate))
        merged[metric] = ", ".join(why if why in a and why in b else f"{why} ({labels[why not in a]} only)"
                                   for why in dict.fromkeys([*a, *b]))
    return merged


def parse_primary(value: str) -> tuple[str, str]:
    """``MODEL:METRIC`` (``--primary``) as (model, metric)."""
    model, _, metric = value.partition(":")
    if not model or not metric:
        raise ConfigError(f"--primary {value!r}: expected MODEL:METRIC, e.g. grpo_from_polychromic:pass@5")
    return model, metric


def compare(baseline: Run, candidate: Run, primary: tuple[str, str] | None = None,
            models: Sequence[str] | None = None) -> Comparison:
    """`verdicts.verdicts` of each model (``models``, default: every model both runs have) in ``candidate``
    against itself in ``baseline``, on the seeds both have. ``primary``: the (model, metric) of the
    primary row; default the baseline's `evaluate.significance.primary` model and metric. Refuses runs
    with no common seed, different test tweets or no common model; warns where the seeds or the
    `MEASUREMENT_PARAMS` differ. The significance settings (alpha, q, power) are the baseline's."""
    if baseline.label == candidate.label:
        raise ConfigError(f"baseline and candidate are both {baseline.label!r}: compare two runs")
    base, cand = baseline.per_prompt, candidate.per_prompt
    tweets = [set(zip(t.tweet_id, t.group_id)) for t in (base, cand)]
    if tweets[0] != tweets[1]:
        raise ConfigError(f"{baseline.label} and {candidate.label} were evaluated on different test tweets "
                          f"({len(tweets[0] - tweets[1])} and {len(tweets[1] - tweets[0])} of their own): "
                          "evaluate both with the same evaluate.max_prompts, prompt_seed and test split")
    seeds = sorted(set(base.seed) & set(cand.seed))
    if not seeds:
        raise ConfigError(f"{baseline.label} (seeds {sorted(set(base.seed))}) and {candidate.label} (seeds "
                          f"{sorted(set(cand.seed))}) have no seed in common: nothing to pair")
    if set(base.seed) != set(cand.seed):
        logger.warning("compare: seeds differ (%s: %s, %s: %s); paired on %s only", baseline.label,
                       sorted(set(base.seed)), candidate.label, sorted(set(cand.seed)), seeds)
    settings = [to_dict(run.evaluate) for run in (baseline, candidate)]
    differ = [f"evaluate.{k}" for k in MEASUREMENT_PARAMS if settings[0][k] != settings[1][k]]
    if differ:
        logger.warning("compare: %s differ between the runs: a column may not measure the same thing in both",
                       ", ".join(differ))
    common = [m for m in dict.fromkeys(base.model) if m in set(cand.model)]
    if models is not None:
        missing = [m for m in models if m not in common]
        if missing:
            raise ConfigError(f"models {missing} are not in both runs; both have {common}")
        common = list(models)
    if not common:
        raise ConfigError(f"{baseline.label} and {candidate.label} have no model in common")

    # One table, each run's models renamed <model>@<label>; the columns both runs have.
    combined = pd.concat([run.per_prompt.assign(model=run.per_prompt.model + f"@{run.label}")
                          for run in (baseline, candidate)], join="inner", ignore_index=True)
    combined = combined[combined.seed.isin(seeds) & combined.model.str.rsplit("@", n=1).str[0].isin(common)]
    sig = baseline.evaluate.significance
    model, metric = primary or (sig.primary.model, sig.primary.metric)
    if primary and (model not in common or metric not in combined.columns):
        metrics = [c for c in combined.columns if c not in ("model", "seed", "tweet_id", "group_id")]
        raise ConfigError(f"--primary {model}:{metric}: the model must be one of {common} and the metric a column "
                          f"of both tables ({', '.join(metrics)})")
    config = dataclasses.replace(baseline.evaluate, significance=dataclasses.replace(
        sig, primary=PrimaryConfig(f"{model}@{candidate.label}", f"{model}@{baseline.label}", metric), pairs=[]))
    question = f"{candidate.label} vs {baseline.label}"
    pairs = [(f"{m}@{candidate.label}", f"{m}@{baseline.label}", question) for m in common]
    trained_on = merge_trained_on(baseline.trained_on, candidate.trained_on, (baseline.label, candidate.label))
    table = verdicts(combined, config, trained_on, pairs=pairs)
    columns = verdict_metrics(combined, config)
    unchanged = [m for m in common if _values(base, m, seeds, columns).equals(_values(cand, m, seeds, columns))]
    return Comparison(baseline, candidate, config, table, seeds, unchanged)


def _values(per_prompt: pd.DataFrame, model: str, seeds: Sequence[int], columns: Sequence[str]) -> pd.DataFrame:
    rows = per_prompt[(per_prompt.model == model) & per_prompt.seed.isin(seeds)]
    return rows.set_index(["seed", "tweet_id"])[list(columns)].sort_index()


def render_comparison(comparison: Comparison) -> str:
    """Markdown: what was paired, the primary line and the exploratory table (`report`'s renderers)."""
    c, sig = comparison, comparison.config.significance
    base, cand = c.baseline, c.candidate
    n_tweets = c.baseline.per_prompt.tweet_id.nunique()
    lines = [
        f"# {cand.label} vs {base.label}",
        f"Each model against itself: `<model>@{cand.label}` minus `<model>@{base.label}` ({cand.source} vs "
        f"{base.source}), paired by seed ({c.seeds}) and conversation ({n_tweets} test tweets in "
        f"{base.per_prompt.group_id.nunique()} conversations); seeds and conversations are random effects, "
        f"df = seeds - 1 = {len(c.seeds) - 1}. CIs are {1 - sig.alpha:.0%}, unadjusted.",
    ]
    if c.unchanged:
        lines.append(f"Unchanged (the same values in both runs: DVC reused their outputs): {', '.join(c.unchanged)}. "
                     "Their rows read \"no difference\" and enlarge the BH family; `--models` compares only the "
                     "models named.")
    if not len(c.table):
        return "\n\n".join([*lines, "No comparisons (see the log)."])
    lines += [primary_verdict(c.table, c.config),
              f"**Other rows: exploratory**, Benjamini-Hochberg q-values over them (FDR {sig.q}); a metric either "
              "run trained on is marked and out of every family: not evidence.",
              verdict_table(c.table, 1 - sig.alpha)]
    return "\n\n".join(lines)


def table_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """The verdict rows as JSON-ready dicts (NaN as null)."""
    return json.loads(comparison.table.to_json(orient="records"))
