"""Stage `yardstick`: does every judge rank degenerate replies below the human replies?

On held-out test pairs, scores copies, boilerplate, other languages, hostility, word salads, emoji,
empty replies and replies to other conversations (`replyrl.data.degenerate`) beside each tweet's own
human reply, under the gold (where the data has its context; v2, and the frozen v1 beside it), the
heuristic reward and the learned reward; writes the share of tweets where each kind wins, per judge, as metrics and a Markdown table.
"""

from __future__ import annotations

import logging

import numpy as np

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.encoder import EncoderConfig
from replyrl.configs.reward import RewardConfig
from replyrl.configs.yardstick import YardstickConfig
from replyrl.data import gold_v1
from replyrl.data.gold import context_of, gold_scores, has_context
from replyrl.evaluation.yardstick import beat_rates, yardstick_markdown, yardstick_metrics
from replyrl.io import atomic_path, read_jsonl, write_json
from replyrl.models.encoder import load_encoder
from replyrl.rewards import HeuristicReward, LearnedReward

logger = logging.getLogger("yardstick")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--test", required=True, help="Held-out pairs JSONL (the test split).")
    parser.add_argument("--encoder", required=True, help="Sentence-transformers folder.")
    parser.add_argument("--reward-model", required=True, help="Learned reward folder.")
    parser.add_argument("--metrics", required=True, help="Output metrics JSON.")
    parser.add_argument("--report", required=True, help="Output Markdown table.")
    args, params = start_stage(parser, {"yardstick": YardstickConfig, "reward": RewardConfig,
                                        "encoder": EncoderConfig})
    config, batch_size = params.yardstick, params.encoder.batch_size
    rows = read_jsonl(args.test)
    chosen = np.sort(np.random.default_rng(config.seed).choice(len(rows), size=min(config.tweets, len(rows)),
                                                               replace=False))
    rows = [rows[i] for i in chosen]
    encoder = load_encoder(args.encoder)
    heuristic = HeuristicReward(params.reward.heuristic, encoder, batch_size)
    learned = LearnedReward.load(args.reward_model, encoder, batch_size)
    judges = {"heuristic": lambda tweets, replies, _: heuristic(tweets, replies),
              "learned": lambda tweets, replies, _: learned(tweets, replies)}
    if all(has_context(row) for row in rows):
        judges = {
            "gold": lambda tweets, replies, pairs: gold_scores(tweets, replies, [context_of(r) for r in pairs]),
            "gold v1": lambda tweets, replies, pairs: gold_v1.gold_scores(tweets, replies, [context_of(r) for r in pairs]),
        } | judges
    table = beat_rates(judges, rows, config.seed)
    write_json(args.metrics, yardstick_metrics(table, len(rows)))
    with atomic_path(args.report) as tmp:
        tmp.write_text("# Yardstick\n\n" + yardstick_markdown(table, len(rows)) + "\n", encoding="utf-8")
    logger.info("yardstick:\n%s", yardstick_markdown(table, len(rows)))


if __name__ == "__main__":
    run_stage(main)
