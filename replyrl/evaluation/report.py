"""`reports/evaluation.md` and the evaluation plots, from an `Evaluation`.

The report holds the model-by-metric table (metrics a model was trained on are marked), the verdicts
(`verdicts`: the pre-registered primary comparison first, then the exploratory table, with seeds as
the unit), the original recipe's success criteria judged on those, and a few random test tweets with
every model's replies for reading by eye.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from replyrl.configs.evaluate import EvaluateConfig
from replyrl.evaluation.evaluate import METRICS, Evaluation, criterion, resolve_judge
from replyrl.evaluation.verdicts import LOWER_IS_BETTER, verdict_code
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


def check_criteria(evaluation: Evaluation) -> list[Criterion]:
    """The recipe's success criteria, measured on `PROPOSED` (n/a when it was not evaluated). Its Pass@k
    criterion is judged on the verdict table: better than every model it is compared with there."""
    m = evaluation.metrics
    k = max(int(c.split("@")[1]) for c in evaluation.per_prompt.columns if c.startswith("pass@") and c[5:].isdigit())
    table = evaluation.verdicts
    # The verdict table's Pass@k (the primary one, `verdicts.verdict_metrics`), else the largest k.
    k = next((int(c[5:]) for c in (table.metric if len(table) else []) if c.startswith("pass@") and c[5:].isdigit()), k)
    rows = table[(table.model == PROPOSED) & (table.metric == f"pass@{k}")] if len(table) else table
    codes = [verdict_code(v) for v in rows.verdict] if len(rows) else []
    better = sum(code == 1 for code in codes)
    decided = len(rows) and not any(v.startswith("no verdict") for v in rows.verdict)
    kl = max(evaluation.grpo_kl.values()) if evaluation.grpo_kl else None

    def get(metric: str) -> float | None:
        return m.get(f"{PROPOSED}.{metric}")

    return [
        Criterion(f"Pass@{k}: {PROPOSED} better than each model it is compared with (verdicts)",
                  f"better in all {len(rows)}", better if decided else None, better == len(rows) if decided else None),
        Criterion("ROUGE-L of the greedy reply", f"> {MIN_ROUGE_L}", get("rouge_l"),
                  _cmp(get("rouge_l"), MIN_ROUGE_L, higher=True)),
        Criterion("Self-BLEU within a tweet's samples", f"< {MAX_SELF_BLEU}", get("self_bleu"),
                  _cmp(get("self_bleu"), MAX_SELF_BLEU, higher=False)),
        Criterion("Final KL of every GRPO run (max)", f"< {MAX_FINAL_KL}", kl, _cmp(kl, MAX_FINAL_KL, higher=False)),
        Criterion("Predicted engagement", f"> {MIN_ENGAGEMENT}", get("predicted_engagement"),
                  _cmp(get("predicted_engagement"), MIN_ENGAGEMENT, higher=True)),
    ]


def _cmp(value: float | None, bound: float | None, higher: bool) -> bool | None:
    if value is None or bound is None:
        return None
    return value > bound if higher else value < bound


def _fmt(value: float | None, digits: int | str = 3, sign: str = "") -> str:
    """``value`` to ``digits`` decimals (or a format spec such as ``3g``); n/a for None or NaN."""
    if value is None or value != value:
        return "n/a"
    return f"{value:{sign}.{digits}{'f' if isinstance(digits, int) else ''}}"


def _cell(text: str) -> str:
    """Text safe inside a one-line markdown table cell or list item."""
    return " ".join(str(text).split()).replace("|", "\\|") or "(empty)"


def metric_table(evaluation: Evaluation) -> str:
    """Markdown table: one row per metric, one column per model (mean ± std over seeds), and what a
    model was trained on (such a metric is not evidence). No winner column: the verdicts decide."""
    m = evaluation.metrics
    names = [c for c in evaluation.per_prompt.columns if c.startswith("pass@")]
    names += [c for c in METRICS if c in evaluation.per_prompt.columns]
    names += [c for c in ("llm_win_rate", "final_kl") if any(f"{model}.{c}" in m for model in evaluation.models)]
    lines = ["| metric | " + " | ".join(evaluation.models) + " | trained on |",
             "|---" * (len(evaluation.models) + 2) + "|"]
    for name in names:
        values = {model: m.get(f"{model}.{name}") for model in evaluation.models}
        cells = [_fmt(v) + (f" ± {_fmt(m[f'{model}.{name}_std'])}" if v is not None and f"{model}.{name}_std" in m
                            else "")
                 for model, v in values.items()]
        arrow = " (lower is better)" if name in LOWER_IS_BETTER else ""
        lines.append(f"| {name}{arrow} | " + " | ".join(cells) + f" | {evaluation.trained_on.get(name, '—')} |")
    return "\n".join(lines)


def samples_table(evaluation: Evaluation) -> str:
    """Markdown table of what each model's samples look like (`evaluate.sample_metrics`), against the
    human replies: length, cut-offs, assistant boilerplate, copies of the tweet, and the gold."""
    m = evaluation.metrics
    quality = "gold_score" if any(f"{model}.gold_score" in m for model in evaluation.models) else "predicted_engagement"
    cap = m.get("human.at_token_cap")
    lines = [f"| model | median chars (human {_fmt(m.get('human.median_chars'), 0)}) | at the token cap"
             f"{'' if cap is None else f' (human {cap:.1%})'} | "
             f"assistant boilerplate | copies >= 4 words of the tweet | passing copies | {quality} |",
             "|---|---|---|---|---|---|---|"]
    for model in evaluation.models:
        def share(name: str) -> str:
            value = m.get(f"{model}.{name}")
            return "n/a" if value is None or value != value else f"{value:.1%}"
        lines.append(f"| {model} | {_fmt(m.get(f'{model}.median_chars'), 0)} | {share('at_token_cap')} | "
                     f"{share('boilerplate')} | {share('copies_tweet')} | {m.get(f'{model}.passing_copies', 0):.0f} | "
                     f"{_fmt(m.get(f'{model}.{quality}'))} |")
    return "\n".join(lines)


def gold_components_table(evaluation: Evaluation) -> str:
    """Markdown table: the mean of each gold component over each model's samples (empty without a gold)."""
    m = evaluation.metrics
    names = [c.removeprefix("gold.") for c in evaluation.samples.columns if c.startswith("gold.")]
    if not names:
        return ""
    lines = ["| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {model} | " + " | ".join(_fmt(m.get(f"{model}.gold.{n}")) for n in names) + " |"
              for model in evaluation.models]
    return "\n".join(lines)


def criteria_table(criteria: Sequence[Criterion]) -> str:
    lines = ["| criterion | target | measured | status |", "|---|---|---|---|"]
    for c in criteria:
        status = "n/a" if c.met is None else ("met" if c.met else "**not met**")
        value = str(c.value) if isinstance(c.value, int) else _fmt(c.value, 4)  # a count of verdicts stays a count
        lines.append(f"| {c.name} | {c.target} | {value} | {status} |")
    return "\n".join(lines)


def _seeds(r) -> str:
    """The seeds' own view of a row: "2 of 3 up" (and how many are down), and rliable's P(improvement)."""
    down = f", {r.seeds_down} down" if r.seeds_down else ""
    return f"{r.seeds_up} of {r.n_seeds} up{down}; P(impr.) {r.prob_improvement:.2f}"


def _needed(r) -> str:
    return ("—" if r.level == "checkpoint" or r.diff == 0
            else f"{r.seeds_needed:.0f}" if pd.notna(r.seeds_needed) else "> 200")


def _ci(r) -> str:
    return f"{r.diff:+.3f} [{_fmt(r.ci_low, 3, '+')}, {_fmt(r.ci_high, 3, '+')}]"


def primary_verdict(table: pd.DataFrame, config: EvaluateConfig) -> str:
    """The pre-registered comparison's line: difference, CI, p, seeds and verdict (or why there is none)."""
    sig = config.significance
    rows = table[table.role == "primary"] if len(table) else table
    name = f"{sig.primary.model} vs {sig.primary.other} on {sig.primary.metric}"
    if not len(rows):
        return f"**Primary** ({name}): not evaluated (both models and the metric are needed)."
    r = next(rows.itertuples())
    return (f"**Primary** (pre-registered: {name}; two-sided t test at alpha = {sig.alpha}, no correction): "
            f"difference {_ci(r)} ({1 - sig.alpha:.0%} CI), p = {r.p:.3g}, df = {r.df:.1f}, detectable "
            f"{_fmt(r.mde)}, seeds: {_seeds(r)}, seeds needed {_needed(r)}: **{r.verdict}**.")


def verdict_table(table: pd.DataFrame, confidence: float) -> str:
    """The secondary (exploratory) rows, trained-on rows marked: BH q-values, the seeds' view, verdicts."""
    lines = [f"| comparison | metric | difference [{confidence:.0%} CI] | p | BH q | d_z | seeds | detectable | "
             "seeds needed | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table[table.role != "primary"].itertuples():
        mark = f" (trained on: {r.trained_on})" if r.trained_on else ""
        lines.append(f"| {r.model} vs {r.other} | {r.metric}{mark} | {_ci(r)} | {_fmt(r.p, '3g')} | "
                     f"{_fmt(r.p_adj, '3g')} | "
                     f"{_fmt(r.d_z, 2)} | {_seeds(r)} | {_fmt(r.mde)} | {_needed(r)} | {r.verdict} |")
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
    config = resolve_judge(config, generations)  # `auto`: the judge `evaluate` used (as the stage passes it)
    sig = config.significance
    criteria = check_criteria(evaluation)
    table = evaluation.verdicts
    if not len(table):
        verdicts = "No comparisons: none of the recipe's pairs of models was evaluated."
    else:
        one_seed = (table.level == "checkpoint").any()
        verdicts = (
            ("**Checkpoint-level: training variance not measured** (one seed), so there is no verdict; the "
             "intervals below cover the choice of test conversations only. Run with several `seeds`.\n\n"
             if one_seed else "")
            + "Each comparison is a paired difference (model minus other) on values per seed and conversation "
            "(every conversation weighs the same): seeds and conversations are both random effects (crossed), so the "
            "CI covers retraining and new test conversations (df: seeds - 1, valid but conservative: with 3 seeds "
            "most rows come out inconclusive). "
            f"CIs are {1 - sig.alpha:.0%}, unadjusted, clipped to the possible range of a difference.\n\n"
            + primary_verdict(table, config) + "\n\n"
            + f"**Secondary comparisons: exploratory.** Benjamini-Hochberg q-values over them (`BH q`, false discovery "
            f"rate {sig.q}); a metric some model was trained on is marked and left out of every family: it is not "
            "evidence. d_z = mean / SD of the per-conversation differences (averaged over seeds); `seeds`: how many "
            "seeds' own differences are up (down): the better (worse) way, a decrease for a lower-is-better metric "
            "such as self_bleu; and P(impr.), the probability that a seed of the model beats a seed "
            "of the other (all seed pairs, ties 1/2; rliable's). `detectable` is the smallest true difference this "
            f"design finds with about {sig.power:.0%} power at the level the row is tested at (alpha = {sig.alpha} for "
            "the primary; q / m for an exploratory row in a BH family of m, BH's first and strictest step; "
            "approximate, optimistic with few seeds): \"no difference\" is said only where it is below the metric's "
            "range, else \"inconclusive\"; a significant row where it is not reads \"better (low power: ...)\"; an "
            "exploratory row whose own CI excludes 0 but that BH does not pass reads \"not significant after BH\". "
            "`seeds needed` is how many seeds, at these conversations, would detect the difference seen, were it the "
            "true one, with that power: a rough planning figure from this run's variance components (noisy with 2-3 "
            "seeds, far too low where the seed variance estimates as 0).\n\n"
            + verdict_table(table, 1 - sig.alpha)
        )
    judge_note = (
        " `llm_win_rate`: how often the LLM judge prefers the greedy reply to the first human reply (tie = 0.5)."
        if any(k.endswith(".llm_win_rate") for k in evaluation.metrics) else ""
    )
    judge = config.pass_at_k.judge
    rule = criterion(judge, config)
    passes = {"per_tweet": "at least as high as that tweet's best human reply's",
              "median": "at least the median score of the evaluated human replies",
              "quantile": f"at least the {config.pass_at_k.quantile:.0%} quantile of its scores of "
                          f"{config.pass_at_k.reference_pairs} human replies of the training data"}
    passes_when = passes.get(rule, f">= {rule}") if isinstance(rule, str) else f">= {rule}"
    other_judges = "".join(f" `pass@k_{j}` uses the `{j}` judge, {passes[criterion(j, config)]}."
                           for j in evaluation.thresholds if j != judge)
    human = evaluation.metrics.get(f"human_pass_rate.{rule if isinstance(rule, str) else 'fixed'}")
    if human is not None:
        other_judges += f" Sanity: {human:.0%} of the human replies themselves pass this way."
    if "gold_score" in evaluation.per_prompt.columns:
        judge_note += (" `gold_score` is the sample's ground-truth engagement function (never trained on); "
                       "`predicted_engagement` is the learned proxy reward and `heuristic_reward` the heuristic one: "
                       "a model that gains on a proxy but not on the gold is gaming the proxy.")
    else:
        judge_note += (" The test tweets carry no gold context (the sample's chat ratings), so there is no gold score: "
                       "`predicted_engagement` is the learned proxy reward and `heuristic_reward` the heuristic one.")
    if "grpo_reward" in evaluation.per_prompt.columns:
        judge_note += (" `grpo_reward` is GRPO's whole training reward on the held-out samples: the task reward, "
                       "diversity bonus and overlong punishment, weighted as in training (`grpo.*_weight`).")
    return "\n\n".join([
        "# Evaluation",
        f"{evaluation.metrics['n_prompts']:.0f} test tweets, seeds {evaluation.seeds}; values are mean ± std over "
        f"seeds of per-tweet averages. A sample passes Pass@k when its `{judge}` judge score is {passes_when}."
        f"{other_judges} Diversity is measured within each tweet's samples (Self-BLEU as a 0-1 "
        f"fraction); ROUGE-L (stemmed) and BERTScore F1 compare the greedy reply with the human replies "
        f"(BERTScore model `{evaluation.bertscore_model}`, layer {evaluation.metrics['bertscore_layer']:.0f}, "
        f"no baseline rescaling).{judge_note}",
        "## Models\n\n" + metric_table(evaluation),
        "## What the samples look like\n\nOver every sample of every seed: median length in characters; the share "
        "that reached `max_new_tokens` (cut off, not finished); assistant boilerplate (`replyrl.text.is_boilerplate`); "
        "samples repeating >= 4 consecutive words of their tweet, and how many of those pass Pass@k (a judge that "
        "passes copies is broken). Every sample, with its scores, is in `evaluation_samples.csv`.\n\n"
        + samples_table(evaluation)
        + ("\n\nMean gold component per model (`replyrl/data/gold.py`): which parts of the gold each phase moved."
           "\n\n" + gold_components_table(evaluation) if gold_components_table(evaluation) else ""),
        f"## Success criteria (original recipe, measured on {PROPOSED})\n\n" + criteria_table(criteria),
        "## Verdicts\n\n" + verdicts,
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
    ax.set(xlabel="k", ylabel="Pass@k", title="Pass@k (bootstrap CI over test conversations, seed-averaged)",
           ylim=(0, 1.02))
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


