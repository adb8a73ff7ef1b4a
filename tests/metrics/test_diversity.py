"""Self-BLEU and Distinct-n on hand-made reply sets."""

from __future__ import annotations

import numpy as np
import pytest
from sacrebleu.metrics import BLEU

from replyrl.metrics.diversity import distinct_n, self_bleu, semantic_diversity


def test_identical_replies_have_self_bleu_100_and_low_distinct() -> None:
    replies = ["that is a great point about the game"] * 5
    assert self_bleu(replies) == pytest.approx(100.0)
    # 8 unique words out of 40 words; 7 unique bigrams out of 35
    assert distinct_n(replies, 1) == pytest.approx(8 / 40)
    assert distinct_n(replies, 2) == pytest.approx(7 / 35)


def test_disjoint_replies_have_self_bleu_0_and_distinct_1() -> None:
    replies = ["apples grow on trees", "my cat sleeps all day", "rain again tomorrow morning"]
    assert self_bleu(replies) == pytest.approx(0.0)
    assert distinct_n(replies, 1) == 1.0
    assert distinct_n(replies, 2) == 1.0


def test_self_bleu_is_each_reply_against_the_others() -> None:
    replies = ["the match was great fun", "the match was dull", "what a great fun match"]
    bleu = BLEU(effective_order=True)
    expected = np.mean([bleu.sentence_score(r, [o for o in replies if o is not r]).score for r in replies])
    assert self_bleu(replies) == pytest.approx(expected)
    assert 0 < self_bleu(replies) < 100


def test_distinct_ignores_case_and_splits_punctuation() -> None:
    # "Wow!" and "wow !" are the same two tokens once lower-cased and tokenised
    assert distinct_n(["Wow!", "wow !"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["", "a"], 2) == 0.0  # no bigrams at all


def test_self_bleu_needs_two_replies() -> None:
    with pytest.raises(ValueError, match="two replies"):
        self_bleu(["alone"])


def test_semantic_diversity_of_orthogonal_and_equal_embeddings() -> None:
    assert semantic_diversity(np.eye(3)) == pytest.approx(1.0)
    assert semantic_diversity(np.ones((4, 2)) / np.sqrt(2)) == pytest.approx(0.0)
