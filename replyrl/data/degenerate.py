"""Degenerate replies: what no person would post, built from a tweet, to test (and train) judges.

A judge is fit to judge only if these lose to the tweet's own human reply (README: "The yardstick").
Each kind is a function ``make(tweet, reply, other, rng) -> str`` of the tweet, its human reply, a human
reply from another conversation and a seeded generator; `KINDS` lists them in report order. The
texts are fixed lists written here, in the style of the failure modes seen in trained models (chatbot
boilerplate, copies of the tweet) and of cheap tricks a reward may pay for (questions, rare words).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Maker = Callable[[str, str, str, np.random.Generator], str]

QUESTION_TEMPLATES = (
    "That's so interesting! What do you think about it?",
    "Wow, really? Tell me more about that, how about you?",
    "What about you? What are you up to today?",
    "That\u2019s awesome! What\u2019s your favourite part, and how\u2019re you feeling about it?",
    "Haha same here! What do you think?",
)
BOILERPLATE = (
    "I'm here to help! As an AI language model, what would you like to chat about today?",
    "Here is the rewritten tweet: {tweet}",
    "You're an AI assistant for text re-writing. I'd be delighted to re-phrase this message for you.",
    "Here's an engaging reply to this tweet: Great point! Let me know if you have any other questions.",
    "I appreciate your initiative! How can I assist you further with your tweet?",
)
OTHER_LANGUAGES = (
    "\u00a1Qu\u00e9 interesante! \u00bfY t\u00fa qu\u00e9 piensas de eso?",
    "C'est vraiment g\u00e9nial, qu'est-ce que tu en penses ?",
    "Das ist ja toll, wie war es denn f\u00fcr dich?",
    "Che bello! E tu cosa ne pensi di questa cosa?",
    "Nossa, que legal! Voc\u00ea gostou muito?",
)
HOSTILE = (
    "I hate you so much, you stupid monster?",
    "Shut up, nobody cares what you think, loser.",
    "You are such a pathetic idiot, seriously.",
    "Wow you're so dumb, what is wrong with you?",
)
EMOJI = ("\U0001f602\U0001f602\U0001f602", "\U0001f525\U0001f525 \U0001f44d", "\u2764\ufe0f\u2764\ufe0f\u2764\ufe0f\U0001f60d",
         "\U0001f923\U0001f923\U0001f923\U0001f923\U0001f923")
# Rare but real corpus words (each seen in 5-20 chat turns): a salad of them buys "specific" words.
RARE_WORDS = ("zucchini", "saxophone", "archery", "lasagna", "kayaking", "origami", "paprika", "trombone",
              "hamster", "pottery", "glacier", "tuxedo", "yodel", "walrus", "quilt", "mango", "cactus",
              "accordion", "meteor", "pelican")


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _prefix(tweet: str, share: float) -> str:
    tokens = tweet.split()
    return " ".join(tokens[: max(1, round(len(tokens) * share))])


def _shuffled(tweet: str, rng: np.random.Generator) -> str:
    tokens = tweet.split()
    return " ".join(tokens[i] for i in rng.permutation(len(tokens)))


def _one_word_changed(tweet: str, rng: np.random.Generator) -> str:
    tokens = tweet.split()
    tokens[int(rng.integers(len(tokens)))] = "really"
    return " ".join(tokens)


KINDS: dict[str, Maker] = {
    "copy": lambda tweet, reply, other, rng: tweet,
    "copy + question": lambda tweet, reply, other, rng: f"{tweet} What do you think?",
    "first half of the tweet": lambda tweet, reply, other, rng: _prefix(tweet, 0.5),
    "first 60% of its words": lambda tweet, reply, other, rng: _prefix(tweet, 0.6),
    "its words shuffled": lambda tweet, reply, other, rng: _shuffled(tweet, rng),
    "one word changed": lambda tweet, reply, other, rng: _one_word_changed(tweet, rng),
    "question template": lambda tweet, reply, other, rng: _pick(QUESTION_TEMPLATES, rng),
    "assistant boilerplate": lambda tweet, reply, other, rng: _pick(BOILERPLATE, rng).format(tweet=tweet),
    "other language": lambda tweet, reply, other, rng: _pick(OTHER_LANGUAGES, rng),
    "hostile": lambda tweet, reply, other, rng: _pick(HOSTILE, rng),
    "rare-word salad": lambda tweet, reply, other, rng: "you? " + " ".join(rng.choice(RARE_WORDS, 10, replace=False)),
    "emoji only": lambda tweet, reply, other, rng: _pick(EMOJI, rng),
    "empty": lambda tweet, reply, other, rng: "",
    "reply + what about you": lambda tweet, reply, other, rng: f"{reply} What about you?",
    "reply to another conversation": lambda tweet, reply, other, rng: other,
}
# The kinds the learned reward is trained on as negatives (`sample.sample_negatives`); the others stay
# unseen, so its yardstick row for them measures generalisation, not memory.
LEARNED_REWARD_KINDS = ("copy", "first half of the tweet", "its words shuffled", "assistant boilerplate",
                        "other language", "hostile", "rare-word salad", "emoji only", "empty")
# A judge may prefer these to the human reply on at most this share of tweets (the yardstick's bar).
# Appending a question to the human reply is a measured trick, not a degenerate reply: no bar.
MAX_BEAT_SHARE = {kind: 0.10 for kind in KINDS} | {"reply to another conversation": 0.30}
del MAX_BEAT_SHARE["reply + what about you"]


def degenerate_replies(tweets: list[str], replies: list[str], others: list[str], kind: str, seed: int) -> list[str]:
    """The ``kind`` reply to every tweet (``replies[i]`` is tweet i's human reply, ``others[i]`` a human
    reply from another conversation); deterministic for ``seed``."""
    if kind not in KINDS:
        raise ValueError(f"unknown degenerate kind {kind!r}; one of {list(KINDS)}")
    rng = np.random.default_rng(seed)
    return [KINDS[kind](tweet, reply, other, rng) for tweet, reply, other in zip(tweets, replies, others, strict=True)]


def other_conversation_replies(replies: list[str], groups: list[str], seed: int) -> list[str]:
    """For each row, a human reply drawn from a row of a different conversation (``groups``)."""
    rng = np.random.default_rng(seed)
    n = len(replies)
    if len(set(groups)) < 2:
        raise ValueError("replies to other conversations need rows from at least 2 conversations")
    out = []
    for i in range(n):
        j = int(rng.integers(n))
        while groups[j] == groups[i]:
            j = int(rng.integers(n))
        out.append(replies[j])
    return out

