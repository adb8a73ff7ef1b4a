import random

import numpy as np
import pytest

from replyrl.configs.loader import from_dict
from replyrl.configs.reward import HeuristicRewardConfig, RewardConfig
from replyrl.data.sample import sample_rows
from replyrl.rewards.heuristic import (
    HeuristicReward,
    generic_multipliers,
    length_scores,
    punctuation_scores,
    unique_word_ratio,
)


def test_components_and_total_match_hand_computed_values(table_encoder):
    # Embeddings chosen so the cosines are exact: (1,0)·(0.6,0.8) = 0.6 and (1,0)·(-1,0) = -1 -> 0.
    encoder = table_encoder({
        "I love this": [1.0, 0.0],
        "terrible": [0.6, 0.8],
        "Nice, nice!!": [-1.0, 0.0],
    })
    reward = HeuristicReward(HeuristicRewardConfig(), encoder)
    parts = reward.components(["I love this", "I love this"], ["terrible", "Nice, nice!!"])

    # Pair 1: "terrible" (8 chars). TextBlob polarity 0.5 vs -1.0 -> 1 - 1.5/2 = 0.25. One word -> 1.0.
    # No punctuation -> 1.0. No generic phrase -> x1.
    # total = 0.30*0.6 + 0.15*0.6 + 0.15*0.25 + 0.10*1 + 0.10*1 = 0.5075
    # Pair 2: "Nice, nice!!" (12 chars). Cosine -1 clipped to 0. Polarity 0.5 vs 0.76875 ->
    # 1 - 0.26875/2 = 0.865625. Words nice, nice -> 1/2. Two "!" in 12 chars = 0.167 >= 0.1 -> 0.5.
    # "nice" in a reply under 30 chars -> x0.5.
    # total = 0.5 * (0 + 0.15*0.6 + 0.15*0.865625 + 0.10*0.5 + 0.10*0.5) = 0.1599219
    expected = {
        "relevance": [0.6, 0.0],
        "length": [0.6, 0.6],
        "sentiment": [0.25, 0.865625],
        "unique_words": [1.0, 0.5],
        "punctuation": [1.0, 0.5],
        "generic_multiplier": [1.0, 0.5],
        "echo_multiplier": [1.0, 1.0],  # neither reply resembles "I love this"
        "total": [0.5075, 0.15992188],
    }
    assert set(parts) == set(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(parts[name], values, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(reward(["I love this"], ["terrible"]), [0.5075], atol=1e-6)


def test_best_possible_reply_scores_the_documented_maximum(table_encoder):
    # Same direction (cosine 1), same polarity, 50 chars, all distinct words, no punctuation, no word
    # of the tweet (so no echo): 0.8.
    reply = "Sea urchins graze those underwater woods every day"
    assert len(reply) == 50
    encoder = table_encoder({"Kelp forests shelter otters": [1.0, 0.0], reply: [2.0, 0.0]})
    config = HeuristicRewardConfig()
    total = HeuristicReward(config, encoder)(["Kelp forests shelter otters"], [reply])
    assert config.max_score == pytest.approx(0.8)
    np.testing.assert_allclose(total, [0.8], atol=1e-6)


def test_length_is_full_only_inside_the_inclusive_range():
    replies = ["a" * n for n in (0, 49, 50, 150, 151)]
    np.testing.assert_array_equal(length_scores(replies, 50, 150, 0.6), [0.6, 0.6, 1.0, 1.0, 0.6])


def test_unique_words_are_case_insensitive_and_keep_contractions():
    # don't, stop, don't, stop, now -> 3 distinct of 5. A reply without words scores 0.
    np.testing.assert_allclose(unique_word_ratio(["Don't stop, don't STOP now", "!!", ""]), [0.6, 0.0, 0.0])


def test_punctuation_threshold_is_strict():
    # "Hello you." has 1 of 10 chars = 0.1, not below 0.1 -> 0.5; "Hello, you." 1/11 -> 1.0 (commas don't count).
    scores = punctuation_scores(["Hello you.", "Hello, you.", ""], "!?.", 0.1, 0.5)
    np.testing.assert_array_equal(scores, [0.5, 1.0, 1.0])


def test_generic_phrases_match_whole_words_in_short_replies_only():
    phrases = ["thanks", "agree", "this", "nice", "great"]
    replies = ["Agree!", "Love THIS!", "A thistle garden", "Thanks for sharing this recipe with us!!"]
    # The last one has generic words but is 40 chars, so it is not "generic".
    np.testing.assert_array_equal(generic_multipliers(replies, phrases, 30, 0.5), [0.5, 0.5, 1.0, 1.0])


def test_specific_on_topic_reply_beats_a_generic_one(minilm):
    tweet = "Just finished my first marathon in under four hours, legs are destroyed but so happy!"
    specific = "Congrats on breaking four hours in your first marathon! Ice bath tonight, and which race is next?"
    reward = HeuristicReward(HeuristicRewardConfig(), minilm)
    good, generic = reward([tweet, tweet], [specific, "Agree!"])
    # "Agree!" is halved as generic, misses the length band and is off topic.
    assert good > generic + 0.25, (good, generic)


def test_encoder_is_called_once_per_batch_with_each_text_once(random_encoder):
    tweets = ["tweet a"] * 4 + ["tweet b"] * 4  # a GRPO-like batch: 4 completions per tweet
    replies = [f"reply {i}" for i in range(8)]
    HeuristicReward(HeuristicRewardConfig(), random_encoder).components(tweets, replies)
    assert len(random_encoder.calls) == 1
    assert sorted(random_encoder.calls[0]) == sorted({*tweets, *replies})


def test_mismatched_lengths_are_rejected(random_encoder):
    with pytest.raises(ValueError, match="2 tweets but 1 replies"):
        HeuristicReward(HeuristicRewardConfig(), random_encoder)(["a", "b"], ["c"])


def test_config_rejects_bad_values_and_unknown_keys():
    with pytest.raises(ValueError, match="reward.heuristic.generic_multiplier: 2.0 is not allowed; must be in \\[0, 1\\]"):
        from_dict(RewardConfig, {"heuristic": {"generic_multiplier": 2.0}}, "params.yaml: reward")
    with pytest.raises(ValueError, match="unknown key\\(s\\) \\['relevance_wieght'\\]"):
        from_dict(RewardConfig, {"heuristic": {"relevance_wieght": 0.3}}, "params.yaml: reward")


@pytest.mark.parametrize(
    ("tweet", "reply", "expected"),
    [
        # The whole tweet, cased and punctuated differently: 9 copied words.
        ("Just finished my first marathon, legs are jelly", "just finished my first marathon legs are jelly!", 0.25),
        # A question appended to the copy: the copied run is still 8 words.
        ("Just finished my first marathon, legs are jelly", "Just finished my first marathon, legs are jelly "
                                                            "What do you think?", 0.25),
        # The first half of the tweet's words: a run of 4.
        ("Just finished my first marathon, legs are jelly", "Just finished my first", 0.25),
        # The first 60% of its words: a run of 5.
        ("Just finished my first marathon, legs are jelly", "Just finished my first marathon,", 0.25),
        # Shuffled: no run of 4, but every word is the tweet's (overlap 1.0).
        ("Just finished my first marathon, legs are jelly", "jelly are first my legs marathon finished just", 0.25),
        # One word changed in the middle: runs of 4 on both sides.
        ("Just finished my first marathon, legs are jelly", "Just finished my first race, legs are jelly", 0.25),
        # One word changed in a 3-word tweet: no run of 3, but 2 of 3 words (0.67 >= 0.65) are the tweet's.
        ("love this song", "love this banana", 0.25),
        # A 2-word tweet copied whole: a run of all its words.
        ("Good morning", "good morning!!", 0.25),
        # A short natural answer reusing 3 of its 5 words (0.6 < 0.65), no run of 4: not an echo.
        ("do you love dogs?", "yes i do love dogs", 1.0),
        # On topic in its own words, sharing only "marathon" and "legs": not an echo.
        ("Just finished my first marathon, legs are jelly",
         "Congrats on the marathon! Rest those legs and eat well tonight.", 1.0),
        # A reply without words shares nothing.
        ("Good morning", "!!", 1.0),
    ],
)
def test_echo_multipliers_per_case(tweet, reply, expected):
    from replyrl.rewards.heuristic import echo_multipliers

    assert echo_multipliers([tweet], [reply], min_copied_words=4, max_word_overlap=0.65, multiplier=0.25).tolist() == [
        expected
    ]


def echo_kinds(tweet: str, seed: int) -> dict[str, str]:
    """Ways to echo ``tweet`` that a reward must not prefer to a human reply."""
    words = tweet.split()
    rng = random.Random(seed)
    shuffled = rng.sample(words, len(words))
    changed = list(words)
    changed[rng.randrange(len(words))] = "banana"
    return {
        "copy": tweet,
        "copy + question": tweet + " What do you think?",
        "first half": " ".join(words[: max(1, len(words) // 2)]),
        "first 60%": " ".join(words[: max(1, round(0.6 * len(words)))]),
        "shuffled": " ".join(shuffled),
        "one word changed": " ".join(changed),
    }


def test_echoes_rarely_beat_the_human_reply_on_sample_tweets(minilm):
    # Measured on 300 sample tweets (rewards/heuristic.py): before the word-level guard a cut or
    # shuffled copy beat the human reply on 83-91% of tweets; now each kind does on <= 5%.
    rows = sample_rows(120, seed=1)
    kinds = [echo_kinds(row["tweet"], i) for i, row in enumerate(rows)]
    names = list(kinds[0])
    tweets = [row["tweet"] for row in rows for _ in range(1 + len(names))]
    replies = [text for row, kind in zip(rows, kinds) for text in (row["reply"], *kind.values())]
    totals = HeuristicReward(HeuristicRewardConfig(), minilm)(tweets, replies).reshape(len(rows), -1)  # one batch
    beat = {name: float(np.mean(totals[:, j + 1] > totals[:, 0])) for j, name in enumerate(names)}
    assert max(beat.values()) <= 0.10, beat


def test_echo_settings_are_checked():
    with pytest.raises(ValueError, match="reward.heuristic.echo_min_copied_words: 0 is not allowed; must be > 0"):
        HeuristicRewardConfig(echo_min_copied_words=0)
    with pytest.raises(ValueError, match="reward.heuristic.echo_max_word_overlap: 1.5 is not allowed"):
        HeuristicRewardConfig(echo_max_word_overlap=1.5)
