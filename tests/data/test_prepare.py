import json
import subprocess
import sys
from pathlib import Path

import pytest

from replyrl.data.prepare import REJECT_REASONS, RowError, check_judge, file_lines, parse_row, prepare_rows
from replyrl.io import read_json, read_jsonl

REPO_ROOT = Path(__file__).resolve().parents[2]


def _row(**overrides):
    return {"tweet": "rainy day again", "reply": "perfect for reading", "tweet_likes": 10, "reply_likes": 3} | overrides


def _line(obj) -> bytes:
    return json.dumps(obj).encode("utf-8")


# (reason, raw line) -- one crafted line per rejection reason.
BAD_LINES = [
    ("invalid_utf8", b'{"tweet": "caf\xe9", "reply": "x", "tweet_likes": 1, "reply_likes": 1}'),  # Latin-1 byte
    ("invalid_utf8", b'{"tweet": "\\ud800", "reply": "x", "tweet_likes": 1, "reply_likes": 1}'),  # lone surrogate
    ("blank_line", b"   "),
    ("invalid_json", b'{"tweet": "unterminated'),
    ("invalid_json", b'{"tweet": "a", "reply": "b", "tweet_likes": NaN, "reply_likes": 1}'),  # NaN is not JSON
    ("not_an_object", b'["tweet", "reply"]'),
    ("missing_field", _line({"tweet": "a", "reply": "b", "tweet_likes": 1})),
    ("wrong_type", _line(_row(tweet=42))),
    ("wrong_type", _line(_row(reply_likes="3"))),
    ("wrong_type", _line(_row(tweet_likes=True))),  # bool is an int in Python, not a like count
    ("wrong_type", _line(_row(tweet_id=[1]))),
    ("non_integer_likes", _line(_row(reply_likes=2.5))),
    ("negative_likes", _line(_row(tweet_likes=-1))),
    ("empty_text", _line(_row(reply=""))),
    ("empty_text", _line(_row(tweet=" \n\t"))),
    ("too_long", _line(_row(reply="x" * 51))),
    ("duplicate", _line(_row(tweet_likes=99))),  # same (tweet, reply) as the first good row, other likes
]
GOOD_ROWS = [
    _row(),
    _row(reply="x" * 50, tweet_id="t1", extra={"lang": "en"}),  # exactly at the cap; unknown fields are kept
    _row(tweet="  padded  ", tweet_likes=0, reply_likes=4.0),  # integral float likes are accepted
]


@pytest.fixture
def crafted_file(tmp_path):
    path = tmp_path / "user.jsonl"
    lines = [_line(GOOD_ROWS[0])] + [raw for _, raw in BAD_LINES] + [_line(r) for r in GOOD_ROWS[1:]]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_every_reason_is_caught_with_its_line_and_good_rows_survive(crafted_file):
    result = prepare_rows(file_lines(str(crafted_file)), max_chars=50)
    # Line 1 is the first good row; bad lines follow from line 2 in BAD_LINES order.
    expected = [(reason, lineno) for lineno, (reason, _) in enumerate(BAD_LINES, 2)]
    assert [(r["reason"], r["line"]) for r in result.rejected] == expected
    assert all(r["file"] == str(crafted_file) and r["detail"] for r in result.rejected)
    assert {reason for reason, _ in BAD_LINES} == set(REJECT_REASONS)
    assert [r["tweet"] for r in result.kept] == [g["tweet"] for g in GOOD_ROWS]
    assert result.kept[1]["extra"] == {"lang": "en"} and result.kept[1]["tweet_id"] == "t1"
    assert result.kept[2]["reply_likes"] == 4 and isinstance(result.kept[2]["reply_likes"], int)
    assert [r["engagement"] for r in result.kept] == [0.3, 0.3, 1.0]
    # The raw text is kept, with undecodable bytes visible rather than lost.
    assert result.rejected[0]["raw"].startswith('{"tweet": "caf\\xe9"')
    metrics = result.metrics()
    assert metrics["rows_read"] == len(BAD_LINES) + len(GOOD_ROWS)
    assert metrics["rejected/wrong_type"] == 4 and metrics["rejected/duplicate"] == 1
    assert sum(metrics[f"rejected/{reason}"] for reason in REJECT_REASONS) == metrics["rows_rejected"] == len(BAD_LINES)


def test_duplicates_are_caught_across_files_in_sorted_order(tmp_path):
    (tmp_path / "b.jsonl").write_bytes(_line(_row(reply_likes=1)) + b"\n")
    (tmp_path / "a.jsonl").write_bytes(_line(_row()) + b"\n")
    result = prepare_rows(file_lines(str(tmp_path / "*.jsonl")), max_chars=500)
    # a.jsonl is read first, so its row is the one kept.
    assert [r["reply_likes"] for r in result.kept] == [3]
    assert [(Path(r["file"]).name, r["line"], r["reason"]) for r in result.rejected] == [("b.jsonl", 1, "duplicate")]


def test_source_matching_no_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="matches no file"):
        list(file_lines(str(tmp_path / "missing*.jsonl")))


def test_check_fails_above_the_reject_fraction_naming_the_worst_reasons(crafted_file):
    result = prepare_rows(file_lines(str(crafted_file)), max_chars=50)
    fraction = len(BAD_LINES) / result.rows_read
    result.check(fraction, "rejected.jsonl")  # exactly at the limit passes
    with pytest.raises(ValueError, match=r"worst reasons: wrong_type \(4\).*rejected\.jsonl"):
        result.check(fraction - 0.01, "rejected.jsonl")


def test_stage_fails_and_removes_stale_pairs_when_too_much_is_rejected(tmp_path, crafted_file):
    params = tmp_path / "params.yaml"
    params.write_text(f"prepare:\n  source: {crafted_file}\n  max_chars: 50\n  max_reject_fraction: 0.1\n")
    pairs = tmp_path / "out" / "pairs.jsonl"
    pairs.parent.mkdir()
    pairs.write_text("stale\n")
    outs = ["--pairs", str(pairs), "--rejected", str(tmp_path / "out/rejected.jsonl")]
    outs += ["--metrics", str(tmp_path / "out/m.json"), "--negatives", str(tmp_path / "out/negatives.jsonl")]
    cmd = [sys.executable, str(REPO_ROOT / "stages/prepare.py"), "--params", str(params), *outs]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert "worst reasons: wrong_type (4)" in proc.stderr
    assert not pairs.exists()
    # The evidence is still written, so the user can fix the input.
    assert len(read_jsonl(tmp_path / "out/rejected.jsonl")) == len(BAD_LINES)
    assert read_json(tmp_path / "out/m.json")["rows_kept"] == len(GOOD_ROWS)

    params.write_text(f"prepare:\n  source: {crafted_file}\n  max_chars: 50\n  max_reject_fraction: 0.9\n")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [r["tweet"] for r in read_jsonl(pairs)] == [g["tweet"] for g in GOOD_ROWS]


def test_conversation_id_is_an_id_field():
    assert parse_row(_line(_row(conversation_id="chat-7")), max_chars=50)["conversation_id"] == "chat-7"
    assert parse_row(_line(_row(conversation_id=7)), max_chars=50)["conversation_id"] == 7
    with pytest.raises(RowError, match="conversation_id must be a string or integer, got 1.5") as error:
        parse_row(_line(_row(conversation_id=1.5)), max_chars=50)  # a float id would group by its rounding
    assert error.value.reason == "wrong_type"


def test_gold_judge_needs_the_samples_ratings_and_auto_does_not():
    rated = _row(chat_ratings={"interesting": 7, "witty": 5, "upbeat": 9})  # as the sample's rows carry
    check_judge([rated], "gold")  # every row has the gold's context
    check_judge([_row()], "auto")  # auto falls back to the learned reward in `evaluate`
    check_judge([_row()], "learned")
    with pytest.raises(ValueError, match=r"evaluate.pass_at_k.judge: 'gold' is not allowed with this data: 1 of 2 "
                                         r"rows lack 'chat_ratings' .* to auto .* or learned"):
        check_judge([rated, _row()], "gold")


def test_stage_stops_on_the_gold_judge_with_own_data_before_any_training(tmp_path, crafted_file):
    # Own JSONL (no ratings) with an explicit `judge: gold`: one line in prepare, not a traceback in evaluate.
    params = tmp_path / "params.yaml"
    params.write_text(f"prepare:\n  source: {crafted_file}\n  max_chars: 50\n  max_reject_fraction: 0.9\n"
                      "evaluate:\n  pass_at_k:\n    judge: gold\n")
    pairs = tmp_path / "out" / "pairs.jsonl"
    outs = ["--pairs", str(pairs), "--rejected", str(tmp_path / "out/rejected.jsonl")]
    outs += ["--metrics", str(tmp_path / "out/m.json"), "--negatives", str(tmp_path / "out/negatives.jsonl")]
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "stages/prepare.py"), "--params", str(params), *outs],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "evaluate.pass_at_k.judge" in line]
    assert len(errors) == 1 and "3 of 3 rows lack 'chat_ratings'" in errors[0] and "to auto" in errors[0], proc.stderr
    assert not pairs.exists()
