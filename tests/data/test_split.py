import numpy as np
import pandas as pd
import pytest
from scipy import stats

from replyrl.configs.split import SplitConfig
from replyrl.data.groups import group_key
from replyrl.data.split import QUARTILES, assign_quartiles, plot_split_distributions, split_rows, split_statistics
from replyrl.io import write_json, write_jsonl


def _rows(n_tweets=1500, max_replies=4, seed=0):
    """Tweets with 1..max_replies replies; a third have no tweet_id (grouped by text); 10% zero engagement."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_tweets):
        for r in range(rng.integers(1, max_replies + 1)):
            eng = 0.0 if rng.random() < 0.1 else float(rng.beta(2, 5))
            row = {"tweet": f"tweet {t}", "reply": f"reply {r}", "engagement": eng}
            rows.append(row if t % 3 == 0 else {"tweet_id": f"id{t}"} | row)
    return rows


@pytest.fixture(scope="module")
def rows():
    return _rows()


@pytest.fixture(scope="module")
def splits(rows):
    return split_rows(rows, SplitConfig(seed=42, test_fraction=0.1, split_ratio=0.5))


def _keys(rows):
    return {group_key(row) for row in rows}


def test_no_tweet_is_in_two_splits(rows, splits):
    phase1, phase2, test = _keys(splits["phase1"]), _keys(splits["phase2"]), _keys(splits["test"])
    assert not (phase1 & phase2) and not (phase1 & test) and not (phase2 & test)
    assert phase1 | phase2 | test == _keys(rows)
    # full is exactly phase 1 + phase 2, and every row lands somewhere exactly once.
    assert sorted(map(repr, splits["full"])) == sorted(map(repr, splits["phase1"] + splits["phase2"]))
    assert len(splits["full"]) + len(splits["test"]) == len(rows)
    statistics = split_statistics(splits)
    assert statistics["tweet_overlap"] == {"phase1_phase2": 0, "phase1_test": 0, "phase2_test": 0}
    assert statistics["group_overlap"] == statistics["tweet_overlap"]  # no conversation ids: groups are tweets


def test_split_sizes_follow_the_fractions(rows, splits):
    n_groups = len(_keys(rows))
    assert len(_keys(splits["test"])) == pytest.approx(0.1 * n_groups, abs=2)
    assert len(_keys(splits["phase1"])) == pytest.approx(len(_keys(splits["phase2"])), abs=2)


# Max difference between a split's per-quartile share and the whole set's. Only rounding (at most one
# tweet per quartile) should remain; a split ignoring the strata misses by 0.01-0.07 on this data.
STRATIFICATION_TOLERANCE = 0.005


def _quartile_shares(engagement, edges):
    return np.bincount(assign_quartiles(engagement, edges), minlength=4) / len(engagement)


def test_quartile_shares_match_the_whole_set():
    # One reply per tweet, like the sample corpus: row shares are stratified directly.
    rows = _rows(n_tweets=3000, max_replies=1)
    splits = split_rows(rows, SplitConfig(seed=4))
    edges = np.quantile([row["engagement"] for row in rows], [0.25, 0.5, 0.75])
    overall = _quartile_shares([row["engagement"] for row in rows], edges)
    for name in ("phase1", "phase2", "test"):
        shares = _quartile_shares([row["engagement"] for row in splits[name]], edges)
        np.testing.assert_allclose(shares, overall, atol=STRATIFICATION_TOLERANCE, err_msg=name)


def test_tweets_with_many_replies_are_stratified_by_mean_engagement(rows, splits):
    # A tweet's replies may sit in different quartiles; the tweet's stratum is its mean engagement.
    edges = np.quantile([row["engagement"] for row in rows], [0.25, 0.5, 0.75])

    def tweet_means(some_rows):
        frame = pd.DataFrame({"group": [group_key(r) for r in some_rows], "e": [r["engagement"] for r in some_rows]})
        return frame.groupby("group")["e"].mean().to_numpy()

    overall = _quartile_shares(tweet_means(rows), edges)
    for name in ("phase1", "phase2", "test"):
        shares = _quartile_shares(tweet_means(splits[name]), edges)
        np.testing.assert_allclose(shares, overall, atol=STRATIFICATION_TOLERANCE, err_msg=name)


def test_chi_square_and_ks_equal_scipy_on_the_same_data(splits):
    statistics = split_statistics(splits)
    counts = statistics["quartile_counts"]
    observed = np.array([[counts[name][q] for q in QUARTILES] for name in ("phase1", "phase2")])
    observed = observed[:, observed.sum(axis=0) > 0]
    chi2 = stats.chi2_contingency(observed)
    reported = statistics["chi_square_phase1_vs_phase2"]
    assert reported["statistic"] == pytest.approx(chi2.statistic)
    assert reported["p_value"] == pytest.approx(chi2.pvalue)
    assert reported["dof"] == chi2.dof == observed.shape[1] - 1
    # And by hand: sum of (observed - expected)^2 / expected, no continuity correction for dof > 1.
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0) / observed.sum()
    assert reported["statistic"] == pytest.approx(((observed - expected) ** 2 / expected).sum())
    ks = stats.ks_2samp([r["engagement"] for r in splits["phase1"]], [r["engagement"] for r in splits["phase2"]])
    assert statistics["ks_phase1_vs_phase2"] == pytest.approx({"statistic": ks.statistic, "p_value": ks.pvalue})
    # The table's rows are the split sizes.
    assert observed.sum(axis=1).tolist() == [len(splits["phase1"]), len(splits["phase2"])]


def test_outputs_are_byte_identical_and_independent_of_input_order(tmp_path, rows):
    config = SplitConfig(seed=7)
    written = {}
    for run, run_rows in (("a", rows), ("b", rows), ("shuffled", list(reversed(rows)))):
        splits = split_rows(run_rows, config)
        written[run] = {name: {group_key(r) for r in split} for name, split in splits.items()}
        if run == "shuffled":
            continue
        statistics = split_statistics(splits)
        for name, split in splits.items():
            write_jsonl(tmp_path / run / f"{name}.jsonl", split)
        write_json(tmp_path / run / "statistics.json", statistics)
        plot_split_distributions(splits, statistics, tmp_path / run / "plot.png")
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
    # Reordering the input rows changes nothing: the same rows in the same (sorted) order.
    assert split_rows(list(reversed(rows)), config) == split_rows(rows, config)
    assert written["shuffled"] == written["a"]
    # A different seed gives a different split.
    assert {group_key(r) for r in split_rows(rows, SplitConfig(seed=8))["test"]} != written["a"]["test"]


def test_too_few_tweets_to_stratify_is_a_clear_error():
    rows = [{"tweet": f"t{i}", "reply": "r", "engagement": i / 4} for i in range(5)]
    with pytest.raises(ValueError, match=r"cannot split 5 tweets \(5 rows\) with split.test_fraction=0.1"):
        split_rows(rows, SplitConfig())


def test_a_conversation_with_several_pairs_is_never_in_two_splits():
    # Crafted like the sample: 400 chats of 1-6 (tweet, reply) pairs, every pair a different tweet id.
    rng = np.random.default_rng(5)
    rows = [
        {"conversation_id": f"chat{c}", "tweet_id": f"chat{c}/{2 * t}", "tweet": f"tweet {c}.{t}",
         "reply": f"reply {c}.{t}", "engagement": float(rng.beta(2, 5))}
        for c in range(400) for t in range(rng.integers(1, 7))
    ]
    splits = split_rows(rows, SplitConfig(seed=1))
    where = {}
    for name in ("phase1", "phase2", "test"):
        for row in splits[name]:
            where.setdefault(row["conversation_id"], set()).add(name)
    assert len(where) == 400 and all(len(names) == 1 for names in where.values())
    statistics = split_statistics(splits)
    assert statistics["group_overlap"] == {"phase1_phase2": 0, "phase1_test": 0, "phase2_test": 0}
    assert statistics["tweet_overlap"] == {"phase1_phase2": 0, "phase1_test": 0, "phase2_test": 0}
    assert statistics["groups"]["test"] == pytest.approx(40, abs=2)
    assert statistics["tweets"]["test"] == len(splits["test"]) > statistics["groups"]["test"]


def test_a_tweet_in_two_conversations_is_refused():
    rows = [
        {"conversation_id": "a", "tweet_id": "t1", "tweet": "x", "reply": "r1", "engagement": 0.1},
        {"conversation_id": "b", "tweet_id": "t1", "tweet": "x", "reply": "r2", "engagement": 0.2},
    ]
    with pytest.raises(ValueError, match=r"tweet 'id:t1' appears in 2 groups \['conversation:a', 'conversation:b'\]"):
        split_rows(rows, SplitConfig())
    # An id on some rows of a tweet only is the same mistake.
    with pytest.raises(ValueError, match="appears in 2 groups"):
        split_rows([rows[0], {k: v for k, v in rows[1].items() if k != "conversation_id"}], SplitConfig())
