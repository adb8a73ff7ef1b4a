"""Stage `grpo`: refine one SFT warm-start with GRPO against the reward (one run of `grpo.runs` x seed).

    python stages/grpo.py --warm-start models/sft/baseline_phase1/seed_42 --objective group --seed 42 \
        --out models/grpo/from_baseline/seed_42 --checkpoints checkpoints/grpo/from_baseline/seed_42 \
        --live dvclive/grpo/from_baseline/seed_42 --metrics metrics/grpo/from_baseline_seed_42.json \
        --plot plots/grpo/from_baseline_seed_42.png

A killed run resumes from its last checkpoint when rerun with the same params and inputs. On the
built-in sample every rollout is also scored by the gold engagement function and logged as
`gold/mean` beside the training reward and the KL: a monitor, never part of the reward.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.encoder import EncoderConfig
from replyrl.configs.grpo import GRPO_OBJECTIVES, GRPOStageConfig
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.reward import RewardConfig
from replyrl.data.gold import gold_monitor, has_context
from replyrl.io import read_jsonl, write_json
from replyrl.models.precision import process_state
from replyrl.training.grpo import GRPOPaths, run_grpo

logger = logging.getLogger("grpo")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--warm-start", required=True, help="SFT adapter folder (with lineage.json) to start from.")
    parser.add_argument("--objective", choices=GRPO_OBJECTIVES, default="group",
                        help="The run's advantage: plain GRPO (`group`) or a set objective (grpo.objective_k).")
    parser.add_argument("--seed", type=int, required=True, help="Training seed (one of `seeds`).")
    parser.add_argument("--data", required=True, help="Phase-2 data.")
    parser.add_argument("--encoder", required=True, help="Sentence-encoder folder.")
    parser.add_argument("--reward-model", required=True, help="Learned reward folder.")
    parser.add_argument("--out", required=True, help="Output adapter folder.")
    parser.add_argument("--checkpoints", required=True, help="Checkpoint folder (not a DVC out; enables resume).")
    parser.add_argument("--live", required=True, help="dvclive folder (the stage's plots).")
    parser.add_argument("--metrics", required=True, help="Stage metrics JSON.")
    parser.add_argument("--plot", required=True, help="PNG of the training curves.")
    parser.add_argument("--max-steps", type=int, help="Override grpo.max_steps (e.g. for a quick look).")
    parser.add_argument("--dry-run", action="store_true", help="Run one step in a temporary folder; write nothing.")
    args, params = start_stage(parser, {"grpo": GRPOStageConfig, "prompt": PromptConfig, "reward": RewardConfig,
                                        "encoder": EncoderConfig})
    config = params.grpo if args.max_steps is None else dataclasses.replace(params.grpo, max_steps=args.max_steps)
    paths = GRPOPaths(
        warm_start=Path(args.warm_start), data=Path(args.data), checkpoints=Path(args.checkpoints), out=Path(args.out),
        encoder=Path(args.encoder), reward_model=Path(args.reward_model), live=Path(args.live), plot=Path(args.plot),
    )
    # The gold needs each tweet's chat ratings: only the built-in sample has them. Checked here, before
    # training, so the monitor cannot fail mid-run (under several processes, one failing rank would hang).
    sample = all(has_context(row) for row in read_jsonl(paths.data))
    metrics = run_grpo(config, paths, prompt=params.prompt, reward=params.reward, seed=args.seed,
                       objective=args.objective, encoder_batch_size=params.encoder.batch_size,
                       monitors={"gold": gold_monitor} if sample else None, dry_run=args.dry_run)
    logger.info("metrics: %s", metrics)
    if not args.dry_run and process_state().is_main_process:
        write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
