"""Stage `split`: grouped (by conversation, else tweet), engagement-stratified split into test, phase 1 and phase 2.

Phase 1 warm-starts SFT, phase 2 feeds GRPO, `full` = phase 1 + phase 2 trains the full-SFT
comparison models, and the test tweets are never trained on. Also writes split statistics and a plot.
"""

from __future__ import annotations

import logging

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.split import SplitConfig
from replyrl.data.split import SPLITS, plot_split_distributions, split_rows, split_statistics
from replyrl.io import atomic_path, read_jsonl, write_json, write_jsonl

logger = logging.getLogger("split")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--pairs", required=True, help="Prepared rows (output of `prepare`).")
    for name in SPLITS:
        parser.add_argument(f"--{name}", required=True, help=f"Output JSONL of the {name} split.")
    parser.add_argument("--statistics", required=True, help="Output JSON of split statistics.")
    parser.add_argument("--plot", required=True, help="Output PNG of engagement distributions per split.")
    args, params = start_stage(parser, {"split": SplitConfig})

    splits = split_rows(read_jsonl(args.pairs), params.split)
    statistics = split_statistics(splits)
    for name, rows in splits.items():
        write_jsonl(getattr(args, name), rows)
    write_json(args.statistics, statistics)
    with atomic_path(args.plot) as tmp:
        plot_split_distributions(splits, statistics, tmp)
    logger.info("rows per split: %s; tweet overlaps: %s; conversation (group) overlaps: %s", statistics["rows"],
                statistics["tweet_overlap"], statistics["group_overlap"])


if __name__ == "__main__":
    run_stage(main)
