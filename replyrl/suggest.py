"""`replyrl suggest`: sample replies to tweets with a trained model and rank them by reward.

The library side of the command (`replyrl/__main__.py` only parses arguments): check and load a
model folder the pipeline wrote (base, SFT or GRPO), sample n replies per tweet with the shared
sampler, score them with the chosen rewards, rank them, and read and write JSONL files.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase, set_seed

from replyrl.configs.evaluate import JudgeConfig
from replyrl.configs.loader import Bf16, ConfigError, check_sampling
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.reward import HeuristicRewardConfig, RewardConfig
from replyrl.evaluation import judge as llm_judge
from replyrl.evaluation.generate import load_for_generation
from replyrl.io import write_jsonl
from replyrl.models.policy import is_adapter_dir, read_lineage
from replyrl.prompts import build_prompts
from replyrl.rewards import HeuristicReward, Reward, load_reward
from replyrl.rewards.explain import component_lines
from replyrl.sampling import SamplingConfig, generate_replies

logger = logging.getLogger(__name__)


class SuggestError(ConfigError):
    """Something wrong with what the user asked for (a missing folder, an empty tweet): one line, no traceback."""


@dataclass
class SuggestConfig:
    """What `suggest` samples and how it ranks (the command takes the sampling values from `params.yaml:
    evaluate`, as the `generate` stage does, unless they are given)."""

    model_dir: str
    n: int
    temperature: float
    top_p: float
    max_new_tokens: int
    batch_size: int  # tweets per `generate` call
    seed: int
    rewards: tuple[str, ...]  # computed in this order; the first ranks
    top: int | None = None  # keep the best `top` replies per tweet; None = all n
    explain: bool = False

    def __post_init__(self) -> None:
        check_sampling("suggest", self.temperature, self.top_p)
        if self.n < 1:
            raise SuggestError(f"-n must be >= 1, got {self.n}")
        if self.top is not None and not 1 <= self.top <= self.n:
            raise SuggestError(f"--top must be between 1 and -n ({self.n}), got {self.top}")

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(num_samples=self.n, temperature=self.temperature, top_p=self.top_p,
                              max_new_tokens=self.max_new_tokens)


def check_model_dir(model_dir: str | Path) -> None:
    """Raise `SuggestError` naming ``--model`` unless ``model_dir`` is a folder `load_policy` can load:
    a base checkpoint, or an adapter whose lineage (base and merged adapters) is on disk."""
    path = Path(model_dir)
    if not path.is_dir():
        raise SuggestError(f"--model: {model_dir}: no such folder (the pipeline writes models/base, "
                           "models/sft/<name>/seed_<seed> and models/grpo/<run name>/seed_<seed>; run `dvc repro`)")
    if not is_adapter_dir(path):
        if not (path / "config.json").exists():
            raise SuggestError(f"--model: {model_dir} is not a model folder (no config.json or adapter_config.json)")
        return
    try:
        lineage = read_lineage(path)
    except FileNotFoundError as e:
        raise SuggestError(f"--model: {e}") from None
    # Lineage paths are relative to the repository root, as dvc.yaml names them.
    for needed in (lineage["base"], *lineage["merged"]):
        if not Path(needed).is_dir():
            raise SuggestError(f"--model: {model_dir} builds on {needed}, which is missing "
                               "(run replyrl from the repository root, after `dvc repro`)")


def load_model(model_dir: str | Path, bf16: Bf16) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """`check_model_dir`, then the model as the `generate` stage loads it (bf16 where native, on the accelerator)."""
    check_model_dir(model_dir)
    return load_for_generation(str(model_dir), bf16)


def check_tweet(tweet: object) -> str | None:
    """Why ``tweet`` cannot be replied to, or None when it can."""
    if not isinstance(tweet, str):
        return f"'tweet' must be a string, got {type(tweet).__name__}"
    if not tweet.strip():
        return "the tweet is empty"
    return None


def check_tweets(tweets: Sequence[object]) -> None:
    """Raise `SuggestError` naming ``--tweet`` unless every tweet is a non-empty string."""
    for tweet in tweets:
        problem = check_tweet(tweet)
        if problem is not None:
            raise SuggestError(f"--tweet: {problem}")


def read_tweets(path: str | Path) -> tuple[list[dict], int]:
    """The usable rows of a JSONL file of ``{"tweet": ..., ...}`` objects and how many were not usable,
    each logged as ``file:line: reason``; `SuggestError` when no row is usable. Blank lines are skipped;
    the other fields of a row are kept as they are."""
    path = Path(path)
    try:
        raw_lines = path.read_bytes().splitlines()
    except OSError as e:
        raise SuggestError(f"--input: {path}: {e.strerror}") from None
    rows, bad = [], 0
    for lineno, raw in enumerate(raw_lines, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            problem = "not valid UTF-8"
        except json.JSONDecodeError as e:
            problem = f"invalid JSON ({e.msg})"
        else:
            if not isinstance(row, dict):
                problem = f"expected a JSON object, got {type(row).__name__}"
            elif "tweet" not in row:
                problem = "no 'tweet' field"
            else:
                problem = check_tweet(row["tweet"])
        if problem is None:
            rows.append(row)
        else:
            logger.warning("skipping %s:%d: %s", path, lineno, problem)
            bad += 1
    if not rows:
        raise SuggestError(f"--input: {path}: no usable row ({bad} bad)")
    return rows, bad


class ReplyScorer:
    """Scores replies with the chosen rewards, loading only what they need (no encoder for `llm` alone)."""

    def __init__(
        self,
        rewards: Sequence[str],
        reward_config: RewardConfig,
        judge_config: JudgeConfig,
        encoder_dir: str | Path,
        reward_model_dir: str | Path,
        batch_size: int = 64,
        explain: bool = False,
    ) -> None:
        self.names = tuple(rewards)
        self.judge_config = judge_config
        self.rewards: dict[str, Reward] = {}
        self.heuristic: HeuristicReward | None = None
        if not explain and set(self.names) <= {"llm"}:
            return
        from replyrl.models.encoder import load_encoder

        if not Path(encoder_dir).is_dir():
            raise SuggestError(f"--encoder: {encoder_dir}: no such folder (run `dvc repro encoder`)")
        encoder = load_encoder(encoder_dir)
        for name in self.names:
            if name == "llm":
                continue
            try:
                self.rewards[name] = load_reward(name, reward_config, encoder, reward_model_dir, batch_size)
            except FileNotFoundError as e:
                raise SuggestError(f"--reward-model: {e}") from None
        if explain:
            self.heuristic = HeuristicReward(reward_config.heuristic, encoder, batch_size)

    def score(self, tweets: Sequence[str], replies: Sequence[Sequence[str]]) -> list[list[dict]]:
        """For each tweet, one ``{"reply", "scores"[, "components"]}`` per reply, in sampling order."""
        pair_tweets = [t for t, rs in zip(tweets, replies) for _ in rs]
        pair_replies = [r for rs in replies for r in rs]
        parts = self.heuristic.components(pair_tweets, pair_replies) if self.heuristic else None
        columns: dict[str, list[float | None]] = {}
        for name in self.names:
            if name == "llm":
                judged = llm_round_robin(tweets, replies, self.judge_config)
                columns[name] = [score for per_tweet in judged for score in per_tweet]
                if all(score is None for score in columns[name]):
                    logger.warning("the LLM judge scored no reply (see above); they keep their sampling order")
            elif name == "heuristic" and parts is not None:
                columns[name] = [float(s) for s in parts["total"]]  # already computed for --explain
            else:
                columns[name] = [float(s) for s in self.rewards[name](pair_tweets, pair_replies)]
        scored, k = [], 0
        for rs in replies:
            rows = []
            for reply in rs:
                row = {"reply": reply, "scores": {name: columns[name][k] for name in self.names}}
                if parts is not None:
                    row["components"] = {name: float(values[k]) for name, values in parts.items()}
                rows.append(row)
                k += 1
            scored.append(rows)
        return scored


def llm_round_robin(
    tweets: Sequence[str], replies: Sequence[Sequence[str]], config: JudgeConfig
) -> list[list[float | None]]:
    """Each reply's mean LLM-judge score against every other reply to its tweet (1 = always preferred).

    There is no human reply to compare with, so every pair of a tweet's replies is judged once (n(n-1)/2
    judgments per tweet, through `replyrl.evaluation.judge`: the same clients, cache and call cap);
    identical replies tie without a call. None for a reply with no judged pair (no key, cap, API error).
    """
    comparisons, index = [], []
    results: list[list[list[float]]] = [[[] for _ in rs] for rs in replies]
    for t, (tweet, rs) in enumerate(zip(tweets, replies)):
        for i, j in itertools.combinations(range(len(rs)), 2):
            if rs[i] == rs[j]:
                results[t][i].append(llm_judge.SCORES["tie"])
                results[t][j].append(llm_judge.SCORES["tie"])
            else:
                comparisons.append(llm_judge.Comparison(tweet, rs[i], rs[j]))
                index.append((t, i, j))
    for (t, i, j), score in zip(index, llm_judge.judge(comparisons, config) if comparisons else []):
        if score is not None:
            results[t][i].append(score)
            results[t][j].append(1.0 - score)
    return [[float(np.mean(r)) if r else None for r in per_tweet] for per_tweet in results]


def rank(scored: Sequence[dict], by: str, top: int | None = None) -> list[dict]:
    """``scored`` best first by ``scores[by]`` (unscored replies last, sampling order among ties), each
    with its ``rank`` (1 = best), cut to ``top``."""
    order = sorted(scored, key=lambda row: (row["scores"][by] is None, -(row["scores"][by] or 0.0)))
    return [{"rank": r, **row} for r, row in enumerate(order[:top], 1)]


def suggest(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tweets: Sequence[str],
    config: SuggestConfig,
    prompt: PromptConfig,
    scorer: ReplyScorer,
    progress: bool = False,
) -> list[dict]:
    """Sample ``config.n`` replies to each tweet, score and rank them: one result per tweet with the
    model folder, the sampling params, what ranks, and the ranked ``suggestions``."""
    check_tweets(tweets)
    set_seed(config.seed)
    prompts = build_prompts(tokenizer, tweets, prompt)
    replies = generate_replies(model, tokenizer, prompts, config.sampling(), config.batch_size, progress)
    sampling = {
        "n": config.n, "temperature": config.temperature, "top_p": config.top_p,
        "max_new_tokens": config.max_new_tokens, "seed": config.seed,
        "dtype": str(model.dtype).removeprefix("torch."),
    }
    return [
        {"tweet": tweet, "model": str(config.model_dir), "sampling": sampling, "ranked_by": scorer.names[0],
         "suggestions": rank(scored, scorer.names[0], config.top)}
        for tweet, scored in zip(tweets, scorer.score(tweets, replies))
    ]


def write_results(path: str | Path, rows: Sequence[dict], results: Sequence[dict]) -> int:
    """Write each input row with its result's fields added (atomically); returns the rows written."""
    return write_jsonl(path, ({**row, **result} for row, result in zip(rows, results, strict=True)))


def format_table(result: Mapping, heuristic_config: HeuristicRewardConfig | None = None) -> str:
    """One `suggest` result as a ranked table; with ``heuristic_config``, each reply's heuristic
    components below it (the suggestions must then carry them: ``ReplyScorer(explain=True)``)."""
    s = result["sampling"]
    names = list(result["suggestions"][0]["scores"]) if result["suggestions"] else [result["ranked_by"]]
    lines = [
        f"tweet: {result['tweet']}",
        f"model: {result['model']}  (n {s['n']}, temperature {s['temperature']}, top_p {s['top_p']}, "
        f"max_new_tokens {s['max_new_tokens']}, seed {s['seed']}, {s['dtype']}); ranked by {result['ranked_by']}",
        "rank  " + "".join(f"{name:>10}" for name in names) + "  reply",
    ]
    for row in result["suggestions"]:
        scores = "".join(f"{'n/a' if v is None else f'{v:.4f}':>10}" for v in row["scores"].values())
        lines.append(f"{row['rank']:>4}  {scores}  {' '.join(row['reply'].split()) or '(empty)'}")
        if heuristic_config is not None:
            lines += component_lines(row["components"], heuristic_config, indent=" " * 8)
    return "\n".join(lines)
