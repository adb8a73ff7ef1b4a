"""The gold engagement function: deterministic, in [0, 1], and each component moves it the documented way."""

from pathlib import Path

import numpy as np
import pytest
from test_dvc_deps import import_closure

from replyrl.data.gold import (
    SUBSTANCE_RELEVANCE,
    TEXT_COMPONENTS,
    WEIGHTS,
    associations,
    context_of,
    gold,
    gold_components,
    gold_monitor,
    gold_scores,
    has_context,
    relevance,
)
from replyrl.data.sample import sample_rows
from replyrl.text import words as text_words

CONTEXT = {"chat_ratings": {"interesting": 6, "witty": 6, "upbeat": 6}}
TWEET = "Just finished my first marathon, legs are jelly."
REPLY = "Congrats, that's a huge milestone! How long did the training take you?"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _moves(component, better, worse, tweet=TWEET, context=CONTEXT):
    """``better`` beats ``worse`` on ``component`` and on the total, by that component's weighted gap."""
    b, w = gold_components(tweet, better, context), gold_components(tweet, worse, context)
    assert b[component] > w[component], (component, b, w)
    return b, w


def test_gold_is_deterministic_and_in_unit_interval():
    replies = [REPLY, "", "   ", "ok", "!!!", TWEET, "x" * 500, "you? " * 100, "zyzzyva quixotic " * 3]
    first = gold_scores([TWEET] * len(replies), replies, [CONTEXT] * len(replies))
    assert np.array_equal(first, gold_scores([TWEET] * len(replies), replies, [CONTEXT] * len(replies)))
    assert ((first >= 0) & (first <= 1)).all()
    best = {"chat_ratings": {"interesting": 10, "witty": 10, "upbeat": 10}}
    worst = {"chat_ratings": {"interesting": 1, "witty": 1, "upbeat": 1}}
    assert 0 <= gold(TWEET, "", worst) < gold(TWEET, REPLY, best) <= 1


def test_total_is_naturalness_times_the_weighted_components_text_ones_scaled_by_substance():
    for reply in (REPLY, "What do you think?", "ok"):
        parts = gold_components(TWEET, reply, CONTEXT)
        assert sum(WEIGHTS.values()) == pytest.approx(1.0)
        weighted = sum(WEIGHTS[n] * parts[n] * (parts["substance"] if n in TEXT_COMPONENTS else 1.0) for n in WEIGHTS)
        assert parts["total"] == pytest.approx(parts["naturalness"] * weighted)
        assert parts["substance"] == pytest.approx(min(parts["relevance"] / SUBSTANCE_RELEVANCE, 1.0))
        assert all(0 <= parts[name] <= 1 for name in (*WEIGHTS, "naturalness", "substance"))


@pytest.mark.parametrize("reply, factor", [
    ("I'm here to help! As an AI language model, what would you like to chat about today?", "not_boilerplate"),
    ("Here is the rewritten tweet: my legs are jelly after the marathon", "not_boilerplate"),
    ("I hate you so much, you stupid monster?", "not_hostile"),
    ("\u00a1Qu\u00e9 interesante! \u00bfY t\u00fa qu\u00e9 piensas de eso?", "english"),
    ("Just finished my first marathon, so proud of that", "not_copy"),
    ("you? zucchini saxophone archery lasagna kayaking origami paprika trombone hamster", "fluent"),
    ("\U0001f602\U0001f602\U0001f602 lol", "written"),
])
def test_naturalness_factors_catch_what_no_person_would_post(reply, factor):
    parts = gold_components(TWEET, reply, CONTEXT)
    assert parts[factor] < 1.0 and parts["naturalness"] < 1.0, parts
    assert gold(TWEET, reply, CONTEXT) < gold(TWEET, REPLY, CONTEXT)
    assert gold_components(TWEET, REPLY, CONTEXT)["naturalness"] == 1.0


def test_words_are_read_as_a_person_reads_them():
    # Curly apostrophes and accents must not split words into rare fragments that buy specificity.
    straight = gold_components(TWEET, "That's a great cafe, you're right", CONTEXT)
    curly = gold_components(TWEET, "That\u2019s a great caf\u00e9, you\u2019re right", CONTEXT)
    assert curly["specificity"] == pytest.approx(straight["specificity"])
    assert curly["english"] == straight["english"] == 1.0


def test_relevance_counts_new_words_associated_with_the_tweet_not_copied_ones():
    tweet = "My dog keeps chewing my shoes"
    on_topic = relevance(tweet, "Puppies teeth a lot, get him a chew toy and a crate")
    off_topic = relevance(tweet, "The stock market and interest rates went up again")
    assert on_topic > off_topic
    assert relevance(tweet, tweet) == 0.0  # the tweet's own words earn nothing


def test_relevance_leaves_a_corpus_pair_out_of_its_own_counts():
    # The sample's human replies are corpus pairs: scored with their own co-occurrence counted, they
    # would look relevant because the gold memorised them. Left out, the pair scores as a new one would.
    table, lower = associations(), 0
    for row in sample_rows(50, seed=0):
        new = {w for w in text_words(row["reply"]) if w not in set(text_words(row["tweet"]))}
        assert table.pairs[" ".join(text_words(row["tweet"])), " ".join(text_words(row["reply"]))] >= 1
        left_out = table.best_pmi(row["tweet"], row["reply"], new)
        counted = table.best_pmi(row["tweet"], row["reply"] + " qqqq", new)  # another text: nothing left out
        assert all(a <= b + 1e-12 for a, b in zip(left_out, counted))
        lower += sum(left_out) < sum(counted) - 1e-9
    assert lower >= 10  # memorisation was real for many pairs


def test_intensity_rewards_a_vivid_reply_of_either_sign():
    flat = "The race was on a Sunday in the city."
    b, w = _moves("intensity", "Wow, that is absolutely amazing, I love it!", flat)
    assert gold_components(TWEET, "That is horrible, I hate it so much.", CONTEXT)["intensity"] > w["intensity"]


def test_specificity_rewards_rare_words_over_filler():
    b, w = _moves("specificity", "Hydration, electrolytes and foam rollers saved my calves.", "i am ok and it is so good")
    assert b["total"] > w["total"] or b["intensity"] < w["intensity"]  # only intensity may pull the other way


def test_cues_a_question_and_addressing_the_other_person():
    statement = "Marathons are hard on the knees at first."
    question = "Marathons are hard on the knees at first?"
    addressed = "Marathons are hard on your knees at first."
    assert gold_components(TWEET, statement, CONTEXT)["cues"] == 0
    assert gold_components(TWEET, question, CONTEXT)["cues"] == 0.5
    assert gold_components(TWEET, addressed, CONTEXT)["cues"] == 0.5
    assert gold_components(TWEET, "Are marathons hard on your knees at first?", CONTEXT)["cues"] == 1.0
    assert gold(TWEET, question, CONTEXT) > gold(TWEET, statement, CONTEXT)


def test_length_is_a_smooth_bump_at_the_peak():
    lengths = [gold_components(TWEET, "a" * n, CONTEXT)["length"] for n in (10, 40, 80, 160, 400)]
    assert lengths[2] == pytest.approx(1.0)
    assert lengths[0] < lengths[1] < lengths[2] > lengths[3] > lengths[4]
    # Smooth, unlike the heuristic's 50-150 step: 79 and 81 characters score almost the same as 80.
    assert gold_components(TWEET, "a" * 79, CONTEXT)["length"] == pytest.approx(1.0, abs=1e-3)


def test_novelty_penalises_echoing_the_tweet():
    echo = "Just finished my first marathon, legs are jelly. I love that"
    b, w = _moves("novelty", "Ice bath tonight, pizza tomorrow: recovery done right.", echo)
    assert w["novelty"] < 0.2
    assert gold(TWEET, TWEET, CONTEXT) < gold(TWEET, "Ice bath tonight, pizza tomorrow: recovery done right.", CONTEXT)


def test_ratings_of_the_chat_raise_the_gold():
    high = {"chat_ratings": {"interesting": 9, "witty": 8, "upbeat": 10}}
    low = {"chat_ratings": {"interesting": 2, "witty": 1, "upbeat": 3}}
    parts_high, parts_low = gold_components(TWEET, REPLY, high), gold_components(TWEET, REPLY, low)
    assert parts_high["ratings"] == pytest.approx((9 - 1) / 9)
    assert parts_high["total"] - parts_low["total"] == pytest.approx(WEIGHTS["ratings"] * (27 - 6) / 3 / 9)


def test_missing_context_is_a_clear_error():
    with pytest.raises(ValueError, match=r"test_data.jsonl:3: the gold engagement function needs field 'chat_ratings'"):
        context_of({"tweet": "t", "reply": "r"}, "test_data.jsonl:3")
    with pytest.raises(ValueError, match="each a number"):
        context_of({"chat_ratings": {"interesting": "high", "witty": 1, "upbeat": 1}})


def test_monitor_scores_rollouts_like_a_reward_function():
    scores = gold_monitor(completions=[REPLY, TWEET], tweet=[TWEET, TWEET],
                          chat_ratings=[CONTEXT["chat_ratings"]] * 2, group_id=["a", "a"])
    assert scores == [gold(TWEET, REPLY, CONTEXT), gold(TWEET, TWEET, CONTEXT)]


@pytest.mark.parametrize("script", [
    *sorted(str(p.relative_to(REPO_ROOT)) for d in ("training", "rewards", "models")
            for p in (REPO_ROOT / "replyrl" / d).glob("*.py")),
    "stages/sft.py", "stages/reward.py",
])
def test_training_and_rewards_never_import_the_gold(script):
    # Transitively: the gold may score rollouts (the grpo stage's monitor) but never reach a loss or reward.
    assert "replyrl/data/gold.py" not in import_closure(REPO_ROOT / script)


def test_gibberish_scores_below_a_typical_human_reply():
    # Words outside the corpus are filler: they buy neither specificity nor novelty.
    tweet = "How was your weekend?"
    gibberish = gold(tweet, "qwzx vbnmk plorf zzyq trebl, you? xkcdq wubba frozz glimp?", CONTEXT)
    human = gold(tweet, "Pretty good, went hiking with my dog up the hill. You?", CONTEXT)
    assert gibberish < human
    assert gold_components(tweet, "qwzx vbnmk plorf", CONTEXT)["specificity"] == 0.0
    assert gold_components(tweet, "qwzx vbnmk plorf", CONTEXT)["novelty"] == 0.0


@pytest.mark.parametrize("bad", [True, float("nan"), 0, 11, "7", None])
def test_ratings_must_be_numbers_from_1_to_10(bad):
    ratings = {"interesting": bad, "witty": 5, "upbeat": 5}
    assert not has_context({"chat_ratings": ratings})
    with pytest.raises(ValueError, match="each a number from 1 to 10"):
        context_of({"chat_ratings": ratings})
