"""Overlap of a generated reply with the human reference replies: ROUGE-L and BERTScore. No file I/O."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from bert_score import BERTScorer
from rouge_score import rouge_scorer
from transformers import AutoConfig


def rouge_l(replies: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """ROUGE-L F1 (Porter stemming on) of each reply against its best-matching reference.

    >>> rouge_l(["the cats are running"], [["a cat running", "dogs"]]).round(3).tolist()
    [0.571]
    """
    _check_aligned(replies, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score_multi(list(refs), reply)["rougeL"].fmeasure for reply, refs in zip(replies, references)]
    return np.array(scores)


class BertScore:
    """BERTScore F1 with a local encoder folder (no hub access), e.g. `models/encoder/`.

    ``layer`` picks the hidden layer whose token embeddings are matched (default: the last). No
    baseline rescaling: bert-score only ships baselines for its hub models.
    """

    def __init__(self, model_dir: str | Path, layer: int | None = None, batch_size: int = 64) -> None:
        config = AutoConfig.from_pretrained(model_dir)
        self.model_dir = str(model_dir)
        self.layer = layer if layer is not None else config.num_hidden_layers
        if not 0 < self.layer <= config.num_hidden_layers:
            raise ValueError(
                f"BERTScore layer must be in 1..{config.num_hidden_layers} for {model_dir}, got {self.layer}"
            )
        self._scorer = BERTScorer(model_type=self.model_dir, num_layers=self.layer, batch_size=batch_size, device="cpu")
        # bert-score truncates to the tokenizer's model_max_length; a folder without one reports a
        # huge sentinel, which would overflow the position embeddings.
        tokenizer = self._scorer._tokenizer
        tokenizer.model_max_length = min(tokenizer.model_max_length, config.max_position_embeddings)

    def f1(self, replies: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
        """F1 of each reply against its best-matching reference."""
        _check_aligned(replies, references)
        if not replies:
            return np.zeros(0)
        _, _, f1 = self._scorer.score(list(replies), [list(refs) for refs in references])
        return f1.numpy().astype(np.float64)


def _check_aligned(replies: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(replies) != len(references):
        raise ValueError(f"got {len(replies)} replies but {len(references)} reference lists")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every reply needs at least one reference")
