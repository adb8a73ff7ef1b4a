"""The `evaluate` stage: Pass@k, diversity, quality and significance from the generation files.

Every metric is first computed per test tweet (one row per model x seed x tweet in `per_prompt`),
then averaged over tweets per seed, then reported as mean and std over seeds. Pass@k intervals
bootstrap each group's value (the conversation, or the tweet: `groups.group_key`) averaged over seeds
and its tweets. Verdicts (`verdicts`) compare two models on values per seed and group, paired by both,
with seeds as the unit of inference.

Judges: Pass@k uses ``evaluate.pass_at_k.judge``. On the sample the gold engagement function (the
ground truth behind the likes) and the learned proxy are both reported, side by side (``pass@k`` and
``gold_score`` beside ``pass@k_learned`` and ``predicted_engagement``), so a model that games the
proxy shows as a gap between the two.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm
from transformers import AutoTokenizer
from trl.rewards import get_soft_overlong_punishment

from replyrl.configs.evaluate import EvaluateConfig
from replyrl.configs.grpo import GRPORun, GRPOStageConfig
from replyrl.configs.reward import RewardConfig
from replyrl.data.gold import context_of, gold_components, gold_scores, has_context
from replyrl.evaluation import judge as llm_judge
from replyrl.evaluation.verdicts import verdict_table_metrics, verdicts
from replyrl.io import finite_or_none, read_json, read_jsonl
from replyrl.metrics.diversity import distinct_n, self_bleu, semantic_diversity
from replyrl.metrics.overlap import BertScore, rouge_l
from replyrl.metrics.passk import pass_at_k_per_prompt
from replyrl.metrics.stats import bootstrap_ci
from replyrl.models.encoder import encode, load_encoder
from replyrl.rewards import load_reward
from replyrl.text import copies_tweet, is_boilerplate
from replyrl.training.grpo_rewards import DIVERSITY, OVERLONG, group_distance_to_others, reward_weights

logger = logging.getLogger(__name__)

TextScorer = Callable[[Sequence[str], Sequence[str]], np.ndarray]
GoldScorer = Callable[[Sequence[str], Sequence[str], Sequence[dict]], np.ndarray]  # (tweets, replies, contexts)
GENERATION_FIELDS = ("tweet_id", "group_id", "tweet", "references", "samples", "greedy")
# Per-tweet columns besides pass@k, in report order; all but self_bleu are "higher is better".
# gold_score is there only when the tweets carry the gold's context (the sample); grpo_reward only when
# `evaluate` is given the grpo config (`grpo_rewards`).
METRICS = (
    "self_bleu", "distinct_1", "distinct_2", "semantic_diversity",
    "rouge_l", "bertscore_f1", "grpo_reward", "heuristic_reward", "predicted_engagement", "gold_score",
)
ID_COLUMNS = ("model", "seed", "tweet_id", "group_id")  # of `per_prompt`; every other column is a metric
# The mean per-sample score column of each judge.
SCORE_COLUMNS = {"gold": "gold_score", "learned": "predicted_engagement", "heuristic": "heuristic_reward"}
GRPO_KL_KEY = "kl/final"  # written by the grpo stage into metrics/grpo/<run name>_seed_<seed>.json


@dataclass
class Scorers:
    """What turns text into numbers: the two rewards, the sentence encoder and BERTScore."""

    engagement: TextScorer  # the learned reward: predicted engagement of (tweet, reply)
    heuristic: TextScorer
    embed: Callable[[Sequence[str]], np.ndarray]  # L2-normalised rows
    bertscore: BertScore
    gold: GoldScorer = gold_scores  # the sample's ground truth; needs each tweet's context
    # Tokens of each text under the policies' tokenizer (no special tokens): how many human replies the
    # generation's max_new_tokens would cut. None = not measured.
    count_tokens: Callable[[Sequence[str]], list[int]] | None = None


@dataclass
class Evaluation:
    """Everything the stage writes: flat metrics, per-tweet values, the Pass@k curve, report inputs."""

    metrics: dict[str, float | None]
    per_prompt: pd.DataFrame
    passk: pd.DataFrame
    verdicts: pd.DataFrame
    models: list[str]
    seeds: list[int]
    thresholds: dict[str, np.ndarray]  # per reported judge (the first is the Pass@k judge), one per tweet
    samples: pd.DataFrame  # one row per generated sample: its text checks, judge scores and gold components
    grpo_kl: dict[str, float]  # final KL per GRPO run, keyed grpo_<name>/seed_<seed>
    bertscore_model: str
    trained_on: dict[str, str]  # metric -> what trained on it (`training_objectives`)


def load_scorers(encoder_dir: str | Path, reward_model_dir: str | Path, reward_config: RewardConfig,
                 config: EvaluateConfig, batch_size: int = 64, tokenizer_dir: str | Path | None = None) -> Scorers:
    """Build the scorers from the pipeline's folders (`models/encoder`, `models/reward_model`, and
    `models/base` for its tokenizer)."""
    encoder = load_encoder(encoder_dir, device="cpu")
    return Scorers(
        engagement=load_reward("learned", reward_config, encoder, reward_model_dir, batch_size),
        heuristic=load_reward("heuristic", reward_config, encoder, reward_model_dir, batch_size),
        embed=lambda texts: encode(encoder, texts, batch_size),
        bertscore=BertScore(encoder_dir, config.bertscore_layer, batch_size),
        count_tokens=None if tokenizer_dir is None else token_counter(tokenizer_dir),
    )


def token_counter(tokenizer_dir: str | Path) -> Callable[[Sequence[str]], list[int]]:
    """Texts -> their lengths in tokens of the tokenizer in ``tokenizer_dir`` (as generate counts samples)."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    def count(texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    return count


def load_generations(
    folder: str | Path, models: Sequence[str], seeds: Sequence[int], min_samples: int
) -> dict[tuple[str, int], list[dict]]:
    """Read ``folder/<model>/seed_<seed>.jsonl`` for every model and seed, checking that they line up.

    All files must cover the same tweets in the same order (that is what pairs models by tweet) and
    hold at least ``min_samples`` samples per tweet.
    """
    generations: dict[tuple[str, int], list[dict]] = {}
    expected_ids: list[str] | None = None
    for model in models:
        for seed in seeds:
            path = Path(folder, model, f"seed_{seed}.jsonl")
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing: run the generate stage for model {model!r}, seed {seed}")
            rows = read_jsonl(path)
            if not rows:
                raise ValueError(f"{path}: no generations")
            for lineno, row in enumerate(rows, 1):
                missing = [f for f in GENERATION_FIELDS if f not in row]
                if missing:
                    raise ValueError(f"{path}:{lineno}: missing field(s) {missing}")
                if len(row["samples"]) != len(rows[0]["samples"]):
                    raise ValueError(f"{path}:{lineno}: {len(row['samples'])} samples, but line 1 has "
                                     f"{len(rows[0]['samples'])}; every tweet needs the same number")
                if len(row["samples"]) < min_samples:
                    raise ValueError(f"{path}:{lineno}: {len(row['samples'])} samples, need >= {min_samples} "
                                     "(evaluate.n_samples must cover the largest k; rerun generate)")
                if not row["references"]:
                    raise ValueError(f"{path}:{lineno}: field 'references' is empty")
            ids = [row["tweet_id"] for row in rows]
            if expected_ids is None:
                expected_ids = ids
            elif ids != expected_ids:
                raise ValueError(f"{path}: its tweets differ from the other generation files; rerun generate "
                                 "for every model with the same evaluate.max_prompts/prompt_seed")
            generations[model, seed] = rows
    return generations


def read_grpo_kl(folder: str | Path, runs: Sequence[str], seeds: Sequence[int]) -> dict[str, float]:
    """Final KL of every GRPO run (``grpo.runs`` names), keyed ``grpo_<name>/seed_<seed>``; runs without one
    are left out."""
    kls = {}
    for run in runs:
        for seed in seeds:
            path = Path(folder, f"{run}_seed_{seed}.json")
            value = read_json(path).get(GRPO_KL_KEY) if path.exists() else None
            if value is None:
                logger.warning("%s has no %r: the KL criterion skips this run", path, GRPO_KL_KEY)
            else:
                kls[f"grpo_{run}/seed_{seed}"] = float(value)
    return kls


def judge_scores(generations: dict[tuple[str, int], list[dict]], config: EvaluateConfig) -> tuple[dict, dict]:
    """LLM-judge scores vs the first human reply: of every greedy reply, and of every sample if the
    LLM is the Pass@k judge. Returns ({(model, seed): greedy scores}, {(model, seed): sample scores}).

    Comparisons are ordered tweet by tweet across models, so a call cap leaves every model with
    judgments on the same tweets.
    """
    keys = list(generations)
    n_prompts = len(next(iter(generations.values())))
    index: list[tuple[str, tuple, int, int]] = []  # (kind, (model, seed), tweet, sample)
    for i in range(n_prompts):
        index.extend(("greedy", key, i, 0) for key in keys)
    if config.pass_at_k.judge == "llm":
        for i in range(n_prompts):
            n = len(generations[keys[0]][i]["samples"])
            index.extend(("sample", key, i, j) for j in range(n) for key in keys)
    comparisons = []
    for kind, key, i, j in index:
        row = generations[key][i]
        reply = row["greedy"] if kind == "greedy" else row["samples"][j]
        comparisons.append(llm_judge.Comparison(row["tweet"], reply, row["references"][0]))
    scores = llm_judge.judge(comparisons, config.judge)
    greedy = {key: np.full(n_prompts, np.nan) for key in keys}
    samples = {key: np.full((n_prompts, len(generations[key][0]["samples"])), np.nan) for key in keys}
    for (kind, key, i, j), score in zip(index, scores):
        value = np.nan if score is None else score
        if kind == "greedy":
            greedy[key][i] = value
        else:
            samples[key][i, j] = value
    return greedy, samples


def resolve_judge(config: EvaluateConfig, generations: dict[tuple[str, int], list[dict]]) -> EvaluateConfig:
    """``config`` with ``pass_at_k.judge: auto`` made concrete: `gold` where every generation row carries
    the gold's context (the sample's), else `learned` (the user's own data); any other judge is kept.

    What reads ``config.pass_at_k.judge`` (`criterion`, `training_objectives`, the report) expects it
    resolved: the stage resolves it once, right after loading the generations (`evaluate` does too).
    """
    if config.pass_at_k.judge != "auto":
        return config
    judge = "gold" if all(has_context(row) for rows in generations.values() for row in rows) else "learned"
    logger.info("evaluate.pass_at_k.judge: auto -> %s", judge)
    return dataclasses.replace(config, pass_at_k=dataclasses.replace(config.pass_at_k, judge=judge))


def reported_judges(generations: dict[tuple[str, int], list[dict]], config: EvaluateConfig) -> list[str]:
    """The Pass@k judge first (`auto` resolved: `resolve_judge`), then the gold and the learned proxy
    where available, reported side by side.

    The gold needs every tweet's context (only the sample has it); as the Pass@k judge without it,
    this raises naming the first generation row that lacks it.
    """
    judge = resolve_judge(config, generations).pass_at_k.judge
    missing = next(((key, i) for key, rows in generations.items() for i, row in enumerate(rows)
                    if not has_context(row)), None)
    if judge == "gold" and missing is not None:
        (model, seed), i = missing
        context_of(generations[model, seed][i], f"evaluate.pass_at_k.judge=gold: {model}/seed_{seed}.jsonl line {i + 1}")
    extra = [j for j in ("gold", "learned") if j != judge and (j != "gold" or missing is None)]
    return [judge, *extra]


def judge_scores_per_row(
    rows: Sequence[dict], texts: Sequence[Sequence[str]], judge: str, scorers: Scorers
) -> list[np.ndarray]:
    """``judge``'s score of each reply in ``texts[i]`` to ``rows[i]["tweet"]``, one array per row, from
    one batched call (``judge`` is gold, learned or heuristic)."""
    tweets = [row["tweet"] for row, group in zip(rows, texts) for _ in group]
    replies = [text for group in texts for text in group]
    if judge == "gold":
        row_contexts = [context_of(row, f"tweet {row['tweet_id']}") for row in rows]
        flat = scorers.gold(tweets, replies, [c for c, group in zip(row_contexts, texts) for _ in group])
    else:
        flat = (scorers.engagement if judge == "learned" else scorers.heuristic)(tweets, replies)
    return np.split(np.asarray(flat, dtype=np.float64), np.cumsum([len(group) for group in texts])[:-1])


def grpo_rewards(rows: Sequence[dict], scores: dict[str, np.ndarray], embeddings: np.ndarray, cap: int,
                 grpo: GRPOStageConfig) -> np.ndarray:
    """GRPO's training reward of every sample of ``rows`` (one generation file), shape (tweets, samples):
    each term of `grpo_rewards.reward_weights`, weighted and summed as the trainer sums them.

    ``scores``: the samples' heuristic and learned scores (`SCORE_COLUMNS`' judges); ``embeddings``: their
    encoder rows, tweet by tweet; ``cap``: the ``evaluate.max_new_tokens`` they were sampled with.
    ``diversity``: a sample's mean encoder distance to the other samples of its tweet. A training group
    holds ``grpo.num_generations`` replies, evaluation ``evaluate.n_samples``: the same quantity (an
    estimate of a reply's expected distance to another reply to its prompt) over a larger group.
    ``overlong``: TRL's punishment itself, on the length of the ids TRL passes it: a sample's tokens
    (``sample_tokens``, re-tokenised by the generate stage) plus the EOS a finished reply ends with, so
    tokens + 1 below the cap and tokens at it (as `grpo_callbacks.SampleWriter` counts them).
    """
    n_tweets, n = len(rows), len(rows[0]["samples"])

    def term(name: str) -> np.ndarray:
        if name == DIVERSITY:
            return group_distance_to_others(embeddings, np.repeat(np.arange(n_tweets), n)).reshape(n_tweets, n)
        if name == OVERLONG:
            tokens = np.array([row["sample_tokens"] for row in rows])
            lengths = np.where(tokens < cap, tokens + 1, tokens)
            punishment = get_soft_overlong_punishment(grpo.max_completion_length, grpo.overlong_cache_tokens)
            # TRL reads only the length of each completion's ids.
            return np.reshape(punishment([range(length) for length in lengths.ravel().tolist()]), lengths.shape)
        return scores[name]

    return sum(weight * term(name) for name, weight in reward_weights(grpo).items())


def measurable_grpo(generations: dict[tuple[str, int], list[dict]],
                    grpo: GRPOStageConfig | None) -> GRPOStageConfig | None:
    """``grpo``, or None (no ``grpo_reward`` column, the reason logged) where its overlong term needs the
    token counts a generation file lacks (files written before the generate stage counted them)."""
    if grpo is None or OVERLONG not in reward_weights(grpo):
        return grpo
    for (model, seed), rows in generations.items():
        if any("sample_tokens" not in row for row in rows):
            logger.warning("no grpo_reward column: %s/seed_%d.jsonl has no sample_tokens, which the overlong term "
                           "(grpo.overlong_weight) needs; rerun the generate stage", model, seed)
            return None
    return grpo


def per_prompt_metrics(
    generations: dict[tuple[str, int], list[dict]], scorers: Scorers, config: EvaluateConfig,
    reference: Sequence[dict] = (), grpo: GRPOStageConfig | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray], dict[str, float]]:
    """One row per (model, seed, tweet) with every metric; one row per sample (`sample_table`); the pass
    thresholds of each reported judge (one per tweet); and the Pass@k judge's `human_pass_rates`.
    ``reference``: training pairs, whose human replies set the `quantile` criterion's threshold.
    ``grpo``: the grpo config, for the ``grpo_reward`` column (`grpo_rewards`, mean over a tweet's samples);
    None: no such column.

    Pass@k columns: ``pass@k`` under ``evaluate.pass_at_k.judge``, ``pass@k_<judge>`` under each other
    reported judge (`reported_judges`).
    """
    grpo = measurable_grpo(generations, grpo)
    judges = reported_judges(generations, config)
    scored = [j for j in dict.fromkeys([*judges, "learned", "heuristic"]) if j != "llm"]
    scores = {
        judge: {key: np.stack(judge_scores_per_row(rows, [row["samples"] for row in rows], judge, scorers))
                for key, rows in generations.items()}
        for judge in scored
    }
    llm_greedy, llm_samples = judge_scores(generations, config) if config.judge.enabled else ({}, {})
    if "llm" in judges:
        unjudged = sum(int(np.isnan(s).sum()) for s in llm_samples.values())
        if unjudged:
            raise RuntimeError(f"evaluate.pass_at_k.judge is 'llm' but {unjudged} samples are not judged (see the "
                               "log: no API key for evaluate.judge.provider, evaluate.judge.max_calls or an API error); rerun to "
                               "continue from the cache")
        scores["llm"] = llm_samples
    # Every file covers the same tweets: their human replies are scored once, per judge.
    rows0 = next(iter(generations.values()))
    human = {judge: judge_scores_per_row(rows0, [row["references"] for row in rows0], judge, scorers)
             for judge in judges if judge != "llm"}
    references = reference_rows(reference, config) if "quantile" in {criterion(j, config) for j in judges} else []
    reference_scores = {judge: np.concatenate(judge_scores_per_row(references, [[r["reply"]] for r in references],
                                                                   judge, scorers))
                        for judge in judges if judge != "llm" and references}
    thresholds = {judge: pass_thresholds(human.get(judge), len(rows0), judge, config, reference_scores.get(judge))
                  for judge in judges}
    logger.info("mean pass threshold per judge (the first is the Pass@k judge): %s",
                {judge: round(float(t.mean()), 4) for judge, t in thresholds.items()})

    frames = []
    for key, rows in tqdm(generations.items(), desc="metrics", unit="file"):
        model, seed = key
        samples = [row["samples"] for row in rows]
        greedy = [row["greedy"] for row in rows]
        references = [row["references"] for row in rows]
        n = len(samples[0])
        emb = scorers.embed([s for group in samples for s in group])
        frame = pd.DataFrame({
            "model": model, "seed": seed, "tweet_id": [row["tweet_id"] for row in rows],
            "group_id": [row["group_id"] for row in rows],
            # sacrebleu's 0-100 score as a fraction, the scale of the recipe's "Self-BLEU < 0.35"
            "self_bleu": [self_bleu(group) / 100 for group in samples],
            "distinct_1": [distinct_n(group, 1) for group in samples],
            "distinct_2": [distinct_n(group, 2) for group in samples],
            "semantic_diversity": [semantic_diversity(emb[i * n : (i + 1) * n]) for i in range(len(rows))],
            "rouge_l": rouge_l(greedy, references),
            "bertscore_f1": scorers.bertscore.f1(greedy, references),
        } | {SCORE_COLUMNS[judge]: scores[judge][key].mean(axis=1) for judge in ("heuristic", "learned", "gold")
             if judge in scores})
        if grpo is not None:
            file_scores = {judge: scores[judge][key] for judge in ("heuristic", "learned")}
            frame["grpo_reward"] = grpo_rewards(rows, file_scores, emb, config.max_new_tokens, grpo).mean(axis=1)
        for i, judge in enumerate(judges):
            passed = scores[judge][key] >= thresholds[judge][:, None]
            for k in config.pass_at_k.k:
                frame[f"pass@{k}" + ("" if i == 0 else f"_{judge}")] = pass_at_k_per_prompt(passed, k)
        if key in llm_greedy:
            frame["llm_win_rate"] = llm_greedy[key]
        frames.append(frame)
    rates = (human_pass_rates(human[judges[0]], config.pass_at_k.threshold, thresholds[judges[0]])
             if judges[0] in human else {})
    samples = sample_table(generations, scores, judges[0], thresholds[judges[0]])
    return pd.concat(frames, ignore_index=True), samples, thresholds, rates


def reference_rows(rows: Sequence[dict], config: EvaluateConfig) -> list[dict]:
    """A seeded choice of ``evaluate.pass_at_k.reference_pairs`` training pairs (all of them if fewer):
    the human replies whose judge scores set the `quantile` criterion."""
    if not rows:
        raise ValueError("evaluate.pass_at_k.threshold 'quantile' needs the training pairs (the stage's --reference "
                         "file) to set the human quantile; none were given")
    n = min(config.pass_at_k.reference_pairs, len(rows))
    chosen = np.sort(np.random.default_rng(config.prompt_seed).choice(len(rows), size=n, replace=False))
    return [rows[i] | {"tweet_id": rows[i].get("tweet_id", f"reference {i}")} for i in chosen]


def sample_table(generations: dict[tuple[str, int], list[dict]], scores: dict[str, dict], judge: str,
                 thresholds: np.ndarray) -> pd.DataFrame:
    """One row per generated sample: model, seed, tweet, the text, its length in characters and tokens
    (``tokens``: re-tokenised by the generate stage; NaN in older files; ``at_token_cap``: at least the
    generation's ``max_new_tokens``, so most likely cut off), whether it copies >= 4
    consecutive words of the tweet (`replyrl.text.copies_tweet`) or is assistant boilerplate, every
    judge's score, whether it passes the Pass@k judge's criterion, and, on the sample, every gold
    component (``gold.<name>``)."""
    records = []
    for (model, seed), rows in generations.items():
        for i, row in enumerate(rows):
            tokens = row.get("sample_tokens", [np.nan] * len(row["samples"]))
            cap = row.get("generation", {}).get("max_new_tokens")
            for j, text in enumerate(row["samples"]):
                record = {"model": model, "seed": seed, "tweet_id": row["tweet_id"], "sample": j, "text": text,
                          "chars": len(text), "tokens": tokens[j],
                          "at_token_cap": bool(cap is not None and tokens[j] >= cap), "copies_tweet": copies_tweet(row["tweet"], text),
                          "boilerplate": is_boilerplate(text),
                          "passes": bool(scores[judge][model, seed][i, j] >= thresholds[i])}
                record |= {SCORE_COLUMNS[name]: float(values[model, seed][i, j]) for name, values in scores.items()
                           if name in SCORE_COLUMNS}
                if "gold" in scores:
                    parts = gold_components(row["tweet"], text, context_of(row, f"tweet {row['tweet_id']}"))
                    record |= {f"gold.{name}": value for name, value in parts.items() if name != "total"}
                records.append(record)
    return pd.DataFrame(records)


def sample_metrics(samples: pd.DataFrame) -> dict[str, float]:
    """What each model's samples look like (means over all its samples, every seed and tweet):
    ``median_chars``, the shares ``at_token_cap``, ``boilerplate`` and ``copies_tweet``, the number of
    ``passing_copies`` (samples that pass Pass@k while copying >= 4 words of the tweet), and the mean of
    every gold component (``gold.<name>``) where the gold was computed."""
    metrics: dict[str, float] = {}
    components = [c for c in samples.columns if c.startswith("gold.")]
    for model, group in samples.groupby("model", sort=False):
        metrics[f"{model}.median_chars"] = float(group["chars"].median())
        for share in ("at_token_cap", "boilerplate", "copies_tweet"):
            metrics[f"{model}.{share}"] = float(group[share].mean())
        metrics[f"{model}.passing_copies"] = int((group["passes"] & group["copies_tweet"]).sum())
        metrics |= {f"{model}.{c}": float(group[c].mean()) for c in components}
    return metrics


def criterion(judge: str, config: EvaluateConfig) -> float | str:
    """The pass criterion of ``judge``: a number applies to the Pass@k judge only (it is on that judge's
    scale); the other reported judges then use `per_tweet`."""
    threshold = config.pass_at_k.threshold
    if isinstance(threshold, str) or judge == config.pass_at_k.judge:
        return threshold
    return "per_tweet"


def pass_thresholds(
    human: Sequence[np.ndarray] | None, n_tweets: int, judge: str, config: EvaluateConfig,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Each of the ``n_tweets`` evaluated tweets' pass threshold under ``judge`` (`criterion`), from
    ``human``, the judge's scores of each tweet's human replies (None for the LLM): ``per_tweet``, the judge's
    score of the tweet's best human reply ("at least as engaging as the human reply to this tweet",
    which takes the tweet itself out of the comparison); ``quantile``, the ``evaluate.pass_at_k.quantile``
    of ``reference``, the judge's scores of the training data's human replies (`reference_rows`);
    ``median``, the median score of every evaluated human reply; or a fixed number. The LLM judge scores against the human reply already,
    so its threshold is a tie (0.5) unless a number is set; note it compares with the FIRST human reply,
    not the best one."""
    rule = criterion(judge, config)
    if not isinstance(rule, str):
        return np.full(n_tweets, float(rule))
    if judge == "llm":
        return np.full(n_tweets, llm_judge.SCORES["tie"])
    if rule == "quantile":
        return np.full(n_tweets, float(np.quantile(reference, config.pass_at_k.quantile)))
    if rule == "median":
        return np.full(n_tweets, float(np.median(np.concatenate(human))))
    return np.array([scores.max() for scores in human])


def human_pass_rates(human: Sequence[np.ndarray], threshold: float | str, thresholds: np.ndarray) -> dict[str, float]:
    """Sanity figures from ``human``, a judge's scores of each tweet's human replies: the share of them
    that pass under each criterion (``per_tweet``: only a tweet's best reply, and its ties, pass by
    construction, so 1.0 where every tweet has one reply; ``median``: about half; ``fixed``, with a
    numeric ``threshold``: those scoring at least it; ``quantile``: those reaching the training data's
    quantile, ``thresholds``, about 1 - quantile when the evaluated tweets are like the training ones)."""
    median = float(np.median(np.concatenate(human)))
    rates = {
        "per_tweet": float(np.mean(np.concatenate([scores >= scores.max() for scores in human]))),
        "median": float(np.mean(np.concatenate(human) >= median)),
    }
    if not isinstance(threshold, str):
        rates["fixed"] = float(np.mean(np.concatenate(human) >= threshold))
    if threshold == "quantile":
        rates["quantile"] = float(np.mean(np.concatenate([s >= t for s, t in zip(human, thresholds)])))
    return rates


def summarise(per_prompt: pd.DataFrame, config: EvaluateConfig) -> tuple[dict[str, float | None], pd.DataFrame]:
    """Flat metrics ``{model}.{metric}`` (mean over seeds) and ``{model}.{metric}_std``, plus the
    Pass@k table with bootstrap intervals over groups (conversations, or tweets)."""
    columns = [c for c in per_prompt.columns if c not in ID_COLUMNS]
    per_seed = per_prompt.groupby(["model", "seed"], sort=False)[columns].mean()
    mean = per_seed.groupby(level="model", sort=False).mean()
    std = per_seed.groupby(level="model", sort=False).std(ddof=1).fillna(0.0)  # one seed: no spread
    metrics: dict[str, float | None] = {}
    for model in mean.index:
        for column in columns:
            metrics[f"{model}.{column}"] = mean.at[model, column]
            metrics[f"{model}.{column}_std"] = std.at[model, column]
        if "llm_win_rate" in columns:
            judged = per_prompt.loc[per_prompt.model == model, "llm_win_rate"].notna()
            metrics[f"{model}.llm_judged"] = int(judged.sum())

    # Each tweet's value averaged over seeds; the interval resamples whole conversations.
    by_tweet = per_prompt.groupby(["model", "group_id", "tweet_id"], sort=False)[columns].mean()
    passk_rows = []
    for model in mean.index:
        tweets = by_tweet.loc[model]
        for k in config.pass_at_k.k:
            low, high = bootstrap_ci(tweets[f"pass@{k}"].to_numpy(), tweets.index.get_level_values("group_id"),
                                     config.pass_at_k.confidence, config.pass_at_k.bootstrap_samples)
            metrics[f"{model}.pass@{k}_ci_low"], metrics[f"{model}.pass@{k}_ci_high"] = low, high
            passk_rows.append({"model": model, "k": k, "pass@k": mean.at[model, f"pass@{k}"],
                               "ci_low": low, "ci_high": high})
    return {k: finite_or_none(v) for k, v in metrics.items()}, pd.DataFrame(passk_rows)


def training_objectives(reward_type: str, diversity_weight: float, objectives: Collection[str],
                        polychromic_quality: str, config: EvaluateConfig) -> dict[str, str]:
    """Which evaluation columns some model was trained on, and by what: such a metric is not evidence.

    ``reward_type``, ``diversity_weight``: the grpo params; ``objectives``: those of grpo.runs;
    ``polychromic_quality``: sft.polychromic.quality (the polychromic set score is quality x encoder diversity).
    ``config`` must have its judge resolved (`resolve_judge`): `auto` names no column.
    """
    # GRPO's whole reward, every term (`grpo_rewards`): the column is trained on whatever the terms are.
    marks: dict[str, list[str]] = {"grpo_reward": ["GRPO reward (all terms)"]}
    if reward_type in ("heuristic", "mix"):
        marks.setdefault("heuristic_reward", []).append("GRPO reward")
    if reward_type in ("learned", "mix"):
        marks.setdefault("predicted_engagement", []).append("GRPO reward")
    if polychromic_quality == "heuristic":
        marks.setdefault("heuristic_reward", []).append("polychromic SFT")
    marks.setdefault("semantic_diversity", []).append("polychromic SFT")
    if diversity_weight > 0:
        marks["semantic_diversity"].append("GRPO diversity bonus")
    if "polychromic" in objectives:
        marks["semantic_diversity"].append("GRPO objective")
    columns = {"learned": "predicted_engagement", "heuristic": "heuristic_reward"}
    judge = config.pass_at_k.judge
    if judge == "auto":
        raise ValueError("training_objectives: evaluate.pass_at_k.judge is 'auto'; pass resolve_judge(config, "
                         "generations), the judge it resolves to on the evaluated tweets")
    for k in config.pass_at_k.k:
        if judge in columns and columns[judge] in marks:
            marks[f"pass@{k}"] = marks[columns[judge]]
        if judge != "learned" and "predicted_engagement" in marks:
            marks[f"pass@{k}_learned"] = marks["predicted_engagement"]
    return {metric: ", ".join(dict.fromkeys(reasons)) for metric, reasons in marks.items()}


def evaluate(
    generations: dict[tuple[str, int], list[dict]], scorers: Scorers, config: EvaluateConfig,
    grpo_kl: dict[str, float] | None = None, trained_on: dict[str, str] | None = None,
    grpo_runs: Sequence[GRPORun] = (), reference: Sequence[dict] = (), grpo: GRPOStageConfig | None = None,
) -> Evaluation:
    """Compute every metric of the `evaluate` stage from loaded generations (see `load_generations`).

    ``reference``: the training pairs, for the `quantile` pass criterion (`reference_rows`).
    ``trained_on`` (`training_objectives`) marks the columns some model was trained on; ``grpo_runs``
    (grpo.runs) name the GRPO models' warm-starts and objectives for the verdict table; ``grpo``, the grpo
    config, adds GRPO's whole training reward as the ``grpo_reward`` column (`grpo_rewards`).
    """
    config = resolve_judge(config, generations)
    per_prompt, samples, thresholds, rates = per_prompt_metrics(generations, scorers, config, reference, grpo)
    metrics, passk = summarise(per_prompt, config)
    table = verdicts(per_prompt, config, trained_on, grpo_runs)
    metrics.update(verdict_table_metrics(table))
    models = list(dict.fromkeys(model for model, _ in generations))
    seeds = list(dict.fromkeys(seed for _, seed in generations))
    grpo_kl = grpo_kl or {}
    for model in models:
        runs = [v for run, v in grpo_kl.items() if run.split("/")[0] == model]
        if runs:
            metrics[f"{model}.final_kl"] = float(np.mean(runs))
    judge = config.pass_at_k.judge
    # Mean over the evaluated tweets (with `per_tweet` every tweet has its own threshold).
    metrics.update({f"pass_threshold_{j}": float(t.mean()) for j, t in thresholds.items() if j != judge})
    metrics.update({f"human_pass_rate.{rule}": rate for rule, rate in rates.items()})
    metrics["pass_at_k_judge"] = judge  # `auto` resolved: which judge the Pass@k columns use
    metrics.update({"pass_threshold": float(thresholds[judge].mean()), "n_prompts": len(generations[models[0], seeds[0]]),
                    "n_groups": int(per_prompt["group_id"].nunique()), "n_seeds": len(seeds),
                    "bertscore_layer": scorers.bertscore.layer})
    metrics.update(sample_metrics(samples))
    metrics["human.median_chars"] = float(np.median([len(r) for row in generations[models[0], seeds[0]]
                                                     for r in row["references"]]))
    if scorers.count_tokens is not None and reference:
        # The models' at_token_cap beside the people's: the share of the reference human replies (the
        # `quantile` criterion's training pairs) at least max_new_tokens long, which a model writing like
        # them would also reach.
        tokens = np.array(scorers.count_tokens([row["reply"] for row in reference_rows(reference, config)]))
        metrics["human.at_token_cap"] = float((tokens >= config.max_new_tokens).mean())
    return Evaluation(metrics, per_prompt, passk, table, models, seeds, thresholds, samples, grpo_kl,
                      scorers.bertscore.model_dir, trained_on or {})
