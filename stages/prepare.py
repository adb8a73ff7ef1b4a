"""Stage `prepare`: validate the input (tweet, reply) rows and keep the good ones.

Reads `prepare.source` (`sample` = the built-in chitchat corpus with simulated likes, or a path/glob
of JSONL files); writes the kept rows, every rejected row with file/line/reason, and counts per reason.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.evaluate import EvaluateConfig
from replyrl.configs.prepare import PrepareConfig
from replyrl.data.prepare import check_judge, prepare_rows, source_lines
from replyrl.data.sample import sample_negatives
from replyrl.io import write_json, write_jsonl

logger = logging.getLogger("prepare")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--pairs", required=True, help="Output JSONL of valid rows (with `engagement`).")
    parser.add_argument("--rejected", required=True, help="Output JSONL of rejected rows (file, line, reason, raw).")
    parser.add_argument("--metrics", required=True, help="Output JSON of row counts per rejection reason.")
    parser.add_argument("--negatives", required=True,
                        help="Output JSONL of degenerate replies with simulated likes (the sample only; else empty).")
    # evaluate.pass_at_k.judge too: `gold` on data without the sample's ratings fails here, not after training.
    args, params = start_stage(parser, {"prepare": PrepareConfig, "evaluate": EvaluateConfig})
    config = params.prepare

    result = prepare_rows(source_lines(config), config.max_chars)
    write_jsonl(args.rejected, result.rejected)
    write_json(args.metrics, result.metrics())
    counts = dict(result.reason_counts())
    logger.info("kept %d of %d rows; rejected per reason: %s", len(result.kept), result.rows_read, counts)
    try:
        result.check(config.max_reject_fraction, args.rejected)
        check_judge(result.kept, params.evaluate.pass_at_k.judge)
    except ValueError as e:
        # A stale pairs file from an earlier run must not pass for this run's output.
        Path(args.pairs).unlink(missing_ok=True)
        logger.error("%s", e)
        sys.exit(1)
    # Degenerate replies need the gold for their likes: only the sample has one.
    write_jsonl(args.negatives, sample_negatives(result.kept, config.sample_seed) if config.source == "sample" else [])
    write_jsonl(args.pairs, result.kept)


if __name__ == "__main__":
    run_stage(main)
