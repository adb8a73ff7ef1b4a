"""`reports/evaluation.md` and the evaluation plots, from an `Evaluation`.

The report holds the model-by-metric table with a winner column, the original recipe's success
criteria each marked met / not met with the measured value, the significance tests, and a few
random test tweets with every model's replies for reading by eye.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from replyrl.configs.evaluate import EvaluateConfig
from replyrl.evaluation.evaluate import LOWER_IS_BETTER, METRICS, Evaluation
from replyrl.io import new_figure, save_figure

# The recipe's proposed model, which its success criteria are about.
PROPOSED = "grpo_from_polychromic"
# Thresholds of the original recipe's success criteria.
MIN_ROUGE_L = 0.30
MAX_SELF_BLEU = 0.35
MAX_FINAL_KL = 10.0
MIN_ENGAGEMENT = 0.60


@dataclass
class Criterion:
    name: str
    target: str
    value: float | None  # None: could not be measured (model not evaluated, no KL logged)
    met: bool | None


def check_criteria(evaluation: Evaluation, baseline: str = "baseline_full", alpha: float = 0.05) -> list[Criterion]:
    """The recipe's success criteria, measured on `PROPOSED` (n/a when it was not evaluated)."""
    m = evaluation.metrics
    k = max(int(c.split("@")[1]) for c in evaluation.per_prompt.columns if c.startswith("pass@") and c[5:].isdigit())
    others = [m.get(f"{model}.pass@{k}") for model in evaluation.models if model != PROPOSED]
    best_other = max((v for v in others if v is not None), default=None)
    p_key = f"significance.{PROPOSED}_vs_{baseline}.pass@{k}.wilcoxon_p_adj"
    kl = max(evaluation.grpo_kl.values()) if evaluation.grpo_kl else None

    def get(metric: str) -> float | None:
        return m.get(f"{PROPOSED}.{metric}")

    proposed_passk = get(f"pass@{k}")
    return [
        Criterion(f"Pass@{k}: {PROPOSED} beats every other model", f"> {_fmt(best_other)} (best other)",
                  proposed_passk, _cmp(proposed_passk, best_other, higher=True)),
        Criterion("ROUGE-L of the greedy reply", f"> {MIN_ROUGE_L}", get("rouge_l"),
                  _cmp(get("rouge_l"), MIN_ROUGE_L, higher=True)),
        Criterion("Self-BLEU within a tweet's samples", f"< {MAX_SELF_BLEU}", get("self_bleu"),
                  _cmp(get("self_bleu"), MAX_SELF_BLEU, higher=False)),
        Criterion(f"Pass@{k} vs {baseline}: Wilcoxon p (adjusted)", f"< {alpha}", m.get(p_key),
                  _cmp(m.get(p_key), alpha, higher=False)),
        Criterion("Final KL of every GRPO run (max)", f"< {MAX_FINAL_KL}", kl, _cmp(kl, MAX_FINAL_KL, higher=False)),
        Criterion("Predicted engagement", f"> {MIN_ENGAGEMENT}", get("predicted_engagement"),
                  _cmp(get("predicted_engagement"), MIN_ENGAGEMENT, higher=True)),
    ]


def _cmp(value: float | None, bound: float | None, higher: bool) -> bool | None:
    if value is None or bound is None:
        return None
    return value > bound if higher else value < bound


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _cell(text: str) -> str:
    """Text safe inside a one-line markdown table cell or list item."""
    return " ".join(str(text).split()).replace("|", "\\|") or "(empty)"


def metric_table(evaluation: Evaluation) -> str:
    """Markdown table: one row per metric, one column per model (mean ± std over seeds), and the winner."""
    m = evaluation.metrics
    names = [c for c in evaluation.per_prompt.columns if c.startswith("pass@")]
    names += [c for c in METRICS if c in evaluation.per_prompt.columns]
    names += [c for c in ("llm_win_rate", "final_kl") if any(f"{model}.{c}" in m for model in evaluation.models)]
    lines = ["| metric | " + " | ".join(evaluation.models) + " | winner |",
             "|---" * (len(evaluation.models) + 2) + "|"]
    for name in names:
        values = {model: m.get(f"{model}.{name}") for model in evaluation.models}
        cells = [_fmt(v) + (f" ± {_fmt(m[f'{model}.{name}_std'])}" if v is not None and f"{model}.{name}_std" in m
                            else "")
                 for model, v in values.items()]
        scored = {model: v for model, v in values.items() if v is not None}
        best = (min if name in LOWER_IS_BETTER else max)(scored.values(), default=None)
        leaders = [model for model, v in scored.items() if v == best]
        if name == "final_kl" or not leaders:  # the KL is a safeguard, not a score to win on
            winner = "—"
        else:
            winner = leaders[0] if len(leaders) == 1 else "tie"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {winner} |")
    return "\n".join(lines)


def criteria_table(criteria: Sequence[Criterion]) -> str:
    lines = ["| criterion | target | measured | status |", "|---|---|---|---|"]
    for c in criteria:
        status = "n/a" if c.met is None else ("met" if c.met else "**not met**")
        lines.append(f"| {c.name} | {c.target} | {_fmt(c.value, 4)} | {status} |")
    return "\n".join(lines)


def significance_table(table: pd.DataFrame) -> str:
    lines = ["| model | vs | metric | mean diff | Cohen's d | Mann-Whitney p (adj) | Wilcoxon p (adj) |",
             "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.model} | {r.other} | {r.metric} | {r.mean_diff:+.3f} | {_fmt(r.cohens_d, 2)} | "
                     f"{r.mannwhitney_p:.3g} ({r.mannwhitney_p_adj:.3g}) | "
                     f"{r.wilcoxon_p:.3g} ({r.wilcoxon_p_adj:.3g}) |")
    return "\n".join(lines)


def examples(evaluation: Evaluation, generations: dict[tuple[str, int], list[dict]], n: int, seed: int) -> str:
    """``n`` random test tweets with the human replies and every model's greedy reply and samples."""
    first_seed = evaluation.seeds[0]
    rows0 = generations[evaluation.models[0], first_seed]
    picks = sorted(random.Random(seed).sample(range(len(rows0)), min(n, len(rows0))))
    parts = []
    for number, i in enumerate(picks, 1):
        parts.append(f"### Tweet {number}\n\n> {_cell(rows0[i]['tweet'])}\n\nHuman replies:\n")
        parts.extend(f"- {_cell(ref)}" for ref in rows0[i]["references"])
        for model in evaluation.models:
            row = generations[model, first_seed][i]
            parts.append(f"\n**{model}** (seed {first_seed}) greedy: {_cell(row['greedy'])}\n")
            parts.extend(f"{j}. {_cell(sample)}" for j, sample in enumerate(row["samples"], 1))
        parts.append("")
    return "\n".join(parts)


def render_report(evaluation: Evaluation, generations: dict[tuple[str, int], list[dict]], config: EvaluateConfig,
                  plots_dir: str = "../plots") -> str:
    """The whole of `reports/evaluation.md`; ``plots_dir`` is the plots folder relative to the report."""
    sig = config.significance
    criteria = check_criteria(evaluation, sig.baseline, sig.alpha)
    table = evaluation.significance
    if len(table):
        significance = (
            "Per-conversation values (averaged over seeds and its tweets), paired by conversation. "
            f"{table.groupby('metric').size().max()} "
            f"comparisons per metric: the p-values in brackets are {sig.correction}-adjusted within each metric and "
            f"test, and those are the ones to hold against alpha = {sig.alpha}.\n\n" + significance_table(table)
        )
    else:
        significance = "No comparisons: fewer than two of the configured models were evaluated."
    judge_note = (
        " `llm_win_rate`: how often the LLM judge prefers the greedy reply to the first human reply (tie = 0.5)."
        if any(k.endswith(".llm_win_rate") for k in evaluation.metrics) else ""
    )
    other_judges = "".join(
        f" `pass@k_{judge}` uses the `{judge}` judge at >= {threshold:.4f} (median of the human replies)."
        for judge, threshold in evaluation.thresholds.items() if judge != config.pass_at_k.judge
    )
    if "gold_score" in evaluation.per_prompt.columns:
        judge_note += (" `gold_score` is the sample's ground-truth engagement function (never trained on); "
                       "`predicted_engagement` is the learned proxy reward and `heuristic_reward` the heuristic one: "
                       "a model that gains on a proxy but not on the gold is gaming the proxy.")
    return "\n\n".join([
        "# Evaluation",
        f"{evaluation.metrics['n_prompts']:.0f} test tweets, seeds {evaluation.seeds}; values are mean ± std over "
        f"seeds of per-tweet averages. A sample passes Pass@k when its `{config.pass_at_k.judge}` judge score is >= "
        f"{evaluation.threshold:.4f}.{other_judges} Diversity is measured within each tweet's samples (Self-BLEU as a 0-1 "
        f"fraction); ROUGE-L (stemmed) and BERTScore F1 compare the greedy reply with the human replies "
        f"(BERTScore model `{evaluation.bertscore_model}`, layer {evaluation.metrics['bertscore_layer']:.0f}, "
        f"no baseline rescaling).{judge_note}",
        "## Models\n\n" + metric_table(evaluation),
        f"## Success criteria (original recipe, measured on {PROPOSED})\n\n" + criteria_table(criteria),
        "## Significance\n\n" + significance,
        f"## Plots\n\n![Pass@k]({plots_dir}/passk.png)\n\n"
        f"![Diversity vs quality]({plots_dir}/diversity_vs_quality.png)",
        "## Examples\n\n" + examples(evaluation, generations, config.report_examples, config.report_seed),
    ])


def plot_passk(passk: pd.DataFrame, path: str | Path) -> None:
    """Pass@k curve per model with its bootstrap interval."""
    fig, ax = new_figure(figsize=(6, 4))
    for model, group in passk.groupby("model", sort=False):
        ax.plot(group["k"], group["pass@k"], marker="o", label=model)
        ax.fill_between(group["k"], group["ci_low"], group["ci_high"], alpha=0.15)
    ax.set(xlabel="k", ylabel="Pass@k", title="Pass@k (bootstrap CI over conversations)", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=120)


def plot_diversity_quality(evaluation: Evaluation, path: str | Path) -> None:
    """Semantic diversity against quality (the gold where there is one, else predicted engagement), one
    point per model (error bars: std over seeds)."""
    m = evaluation.metrics
    quality = "gold_score" if "gold_score" in evaluation.per_prompt.columns else "predicted_engagement"
    fig, ax = new_figure(figsize=(6, 4))
    for model in evaluation.models:
        x, y = m[f"{model}.semantic_diversity"], m[f"{model}.{quality}"]
        ax.errorbar(x, y, xerr=m[f"{model}.semantic_diversity_std"], yerr=m[f"{model}.{quality}_std"],
                    fmt="o", capsize=3, label=model)
    ax.set(xlabel="semantic diversity (mean pairwise cosine distance)", ylabel=quality.replace("_", " "),
           title="Diversity vs quality")
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=120)


