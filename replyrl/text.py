"""Reply text as a person reads it: words, copies of the tweet, assistant boilerplate.

Shared by the gold (`data/gold.py`), the heuristic reward's echo guard (`rewards/heuristic.py`) and
the evaluation report's degeneracy table, so "copies the tweet" and "is boilerplate" mean one thing
throughout the project.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

# Curly quotes and apostrophes as their ASCII forms, so "don’t" is one word "don't", as typed.
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u2032": "'", "\u201c": '"', "\u201d": '"'})
WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")

COPY_MIN_WORDS = 4  # a reply that repeats this many consecutive words of its tweet copies it

# Phrases of a chat assistant, not of a person replying: the trained models' own failure mode
# ("Here is the rewritten tweet:", "As an AI language model, ..."). Matched on `normalize`d text.
BOILERPLATE = re.compile(
    r"\b(?:as an ai|ai (?:language )?model|language model|ai assistant|i'm (?:just )?an ai|i am an ai"
    r"|here(?:'s| is) (?:a |an |the |my )?(?:possible |rewritten |revised |suggested |engaging )*"
    r"(?:reply|response|tweet|version|rewrite|answer)"
    r"|rewritten (?:tweet|text|version)|re-?phrase|re-?write (?:this|the|your)|i(?:'d| would) be (?:happy|glad|delighted) to"
    r"|i'm here to help|how can i (?:help|assist)|how may i (?:help|assist)|i appreciate your"
    r"|feel free to (?:ask|reach)|let me know if you (?:need|have|want)|i hope this helps"
    r"|twitter reply|engaging reply|reply to this tweet|generate an? (?:engaging )?reply)\b"
)


def normalize(text: str) -> str:
    """Lower case, curly apostrophes made straight and accents dropped ("Café’s" -> "cafe's")."""
    text = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def words(text: str) -> list[str]:
    """Word tokens as a person reads them: letters and digits, with inner apostrophes kept.

    >>> words("You’re SO right!! 2 cafés")
    ["you're", 'so', 'right', '2', 'cafes']
    """
    return WORD.findall(normalize(text))


def longest_copied_run(tweet: str, reply: str) -> int:
    """The most consecutive words of ``reply`` that also occur consecutively in ``tweet``."""
    a, b = words(tweet), words(reply)
    # autojunk off: difflib's heuristic would otherwise ignore words frequent in a long tweet.
    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size


def copies_tweet(tweet: str, reply: str, min_words: int = COPY_MIN_WORDS) -> bool:
    """Whether ``reply`` repeats at least ``min_words`` consecutive words of ``tweet`` (or all of a
    shorter tweet's words, when the tweet has fewer than ``min_words``)."""
    n = min(min_words, len(words(tweet)))
    return n > 0 and longest_copied_run(tweet, reply) >= n


def word_overlap(tweet: str, reply: str) -> float:
    """The share of ``reply``'s words (each occurrence counted) that also occur in ``tweet``; 0 for a
    reply without words. A reordered or truncated copy scores 1.0, whatever its word order.

    >>> word_overlap("do you love dogs?", "yes i do love dogs")
    0.6
    """
    seen, reply_words = set(words(tweet)), words(reply)
    return sum(word in seen for word in reply_words) / len(reply_words) if reply_words else 0.0


def is_boilerplate(reply: str) -> bool:
    """Whether ``reply`` talks like a chat assistant rather than a person (`BOILERPLATE`)."""
    return BOILERPLATE.search(normalize(reply)) is not None
