"""The `replyrl` command (also `python -m replyrl`).

    replyrl params              every param of params.yaml, with its value, default and help
    replyrl params grpo         one section
    replyrl suggest --model models/grpo/from_polychromic/seed_42 --tweet "..." -n 8 --top 3
                                sample replies with a trained model, ranked by reward
    replyrl suggest --model ... --input tweets.jsonl --output suggestions.jsonl
                                the same for every {"tweet": ...} row of a file
    replyrl docs [--check]      rewrite (or check) the generated figures in README.md and docs/*.md
    replyrl compare HEAD my-ablation
                                seed-level verdicts of each model in a DVC experiment against HEAD
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import sys
import textwrap
import typing
from typing import Any

from replyrl.configs.loader import PARAMS_FILE, SECTIONS, Bf16, ConfigError, describe_type, load_section

logger = logging.getLogger("replyrl")

# params.yaml section -> the dataclass in replyrl/configs/<section>.py that reads it.
SECTION_CLASSES = {
    "prompt": "PromptConfig", "prepare": "PrepareConfig", "split": "SplitConfig", "base": "BaseConfig",
    "encoder": "EncoderConfig", "reward": "RewardConfig", "yardstick": "YardstickConfig", "sft": "SFTStageConfig", "grpo": "GRPOStageConfig",
    "evaluate": "EvaluateConfig",
}
# `suggest --reward` -> the rewards computed, in order; replies are ranked by the first. `both` ranks by the
# learned reward (predicted engagement, the evaluation's default Pass@k judge) and shows the heuristic.
SUGGEST_REWARDS = {
    "heuristic": ("heuristic",), "learned": ("learned",), "both": ("learned", "heuristic"), "llm": ("llm",)
}


def section_class(section: str) -> type:
    return getattr(importlib.import_module(f"replyrl.configs.{section}"), SECTION_CLASSES[section])


def describe(config: Any, prefix: str) -> list[str]:
    """One entry per leaf param: ``key = value  (default ...)`` and its help, indented."""
    lines = []
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        key, value = f"{prefix}.{f.name}", getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            lines += describe(value, key)
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        changed = "" if value == default else f"   (default {default!r})"
        lines.append(f"{key} = {value!r}{changed}")
        text = f"{f.metadata.get('help', '')} Allowed: {describe_type(hints[f.name])}."
        lines += textwrap.wrap(text, width=100, initial_indent="    ", subsequent_indent="    ")
    return lines


def params_command(args: argparse.Namespace) -> None:
    sections = args.sections or list(SECTION_CLASSES)
    for section in sections:
        config = load_section(section_class(section), section, args.params)
        print(f"# {section}  (replyrl/configs/{section}.py)")
        print("\n".join(describe(config, section)), end="\n\n")


def suggest_command(args: argparse.Namespace) -> None:
    # Imported here: torch and transformers take seconds to load, which `replyrl params` does not need.
    # `cli` comes first: importing it keeps the model hubs offline.
    from transformers.utils import logging as transformers_logging

    from replyrl import cli, suggest

    cli.setup_logging(logging.WARNING)  # the libraries' loading chatter stays out; replyrl's own messages do not
    logging.getLogger("replyrl").setLevel(logging.WARNING if args.quiet else logging.INFO)
    transformers_logging.disable_progress_bar()
    evaluate = load_section(section_class("evaluate"), "evaluate", args.params)
    reward = load_section(section_class("reward"), "reward", args.params)
    config = suggest.SuggestConfig(
        model_dir=args.model, n=args.n, top=args.top, seed=args.seed, rewards=SUGGEST_REWARDS[args.reward],
        explain=args.explain, **{name: getattr(evaluate, name) if getattr(args, name) is None else getattr(args, name)
                                 for name in ("temperature", "top_p", "max_new_tokens", "batch_size")},
    )
    # Inputs and folders are checked before the slow model load, so a mistake fails at once.
    if args.input:
        rows, bad = suggest.read_tweets(args.input)
        tweets = [row["tweet"] for row in rows]
    else:
        tweets = args.tweet
        suggest.check_tweets(tweets)
    suggest.check_model_dir(args.model)
    overrides = {key: value for key, value in (("provider", args.judge_provider), ("model", args.judge_model),
                                               ("base_url", args.judge_base_url)) if value is not None}
    scorer = suggest.ReplyScorer(
        config.rewards, reward, dataclasses.replace(evaluate.judge, **overrides), args.encoder, args.reward_model,
        load_section(section_class("encoder"), "encoder", args.params).batch_size, args.explain,
    )
    model, tokenizer = suggest.load_model(args.model, evaluate.bf16 if args.bf16 is None else args.bf16)
    prompt = load_section(section_class("prompt"), "prompt", args.params)
    results = suggest.suggest(model, tokenizer, tweets, config, prompt, scorer, progress=bool(args.input))
    if args.input:
        written = suggest.write_results(args.output, rows, results)
        (logger.warning if bad else logger.info)(
            "wrote %d rows to %s; skipped %d bad input row(s), listed above", written, args.output, bad)
    elif args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        explain = reward.heuristic if args.explain else None
        print("\n\n".join(suggest.format_table(result, explain) for result in results))


def docs_command(args: argparse.Namespace) -> None:
    from replyrl import docs_figures

    stale = docs_figures.sync(args.root, check=args.check)
    for path in stale:
        print(f"{path}: generated figures {'differ from' if args.check else 'rewritten from'} the committed metrics")
    if args.check and stale:
        print("replyrl: run `python -m replyrl docs` to regenerate them", file=sys.stderr)
        sys.exit(1)


def compare_command(args: argparse.Namespace) -> None:
    from replyrl import cli
    from replyrl.evaluation import compare
    from replyrl.io import atomic_path, write_json

    cli.setup_logging(logging.WARNING)  # the warnings (seeds or evaluate params differ) go to stderr
    runs = [compare.load_run(name, params_file=args.params) for name in (args.baseline, args.candidate)]
    models = args.models.split(",") if args.models else None
    result = compare.compare(*runs, compare.parse_primary(args.primary) if args.primary else None, models)
    text = compare.render_comparison(result)
    print(text)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    if args.json:
        write_json(args.json, compare.table_rows(result))


def add_compare_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compare", help="Seed-level verdicts of each model in one run (a DVC experiment) against another.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare each model both runs evaluated with itself, <model>@CANDIDATE minus <model>@BASELINE,\n"
                    "paired by seed and test conversation, with the verdict table's statistics: the primary row\n"
                    "(default: evaluate.significance.primary's model and metric) alone at alpha, the others\n"
                    "exploratory (Benjamini-Hochberg), a metric either run trained on marked (not evidence).\n"
                    "See docs/statistics.md, \"Comparing two runs (ablations)\".",
        epilog="examples:\n"
               "  dvc exp run -n my-ablation -S grpo.diversity_weight=0\n"
               "  python -m replyrl compare HEAD my-ablation\n"
               "  python -m replyrl compare HEAD reports/evaluation_per_prompt.csv --primary grpo_from_baseline:pass@5",
    )
    for name, role in (("baseline", "The run compared against"), ("candidate", "The ablation")):
        parser.add_argument(name, metavar=name.upper(),
                            help=f"{role}: a DVC experiment name (`dvc exp show`) or a git revision (HEAD: the "
                                 "committed workspace), whose reports/evaluation_per_prompt.csv and params.yaml are "
                                 "read, or a per-prompt CSV file (its params: --params).")
    parser.add_argument("--primary", metavar="MODEL:METRIC",
                        help="The primary row (default: BASELINE's evaluate.significance.primary model and metric).")
    parser.add_argument("--models", metavar="M1,M2", help="Compare only these models (default: every model both have).")
    parser.add_argument("--out", metavar="FILE.md", help="Also write the Markdown to this file.")
    parser.add_argument("--json", metavar="FILE", help="Write the verdict rows as a JSON list.")
    parser.add_argument("--params", default=PARAMS_FILE,
                        help="Params of a run given as a CSV file (default: params.yaml).")


def parse_bf16(value: str) -> Bf16:
    if value not in ("auto", "true", "false"):
        raise argparse.ArgumentTypeError(f"{value!r}: expected auto, true or false")
    return value if value == "auto" else value == "true"


def add_suggest_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "suggest", help="Sample replies to tweets with a trained model and print them ranked by reward.",
        description="Sample n replies per tweet with a model folder the pipeline wrote, score them and rank them. "
                    "Sampling defaults come from the params file's `evaluate` section.",
    )
    parser.add_argument("--model", required=True,
                        help="models/base, models/sft/<name>/seed_<s>, models/grpo/<run name>/seed_<s>, ...")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tweet", action="append", help="A tweet to reply to (repeat for several).")
    source.add_argument("--input", help='JSONL file of {"tweet": ...} rows (other fields are kept); needs --output.')
    parser.add_argument("--output", help="Output JSONL: each input row + model, sampling params, ranked replies.")
    parser.add_argument("-n", type=int, default=8, help="Replies sampled per tweet (default: 8).")
    parser.add_argument("--top", type=int, help="Keep the best TOP replies (default: all n).")
    parser.add_argument("--reward", choices=list(SUGGEST_REWARDS), default="both",
                        help="heuristic, learned, both (ranked by learned, heuristic shown) or llm (the LLM judge of "
                             "evaluate.judge, every pair of replies: n(n-1)/2 calls per tweet). Default: both.")
    parser.add_argument("--explain", action="store_true", help="Also show every component of the heuristic reward.")
    parser.add_argument("--json", action="store_true", help="Print the results as a JSON list (one per --tweet) instead of tables.")
    parser.add_argument("--encoder", default="models/encoder", help="Sentence encoder (default: models/encoder).")
    parser.add_argument("--reward-model", default="models/reward_model",
                        help="Learned reward folder (default: models/reward_model).")
    parser.add_argument("--temperature", type=float, help="Sampling temperature (default: evaluate.temperature).")
    parser.add_argument("--top-p", type=float, help="Nucleus sampling mass (default: evaluate.top_p).")
    parser.add_argument("--max-new-tokens", type=int, help="Longest reply, tokens (default: evaluate.max_new_tokens).")
    parser.add_argument("--batch-size", type=int, help="Tweets per generate call (default: evaluate.batch_size).")
    parser.add_argument("--bf16", type=parse_bf16, help="auto, true or false (default: evaluate.bf16).")
    parser.add_argument("--seed", type=int, default=42, help="Sampling seed (default: 42).")
    parser.add_argument("--judge-provider", choices=["anthropic", "openai"], help="Override evaluate.judge.provider.")
    parser.add_argument("--judge-model", help="Override evaluate.judge.model.")
    parser.add_argument("--judge-base-url", help="Override evaluate.judge.base_url (e.g. http://127.0.0.1:8000/v1).")
    parser.add_argument("--quiet", action="store_true", help="Log warnings only.")
    parser.add_argument("--params", default=PARAMS_FILE, help="Parameters file to read (default: params.yaml).")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="replyrl", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("params", help="Print every param of the params file with its value and help.")
    params.add_argument("sections", nargs="*", choices=[s for s in SECTIONS if s in SECTION_CLASSES],
                        metavar="SECTION", help=f"Sections to show (default: all): {', '.join(SECTION_CLASSES)}.")
    params.add_argument("--params", default=PARAMS_FILE, help="Parameters file to read (default: params.yaml).")
    add_suggest_parser(commands)
    add_compare_parser(commands)
    docs = commands.add_parser("docs", help="Rewrite the generated figures of README.md and docs/*.md from the metrics.",
                               description="Replace the text between <!-- generated:NAME --> markers in README.md and "
                                           "docs/*.md with what metrics/ and reports/ give (replyrl/docs_figures.py).")
    docs.add_argument("--check", action="store_true", help="Change nothing; exit 1 if any block differs.")
    docs.add_argument("--root", default=".", help="Repository root (default: the current folder).")
    args = parser.parse_args(argv)
    if args.command == "suggest" and args.input and not args.output:
        parser.error("suggest --input needs --output")
    try:
        {"suggest": suggest_command, "docs": docs_command, "params": params_command,
         "compare": compare_command}[args.command](args)
    except ConfigError as e:  # a bad params file, or (suggest, compare) a bad argument: one line, no traceback
        print(f"replyrl: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
