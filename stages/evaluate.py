"""Stage `evaluate`: Pass@k, diversity, quality, significance and the report, from `data/generations/`.

    python stages/evaluate.py --generations data/generations --metrics metrics/evaluation.json
"""

from __future__ import annotations

import logging
import os

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.encoder import EncoderConfig
from replyrl.configs.evaluate import EvaluateConfig
from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.loader import load_seeds
from replyrl.configs.reward import RewardConfig
from replyrl.configs.sft import SFTStageConfig
from replyrl.evaluation.evaluate import (
    evaluate,
    load_generations,
    load_scorers,
    read_grpo_kl,
    resolve_judge,
    training_objectives,
)
from replyrl.evaluation.report import plot_diversity_quality, plot_passk, render_report
from replyrl.io import atomic_path, read_jsonl, write_json

logger = logging.getLogger("evaluate")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--generations", required=True, help="Folder of <model>/seed_<seed>.jsonl.")
    parser.add_argument("--encoder", required=True, help="Sentence encoder (diversity, BERTScore).")
    parser.add_argument("--reward-model", required=True, help="Learned engagement reward.")
    parser.add_argument("--grpo-metrics", required=True, help="GRPO stage metrics (final KL).")
    parser.add_argument("--metrics", required=True, help="Output metrics JSON.")
    parser.add_argument("--plots", required=True, help="Folder for passk.csv and the PNGs.")
    parser.add_argument("--report", required=True, help="Output Markdown report.")
    parser.add_argument("--per-prompt", required=True, help="Every per-tweet value.")
    parser.add_argument("--samples", required=True, help="Every sample: text checks, judge scores, gold components.")
    parser.add_argument("--tokenizer", required=True,
                        help="The policies' tokenizer folder (models/base): how many human replies the token cap cuts.")
    parser.add_argument("--reference", required=True,
                        help="Training pairs JSONL: their human replies set the `quantile` pass criterion.")
    args, params = start_stage(parser, {"evaluate": EvaluateConfig, "reward": RewardConfig, "encoder": EncoderConfig,
                                        "grpo": GRPOStageConfig, "sft": SFTStageConfig})
    config, seeds, grpo = params.evaluate, load_seeds(args.params), params.grpo
    models = [*config.models, *(run.model for run in grpo.runs)]
    generations = load_generations(args.generations, models, seeds, max(config.pass_at_k.k))
    config = resolve_judge(config, generations)  # judge `auto`: gold on the sample, else learned
    # What the models were trained on is marked in every table: such a metric is not evidence.
    trained_on = training_objectives(grpo.reward_type, grpo.diversity_weight, {run.objective for run in grpo.runs},
                                     params.sft.polychromic.quality, config)
    scorers = load_scorers(args.encoder, args.reward_model, params.reward, config, params.encoder.batch_size,
                           args.tokenizer)
    grpo_kl = read_grpo_kl(args.grpo_metrics, [run.name for run in grpo.runs], seeds)
    result = evaluate(generations, scorers, config, grpo_kl, trained_on, grpo.runs, read_jsonl(args.reference), grpo)

    write_json(args.metrics, result.metrics)
    with atomic_path(f"{args.plots}/passk.csv") as tmp:
        result.passk.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(args.per_prompt) as tmp:
        result.per_prompt.to_csv(tmp, index=False)
    with atomic_path(args.samples) as tmp:
        result.samples.to_csv(tmp, index=False, float_format="%.6g")
    plot_passk(result.passk, f"{args.plots}/passk.png")
    plot_diversity_quality(result, f"{args.plots}/diversity_vs_quality.png")
    with atomic_path(args.report) as tmp:
        plots_dir = os.path.relpath(args.plots, os.path.dirname(args.report) or ".")
        tmp.write_text(render_report(result, generations, config, plots_dir) + "\n", encoding="utf-8")
    for model in result.models:
        logger.info("%s: %s", model, {k.split(".", 1)[1]: round(v, 4) for k, v in result.metrics.items()
                                      if k.startswith(f"{model}.") and not k.endswith("_std") and v is not None})


if __name__ == "__main__":
    run_stage(main)
