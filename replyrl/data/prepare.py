"""Validate raw (tweet, reply) rows against the data contract and keep the good ones.

Every input line gets a verdict: kept (with its derived ``engagement``) or rejected with file, line,
reason code and a human-readable detail. The sample corpus goes through the same checks as user
files, serialised to JSONL lines first.
"""

from __future__ import annotations

import glob
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from replyrl.configs.loader import ConfigError
from replyrl.configs.prepare import PrepareConfig
from replyrl.data.gold import has_context
from replyrl.data.sample import sample_rows
from replyrl.data.schema import CONTEXT_FIELD, ID_FIELDS, LIKE_FIELDS, REQUIRED_FIELDS, TEXT_FIELDS, engagement

logger = logging.getLogger(__name__)

# Reason codes, in the order rows are checked; each row gets the first that applies.
REJECT_REASONS = (
    "invalid_utf8",  # bytes that are not UTF-8 (or JSON escapes of lone surrogates)
    "blank_line",
    "invalid_json",  # includes NaN/Infinity, which are not JSON
    "not_an_object",
    "missing_field",
    "wrong_type",  # text not a string, likes not a number, id not a string/integer
    "non_integer_likes",
    "negative_likes",
    "empty_text",  # empty or whitespace-only tweet/reply
    "too_long",  # tweet or reply over prepare.max_chars characters
    "duplicate",  # exact (tweet, reply) pair already kept earlier
)

Line = tuple[str, int, bytes]  # (file, 1-based line number, raw bytes without the newline)


class RowError(ValueError):
    """A row breaks the data contract; ``reason`` is one of ``REJECT_REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _likes(row: dict[str, Any], name: str) -> int:
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RowError("wrong_type", f"{name} must be an integer, got {value!r}")
    # Integral floats (12.0) are what pandas writes for an int column with gaps; they are accepted.
    if isinstance(value, float):
        if not value.is_integer():
            raise RowError("non_integer_likes", f"{name} must be an integer, got {value!r}")
        value = int(value)
    if value < 0:
        raise RowError("negative_likes", f"{name} must be >= 0, got {value!r}")
    return value


def parse_row(raw: bytes, max_chars: int) -> dict[str, Any]:
    """One JSONL line -> a checked row with ``engagement`` added; raises ``RowError`` otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RowError("invalid_utf8", f"not UTF-8: {e.reason} at byte {e.start}") from None
    if not text.strip():
        raise RowError("blank_line", "blank line")
    try:
        row = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise RowError("invalid_json", f"invalid JSON: {e}") from None
    if not isinstance(row, dict):
        raise RowError("not_an_object", f"expected a JSON object, got {type(row).__name__}")
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise RowError("invalid_utf8", "a string holds a lone surrogate escape (e.g. \\ud800)") from None

    missing = [name for name in REQUIRED_FIELDS if name not in row]
    if missing:
        raise RowError("missing_field", f"missing required field(s) {missing}")
    for name in TEXT_FIELDS:
        if not isinstance(row[name], str):
            raise RowError("wrong_type", f"{name} must be a string, got {row[name]!r}")
    likes = {name: _likes(row, name) for name in LIKE_FIELDS}
    for name in ID_FIELDS:
        value = row.get(name)
        if name in row and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise RowError("wrong_type", f"{name} must be a string or integer, got {value!r}")
    for name in TEXT_FIELDS:
        if not row[name].strip():
            raise RowError("empty_text", f"{name} is empty or whitespace")
        if len(row[name]) > max_chars:
            n = len(row[name])
            raise RowError("too_long", f"{name} has {n} characters, more than prepare.max_chars={max_chars}")
    # An input `engagement` field is replaced: it is always derived from the likes.
    return row | likes | {"engagement": engagement(likes["tweet_likes"], likes["reply_likes"])}


@dataclass
class PrepareResult:
    """Kept rows, rejection records and counts of one ``prepare`` run."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return len(self.kept) + len(self.rejected)

    def reason_counts(self) -> Counter[str]:
        return Counter(record["reason"] for record in self.rejected)

    def metrics(self) -> dict[str, int | float]:
        """Flat metrics for ``metrics/prepare.json``; every reason is listed, zeros included."""
        counts = self.reason_counts()
        return {
            "rows_read": self.rows_read,
            "rows_kept": len(self.kept),
            "rows_rejected": len(self.rejected),
            "reject_fraction": len(self.rejected) / max(self.rows_read, 1),
        } | {f"rejected/{reason}": counts[reason] for reason in REJECT_REASONS}

    def check(self, max_reject_fraction: float, rejected_path: str | Path) -> None:
        """Raise if nothing survived or more than ``max_reject_fraction`` of the rows was rejected."""
        fraction = self.metrics()["reject_fraction"]
        if self.kept and fraction <= max_reject_fraction:
            return
        worst = ", ".join(f"{reason} ({n})" for reason, n in self.reason_counts().most_common(3)) or "none"
        raise ValueError(
            f"{len(self.rejected)} of {self.rows_read} input rows ({fraction:.1%}) were rejected "
            f"(prepare.max_reject_fraction={max_reject_fraction}); worst reasons: {worst}. "
            f"Each rejected row is listed with file, line and reason in {rejected_path}."
        )


def prepare_rows(lines: Iterable[Line], max_chars: int) -> PrepareResult:
    """Check every line; keep valid rows whose exact (tweet, reply) pair was not kept before."""
    result = PrepareResult()
    seen: set[tuple[str, str]] = set()
    for file, lineno, raw in tqdm(lines, desc="prepare", unit=" rows", mininterval=2.0):
        try:
            row = parse_row(raw, max_chars)
            pair = (row["tweet"], row["reply"])
            if pair in seen:
                raise RowError("duplicate", "exact (tweet, reply) pair already seen earlier")
        except RowError as e:
            # Undecodable bytes stay visible as \xNN escapes.
            raw_text = raw.decode("utf-8", errors="backslashreplace")
            result.rejected.append(
                {"file": file, "line": lineno, "reason": e.reason, "detail": str(e), "raw": raw_text}
            )
            continue
        seen.add(pair)
        result.kept.append(row)
    return result


def check_judge(rows: list[dict[str, Any]], judge: str) -> None:
    """Raise, before any training, if ``judge`` (``evaluate.pass_at_k.judge``) is `gold` but some of
    ``rows`` lack the gold's context (the sample's chat ratings): `evaluate` would stop on them only
    after every model is trained and has generated. `auto` uses the gold only where it can."""
    missing = sum(not has_context(row) for row in rows) if judge == "gold" else 0
    if missing:
        raise ConfigError(
            f"evaluate.pass_at_k.judge: 'gold' is not allowed with this data: {missing} of {len(rows)} rows lack "
            f"{CONTEXT_FIELD!r} (the chat ratings only prepare.source=sample provides); set evaluate.pass_at_k.judge "
            "to auto (the learned reward where there is no gold) or learned"
        )


def file_lines(pattern: str) -> Iterator[Line]:
    """Lines of every JSONL file matching ``pattern`` (a path or glob), files in sorted order."""
    paths = sorted(glob.glob(pattern, recursive=True))
    if not paths:
        raise FileNotFoundError(f"prepare.source={pattern!r} matches no file")
    for path in paths:
        logger.info("reading %s", path)
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                yield path, lineno, raw.rstrip(b"\r\n")


def sample_lines(size: int, seed: int) -> Iterator[Line]:
    """The sample corpus as JSONL lines, so it passes the same checks as user files."""
    for i, row in enumerate(sample_rows(size, seed), 1):
        yield "sample", i, json.dumps(row, ensure_ascii=False).encode("utf-8")


def source_lines(config: PrepareConfig) -> Iterator[Line]:
    """Input lines for ``prepare.source``: the sample corpus or the user's files."""
    if config.source == "sample":
        return sample_lines(config.sample_size, config.sample_seed)
    return file_lines(config.source)
