"""ROUGE-L with stemming and multiple references; BERTScore with the local MiniLM folder."""

from __future__ import annotations

import numpy as np
import pytest

from replyrl.metrics.overlap import BertScore, rouge_l


def test_rouge_l_stems_and_takes_the_best_reference() -> None:
    # "running"/"runs" stem alike, so the reply matches the first reference exactly
    scores = rouge_l(["the dog runs"], [["the dog running", "unrelated words"]])
    assert scores.tolist() == [pytest.approx(1.0)]
    # LCS "the dog" of 3 and 4 tokens: P = 2/3, R = 2/4, F = 4/7
    assert rouge_l(["the dog barks"], [["the dog is big"]])[0] == pytest.approx(4 / 7)
    assert rouge_l([""], [["anything"]])[0] == 0.0


def test_rouge_l_checks_alignment() -> None:
    with pytest.raises(ValueError, match="reference lists"):
        rouge_l(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="at least one reference"):
        rouge_l(["a"], [[]])


@pytest.fixture(scope="module")
def bertscore(encoder_dir) -> BertScore:
    return BertScore(encoder_dir, layer=None, batch_size=8)


def test_bertscore_ranks_paraphrase_above_unrelated(bertscore: BertScore) -> None:
    refs = [["I love this song so much"], ["I love this song so much"], ["I love this song so much"]]
    f1 = bertscore.f1(["I love this song so much", "this song is lovely", "the tax form is due friday"], refs)
    assert f1[0] == pytest.approx(1.0, abs=1e-4)
    assert f1[0] > f1[1] > f1[2]
    assert bertscore.layer == 6  # MiniLM-L6: the last layer by default


def test_bertscore_takes_best_of_several_references(bertscore: BertScore) -> None:
    single = bertscore.f1(["great goal last night"], [["the weather is cold"]])
    multi = bertscore.f1(["great goal last night"], [["the weather is cold", "great goal last night"]])
    assert multi[0] > single[0]
    assert np.isclose(multi[0], 1.0, atol=1e-4)


def test_bertscore_rejects_a_layer_the_model_lacks(encoder_dir) -> None:
    with pytest.raises(ValueError, match="layer must be in 1..6"):
        BertScore(encoder_dir, layer=12)
