"""Figures in README.md and docs/*.md, generated from the committed metrics so they cannot go stale.

A generated block sits between two markers, e.g.::

    <!-- generated:yardstick -->
    ...rendered Markdown...
    <!-- /generated:yardstick -->

`render_blocks` renders every block from `metrics/evaluation.json` (the `evaluate` stage),
`metrics/yardstick.json` (the `yardstick` stage), `reports/evaluation.md` (the primary verdict's wording)
and `params.yaml` (which comparison is the primary); `sync` rewrites the blocks in place, or, with
``check``, only lists the files whose blocks differ (`python -m replyrl docs [--check]`;
`tests/test_docs.py` runs the check). A key missing from the metrics renders as "n/a". Blocks:

- ``yardstick``: beat rates of the degenerate replies per judge (gold v2, gold v1, heuristic, learned)
  against each kind's bar (`replyrl.data.degenerate.MAX_BEAT_SHARE`);
- ``primary``: the pre-registered primary comparison's line: difference, CI, p, verdict;
- ``study``: the same line from the committed study (`reports/study/`), the run sized for that question;
- ``metrics``: the default run's main metric table, mean ± SD over seeds;
- ``samples``: what each model's samples look like (length, token cap, boilerplate, copies);
- ``ablations``: each committed ablation's verdict rows (`reports/ablations/<name>.json`, written by
  `python -m replyrl compare --json`): the verdict metrics of every model the ablation changed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from replyrl.data.degenerate import KINDS, LEARNED_REWARD_KINDS, MAX_BEAT_SHARE

EVALUATION_METRICS = "metrics/evaluation.json"
YARDSTICK_METRICS = "metrics/yardstick.json"
EVALUATION_REPORT = "reports/evaluation.md"
# The study (docs/statistics.md: more seeds for the primary comparison): its evaluate stage's metrics and report.
STUDY_METRICS, STUDY_REPORT = "reports/study/evaluation.json", "reports/study/evaluation.md"
# Ablations (docs/ablations.md): `replyrl compare --json` rows of one `dvc exp run` against the committed run.
ABLATIONS = "reports/ablations"
PARAMS = "params.yaml"
DOC_FILES = ("README.md", "docs/*.md")
MARKERS = re.compile(r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)
# Keys the `evaluate` stage writes since the primary comparison and the per-sample table exist: without
# them the committed metrics predate the generated blocks (tests/test_docs.py skips its check then).
NEW_EVALUATION_KEYS = ("primary.diff", "human.median_chars")
YARDSTICK_JUDGES = {"gold": "gold v2", "gold v1": "gold v1", "heuristic": "heuristic", "learned": "learned"}
# The main metric table's columns: (metric key, header).
METRIC_COLUMNS = (
    ("pass@1", "Pass@1"), ("pass@5", "Pass@5"), ("pass@10", "Pass@10"), ("gold_score", "gold"),
    ("predicted_engagement", "learned reward"), ("heuristic_reward", "heuristic reward (GRPO's)"),
    ("semantic_diversity", "semantic diversity"), ("self_bleu", "Self-BLEU"), ("final_kl", "final KL"),
)
NA = "n/a"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        else None


def _fmt(value: Any, spec: str = ".3f") -> str:
    number = _number(value)
    return NA if number is None else format(number, spec)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def load_sources(root: str | Path = ".") -> dict[str, Any]:
    """The committed files the blocks are rendered from (an absent file reads as empty)."""
    root = Path(root)
    params = root / PARAMS

    def text(path: Path) -> str:
        return path.read_text(encoding="utf-8") if path.exists() else ""

    return {
        "evaluation": _read_json(root / EVALUATION_METRICS),
        "yardstick": _read_json(root / YARDSTICK_METRICS),
        "report": text(root / EVALUATION_REPORT),
        "study": _read_json(root / STUDY_METRICS),
        "study_report": text(root / STUDY_REPORT),
        "params": (yaml.safe_load(params.read_text(encoding="utf-8")) or {}) if params.exists() else {},
        "ablations": {path.stem: json.loads(path.read_text(encoding="utf-8"))
                      for path in sorted((root / ABLATIONS).glob("*.json"))},
    }


def models(evaluation: Mapping[str, Any]) -> list[str]:
    """The evaluated models, in pipeline order: the base, the SFT warm-starts, the GRPO runs."""
    names = {key.split(".")[0] for key in evaluation if key.endswith(".pass@1")}  # not `human.median_chars`
    return sorted(names, key=lambda name: (0 if name == "base" else 2 if name.startswith("grpo_") else 1, name))


def yardstick_block(sources: Mapping[str, Any]) -> str:
    """Share of held-out tweets where each degenerate kind beats the tweet's own human reply, per judge."""
    y = sources["yardstick"]
    judges = list(YARDSTICK_JUDGES)
    lines = [f"Share of {_fmt(y.get('n_tweets'), '.0f')} held-out tweets where the reply scores above the tweet's "
             "own human reply (**bold**: over the bar; * = a kind the learned reward was trained on as a negative, "
             "so its cell shows memory; `reply + what about you` gives the mean score change instead).", "",
             "| reply | bar | " + " | ".join(YARDSTICK_JUDGES[j] for j in judges) + " |",
             "|---" * (len(judges) + 2) + "|"]
    for kind in KINDS:
        key = kind.replace(" ", "_")
        bar = MAX_BEAT_SHARE.get(kind)
        if bar is None:
            cells = [_fmt(y.get(f"{j}.{key}.mean_diff"), "+.3f") for j in judges]
            lines.append(f"| {kind} (mean change) | — | " + " | ".join(cells) + " |")
            continue
        cells = []
        for j in judges:
            value = _number(y.get(f"{j}.{key}.beats"))
            mark = "*" if j == "learned" and kind in LEARNED_REWARD_KINDS else ""
            text = NA if value is None else f"**{value:.0%}**" if value > bar else f"{value:.0%}"
            cells.append(text + mark)
        lines.append(f"| {kind} | {bar:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _report_verdict(report: str) -> str | None:
    """The verdict words of the report's primary line (`report.primary_verdict`), if there is one."""
    match = re.search(r"^\*\*Primary\*\*.*: \*\*(?P<verdict>[^*]+)\*\*\.\s*$", report, re.M)
    return match.group("verdict") if match else None


def _primary_line(m: Mapping[str, Any], report: str, params: Mapping[str, Any]) -> str:
    significance = params.get("evaluate", {}).get("significance", {})
    primary = significance.get("primary", {})
    alpha = _number(significance.get("alpha"))
    confidence = NA if alpha is None else f"{1 - alpha:.0%}"
    name = f"`{primary.get('model', NA)}` vs `{primary.get('other', NA)}` on {primary.get('metric', NA)}"
    verdict = _report_verdict(report) or NA
    return (f"**Primary comparison** (pre-registered: {name}; {_fmt(m.get('n_seeds'), '.0f')} seeds x "
            f"{_fmt(m.get('n_prompts'), '.0f')} test tweets): difference {_fmt(m.get('primary.diff'), '+.3f')} "
            f"[{confidence} CI {_fmt(m.get('primary.ci_low'), '+.3f')}, {_fmt(m.get('primary.ci_high'), '+.3f')}], "
            f"p = {_fmt(m.get('primary.p'), '.3g')}: **{verdict}**.")


def primary_block(sources: Mapping[str, Any]) -> str:
    """One line: the pre-registered comparison in the default run, its difference with the CI, p and verdict."""
    return _primary_line(sources["evaluation"], sources["report"], sources["params"])


def study_block(sources: Mapping[str, Any]) -> str:
    """The primary line of the committed study (`reports/study/`), or a note that there is none."""
    if not sources["study"]:
        return f"No study is committed (`{STUDY_METRICS}` is absent)."
    return _primary_line(sources["study"], sources["study_report"], sources["params"])


def metrics_block(sources: Mapping[str, Any]) -> str:
    """The default run's main metrics per model: mean ± SD over seeds (the final KL: mean of the runs)."""
    m = sources["evaluation"]
    judge = m.get("pass_at_k_judge", NA)
    reward = sources["params"].get("grpo", {}).get("reward_type", NA)
    lines = [f"Mean ± SD over {_fmt(m.get('n_seeds'), '.0f')} seeds of {_fmt(m.get('n_prompts'), '.0f')} test tweets "
             f"({_fmt(m.get('n_groups'), '.0f')} conversations). Pass@k under the `{judge}` judge: a sample passes at "
             f"a score >= {_fmt(m.get('pass_threshold'))}, reached by {_fmt(m.get('human_pass_rate.quantile'), '.0%')} "
             f"of these tweets' human replies. GRPO trained on the `{reward}` reward (`grpo.reward_type`): not evidence.",
             "",
             "| model | " + " | ".join(header for _, header in METRIC_COLUMNS) + " |",
             "|---" * (len(METRIC_COLUMNS) + 1) + "|"]
    for model in models(m):
        cells = []
        for key, _ in METRIC_COLUMNS:
            value, std = m.get(f"{model}.{key}"), m.get(f"{model}.{key}_std")
            cells.append(_fmt(value) + (f" ± {_fmt(std)}" if _number(value) is not None and std is not None else ""))
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def samples_block(sources: Mapping[str, Any]) -> str:
    """What each model's samples look like, against the human replies (`evaluate.sample_metrics`)."""
    m = sources["evaluation"]
    lines = [f"| model | median characters (human {_fmt(m.get('human.median_chars'), '.0f')}) | "
             f"at the token cap (human {_fmt(m.get('human.at_token_cap'), '.1%')}) | "
             "assistant boilerplate | copy >= 4 words of the tweet | passing copies | gold |",
             "|---|---|---|---|---|---|---|"]
    for model in models(m):
        lines.append(f"| `{model}` | {_fmt(m.get(f'{model}.median_chars'), '.0f')} | "
                     f"{_fmt(m.get(f'{model}.at_token_cap'), '.1%')} | {_fmt(m.get(f'{model}.boilerplate'), '.1%')} | "
                     f"{_fmt(m.get(f'{model}.copies_tweet'), '.1%')} | {_fmt(m.get(f'{model}.passing_copies'), '.0f')} | "
                     f"{_fmt(m.get(f'{model}.gold_score'))} |")
    return "\n".join(lines)


def ablations_block(sources: Mapping[str, Any]) -> str:
    """Per committed ablation, its verdict rows: model, metric, difference with the CI, p (and the BH q of an
    exploratory row), seeds up and the verdict, as `replyrl compare` judged them."""
    if not sources["ablations"]:
        return f"No ablation is committed (`{ABLATIONS}/` holds no JSON)."
    lines = ["| ablation | model | metric | difference [95% CI] | p (q) | seeds up | verdict |",
             "|---|---|---|---|---|---|---|"]
    for name, rows in sources["ablations"].items():
        for row in rows:
            model = row["model"].split("@")[0]
            p = _fmt(row.get("p"), ".3f") + ("" if row.get("p_adj") is None else f" ({_fmt(row['p_adj'], '.2f')})")
            lines.append(f"| `{name}` | `{model}` | {row['metric']} | {_fmt(row.get('diff'), '+.3f')} "
                         f"[{_fmt(row.get('ci_low'), '+.3f')}, {_fmt(row.get('ci_high'), '+.3f')}] | {p} | "
                         f"{_fmt(row.get('seeds_up'), '.0f')} | {row['verdict']} |")
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "yardstick": yardstick_block, "primary": primary_block, "study": study_block, "metrics": metrics_block,
    "samples": samples_block, "ablations": ablations_block,
}


def render_blocks(root: str | Path = ".") -> dict[str, str]:
    """Every block's Markdown, from the files under ``root``."""
    sources = load_sources(root)
    return {name: render(sources) for name, render in BLOCKS.items()}


def replace_blocks(text: str, blocks: Mapping[str, str], where: str = "text") -> str:
    """``text`` with the body between each pair of markers replaced by its block; an unknown block name
    is an error naming ``where``.

    >>> replace_blocks("a\\n<!-- generated:x -->\\nold\\n<!-- /generated:x -->\\n", {"x": "new"})
    'a\\n<!-- generated:x -->\\nnew\\n<!-- /generated:x -->\\n'
    """
    def substitute(match: re.Match) -> str:
        name = match.group("name")
        if name not in blocks:
            raise ValueError(f"{where}: unknown generated block {name!r}; known: {sorted(blocks)}")
        return f"{match.group(1)}{blocks[name]}\n{match.group(4)}"

    return MARKERS.sub(substitute, text)


def doc_files(root: str | Path = ".") -> list[Path]:
    """README.md and docs/*.md under ``root``."""
    root = Path(root)
    return sorted(path for pattern in DOC_FILES for path in root.glob(pattern) if path.is_file())


def sync(root: str | Path = ".", check: bool = False) -> list[Path]:
    """The doc files whose generated blocks differ from what the committed files give; unless ``check``,
    they are rewritten."""
    blocks = render_blocks(root)
    stale = []
    for path in doc_files(root):
        text = path.read_text(encoding="utf-8")
        new = replace_blocks(text, blocks, str(path))
        if new != text:
            stale.append(path)
            if not check:
                path.write_text(new, encoding="utf-8")
    return stale
