"""Stage `generate`: sample one model's replies to the chosen test tweets (one seed).

    python stages/generate.py --name baseline_full --model-dir models/sft/baseline_full/seed_42 \
        --seed 42 --out data/generations/baseline_full/seed_42.jsonl
"""

from __future__ import annotations

import logging
import time

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.evaluate import EvaluateConfig
from replyrl.configs.prompt import PromptConfig
from replyrl.evaluation.generate import generate_for_model, load_for_generation, select_test_tweets
from replyrl.io import read_jsonl, write_jsonl
from replyrl.models.precision import describe_machine

logger = logging.getLogger("generate")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--name", required=True, help="Model name, as used in metric keys.")
    parser.add_argument("--model-dir", required=True, help="Base or adapter folder (any `load_policy` accepts).")
    parser.add_argument("--seed", type=int, required=True, help="Sampling seed (one of `seeds`).")
    parser.add_argument("--test", required=True, help="Test split.")
    parser.add_argument("--out", required=True, help="Generation file to write.")
    args, params = start_stage(parser, {"evaluate": EvaluateConfig, "prompt": PromptConfig})
    config = params.evaluate

    tweets = select_test_tweets(read_jsonl(args.test), config.max_prompts, config.prompt_seed)
    model, tokenizer = load_for_generation(args.model_dir, config.bf16, config.vllm, args.seed)
    start = time.perf_counter()
    rows = generate_for_model(model, tokenizer, tweets, params.prompt, config, args.seed)
    logger.info("%d tweets x (%d samples + greedy) in %.0f s on %s", len(rows), config.n_samples,
                time.perf_counter() - start, describe_machine())
    write_jsonl(args.out, ({"model": args.name, "model_dir": args.model_dir, **row} for row in rows))


if __name__ == "__main__":
    run_stage(main)
