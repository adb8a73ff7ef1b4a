"""Encoders for reward tests: the real MiniLM, and stand-ins whose embeddings a test chooses.

A stand-in implements the two methods the rewards use (`encode`, `get_embedding_dimension`) and
records every `encode` call, so tests can check batching and hand-compute cosines.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest

from replyrl.models.encoder import load_encoder


class StubEncoder:
    """Embeds ``text`` as ``vector(text)`` and records the texts of each `encode` call."""

    def __init__(self, dim: int, vector: Callable[[str], np.ndarray]) -> None:
        self.dim = dim
        self.vector = vector
        self.calls: list[list[str]] = []

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts: list[str], normalize_embeddings: bool = False, **_: object) -> np.ndarray:
        self.calls.append(list(texts))
        emb = np.stack([np.asarray(self.vector(t), dtype=np.float64) for t in texts]).astype(np.float32)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True) if normalize_embeddings else emb


@pytest.fixture(scope="session")
def minilm(encoder_dir):
    """The real all-MiniLM-L6-v2, loaded once for every reward test."""
    return load_encoder(encoder_dir, device="cpu")


@pytest.fixture
def table_encoder() -> Callable[[dict[str, list[float]]], StubEncoder]:
    """Factory: an encoder that embeds each text as the vector the test wrote for it."""
    return lambda table: StubEncoder(len(next(iter(table.values()))), table.__getitem__)


@pytest.fixture
def random_encoder() -> StubEncoder:
    """16-dim encoder: a fixed Gaussian vector per text, seeded by the text (unrelated texts are near-orthogonal)."""
    return StubEncoder(16, lambda text: np.random.default_rng(zlib.crc32(text.encode())).standard_normal(16))

