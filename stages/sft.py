"""Stage `sft`: LoRA SFT of the base policy, baseline or polychromic, on the full or phase-1 data.

One run of the dvc.yaml matrix (method x data x seed). Writes the adapter folder (loadable with
`replyrl.models.policy.load_policy`), a dvclive folder (loss curves, metrics.json) and a PNG of the
losses. Rerunning a killed run resumes from its last checkpoint when the params and inputs are unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.reward import RewardConfig
from replyrl.configs.sft import SFT_DATA, SFT_METHODS, SFTStageConfig
from replyrl.training.sft import SFTPaths, run_sft

logger = logging.getLogger("sft")



def data_file(value: str) -> tuple[str, str]:
    """``NAME=PATH`` of one `--data-file` option."""
    name, sep, path = value.partition("=")
    if not sep or name not in SFT_DATA or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH with NAME one of {SFT_DATA}, got {value!r}")
    return name, path


def main() -> None:
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--method", choices=SFT_METHODS, required=True)
    parser.add_argument("--data", choices=SFT_DATA, required=True, help="Which training file (see --data-file).")
    # DVC cannot index a mapping with a matrix value, so dvc.yaml passes every data name's file.
    parser.add_argument("--data-file", type=data_file, action="append", required=True, metavar="NAME=PATH",
                        help="Training file of a data name, e.g. full=data/processed/full_train.jsonl (repeatable).")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--base", required=True, help="Base checkpoint folder (the base stage's output).")
    parser.add_argument("--encoder", required=True, help="Sentence encoder folder (used by polychromic only).")
    parser.add_argument("--out", required=True, help="Adapter folder to write.")
    parser.add_argument("--live-dir", required=True, help="dvclive folder: loss curves and metrics.json.")
    parser.add_argument("--plot", required=True, help="PNG of the loss curves.")
    parser.add_argument("--checkpoints", required=True, help="Checkpoint folder; must not be a DVC out.")
    parser.add_argument("--max-steps", type=int, help="Override sft.train.max_steps.")
    parser.add_argument("--dry-run", action="store_true", help="Build everything, run 2 steps, keep nothing.")
    args, params = start_stage(parser, {"sft": SFTStageConfig, "prompt": PromptConfig, "reward": RewardConfig})
    files = dict(args.data_file)
    if args.data not in files:
        parser.error(f"--data {args.data} needs a --data-file {args.data}=PATH")
    config = params.sft
    if args.max_steps is not None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, max_steps=args.max_steps))
    paths = SFTPaths(
        base=Path(args.base),
        train_file=Path(files[args.data]),
        checkpoints=Path(args.checkpoints),
        live=Path(args.live_dir),
        out=Path(args.out),
        encoder=Path(args.encoder),
        plot=Path(args.plot),
    )
    metrics = run_sft(config, paths, method=args.method, data=args.data, seed=args.seed, prompt=params.prompt,
                      reward=params.reward, dry_run=args.dry_run)
    logger.info("metrics: %s", metrics)


if __name__ == "__main__":
    run_stage(main)
