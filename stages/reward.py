"""Stage `reward`: train the learned engagement reward, then test both rewards against engagement.

`train` (the DVC stage) fits the MLP head on the training splits with early stopping on a slice of
them, saves it, and writes Pearson/Spearman/MSE of the heuristic and learned rewards on the test
split, a training curve and a scatter/calibration plot. `score` prints both rewards and every
heuristic component for one pair:

    python stages/reward.py score --tweet "Rainy Sunday again" --reply "Perfect excuse for soup and a book."
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.encoder import EncoderConfig
from replyrl.configs.reward import RewardConfig
from replyrl.data.groups import group_key
from replyrl.io import atomic_path, read_jsonl, write_json
from replyrl.models.encoder import load_encoder
from replyrl.rewards import HeuristicReward, LearnedReward
from replyrl.rewards.explain import component_lines
from replyrl.rewards.learned import train_reward_model
from replyrl.rewards.report import evaluate_rewards, plot_rewards, read_pairs

logger = logging.getLogger("reward")


def train(args: argparse.Namespace, config: RewardConfig, batch_size: int) -> None:
    encoder = load_encoder(args.encoder)
    train_rows, test_rows = read_pairs(args.train), read_pairs(args.test)
    if config.learned.negatives:
        negatives = training_negatives(read_jsonl(args.negatives), train_rows)
        logger.info("training on %d degenerate replies of training conversations beside %d human ones",
                    len(negatives), len(train_rows))
        train_rows = train_rows + negatives

    start = time.perf_counter()
    learned, report = train_reward_model(train_rows, encoder, config.learned, batch_size)
    train_seconds = time.perf_counter() - start
    with atomic_path(args.out) as tmp:
        learned.save(tmp)

    rewards = {"heuristic": HeuristicReward(config.heuristic, encoder, batch_size), "learned": learned}
    metrics, scores = evaluate_rewards(rewards, test_rows, float(np.mean([r["engagement"] for r in train_rows])))
    pearson = metrics["learned/pearson"]
    metrics.update({
        "learned/target_pearson": config.target_pearson,
        "learned/meets_target": pearson is not None and pearson > config.target_pearson,
        "learned/beats_constant": metrics["learned/mse"] < metrics["constant/mse"],
        "learned/best_epoch": report["best_epoch"],
        "learned/val_mse": report["val_mse"],
        "learned/val_pearson": report["val_pearson"],
        "learned/train_seconds": round(train_seconds, 1),
    })
    write_json(args.metrics, metrics)
    write_json(Path(args.plots, "training.json"), report["history"])
    plot_rewards(scores, np.array([r["engagement"] for r in test_rows]), Path(args.plots, "test_scores.png"))
    logger.info("test metrics: %s", metrics)
    if not metrics["learned/meets_target"]:
        logger.warning("learned reward: test pearson %s is not above the target %s", pearson, config.target_pearson)


def training_negatives(negatives: list[dict], train_rows: list[dict]) -> list[dict]:
    """The degenerate replies (prepare's negatives) whose conversation is in the training rows: one of a
    test conversation would leak it into the reward."""
    groups = {group_key(row) for row in train_rows}
    return [row for row in negatives if group_key(row) in groups]


def score(args: argparse.Namespace, config: RewardConfig, batch_size: int) -> None:
    encoder = load_encoder(args.encoder)
    parts = HeuristicReward(config.heuristic, encoder, batch_size).components([args.tweet], [args.reply])
    print(f"heuristic  {parts['total'][0]:.4f}  (best possible {config.heuristic.max_score:.2f})")
    print("\n".join(component_lines({name: value[0] for name, value in parts.items()}, config.heuristic)))
    if Path(args.reward_model).exists():
        learned = LearnedReward.load(args.reward_model, encoder, batch_size)
        print(f"learned    {learned([args.tweet], [args.reply])[0]:.4f}  (predicted engagement, 0-1)")
    else:
        print(f"learned    n/a ({args.reward_model} not found; run `dvc repro reward`)")


def main() -> None:
    parser = stage_parser(__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("train", help="Train the learned reward and evaluate both rewards on the test split.")
    fit.add_argument("--train", required=True, help="Training pairs JSONL (never the test split).")
    fit.add_argument("--test", required=True, help="Test pairs JSONL.")
    fit.add_argument("--negatives", required=True,
                     help="Degenerate replies with simulated likes (prepare's); those of training conversations are used.")
    fit.add_argument("--encoder", required=True, help="Sentence-transformers folder.")
    fit.add_argument("--out", required=True, help="Output folder of the learned reward model.")
    fit.add_argument("--metrics", required=True, help="Output metrics JSON.")
    fit.add_argument("--plots", required=True, help="Output folder for the training curve and test plot.")
    one = commands.add_parser("score", help="Print every reward and heuristic component for one pair.")
    one.add_argument("--tweet", required=True)
    one.add_argument("--reply", required=True)
    one.add_argument("--encoder", default="models/encoder", help="Sentence-transformers folder.")
    one.add_argument("--reward-model", default="models/reward_model", help="Learned reward folder.")
    args, params = start_stage(parser, {"reward": RewardConfig, "encoder": EncoderConfig})
    command = train if args.command == "train" else score
    command(args, params.reward, params.encoder.batch_size)


if __name__ == "__main__":
    run_stage(main)
