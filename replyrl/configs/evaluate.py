"""`evaluate`: one params section for two stages.

`generate` reads (and dvc.yaml lists for it) only the model lists, prompt selection and sampling keys,
so changing a metric setting reruns `evaluate` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from replyrl.configs.loader import AutoBool, Bf16, check, check_positive, check_sampling, help_field

PASS_JUDGES = ("auto", "gold", "learned", "heuristic", "llm")
PASS_CRITERIA = ("quantile", "per_tweet", "median")
JUDGE_PROVIDERS = ("anthropic", "openai")


@dataclass
class PassAtKConfig:
    judge: str = help_field(
        "auto",
        "Who scores a sample: `auto` (`gold` where every test tweet carries the gold's context, as the sample's "
        "do, else `learned`; the metrics name the one used as `pass_at_k_judge`), `gold` (the sample's ground-truth "
        "engagement function; needs the sample's chat ratings, checked by `prepare`), `learned` (predicted "
        "engagement), `heuristic` or `llm` (pairwise vs the human reply). The gold and the learned proxy are "
        "reported beside it wherever they are available.",
    )
    threshold: float | str = help_field(
        "quantile",
        "When a sample passes: `quantile` (its judge score >= the `quantile` of the judge's scores of "
        "`reference_pairs` human replies of the training data: 0.75 = as engaging as a top-quarter human reply), "
        "`per_tweet` (>= the tweet's best human reply: one noisy draw, often a 1-3 word reply), `median` (>= the "
        "median of the evaluated human replies) or a number on the Pass@k judge's scale.",
    )
    quantile: float = help_field(0.75, "With threshold `quantile`: which quantile of the human replies' scores.")
    reference_pairs: int = help_field(
        500, "With threshold `quantile`: how many training pairs (seeded choice) set the human quantile."
    )
    k: list[int] = help_field([1, 3, 5, 10], "The k of Pass@k.")
    bootstrap_samples: int = help_field(1000, "Bootstrap resamples (over prompts) for the CI.")
    confidence: float = help_field(0.95, "Confidence level of the bootstrap interval.")

    def __post_init__(self) -> None:
        check(self.judge in PASS_JUDGES, "evaluate.pass_at_k.judge", self.judge, f"choose one of {PASS_JUDGES}")
        check(self.threshold in PASS_CRITERIA or (isinstance(self.threshold, (int, float))
                                                  and not isinstance(self.threshold, bool)),
              "evaluate.pass_at_k.threshold", self.threshold, f"choose one of {PASS_CRITERIA} or a number")
        check(0.0 < self.quantile < 1.0, "evaluate.pass_at_k.quantile", self.quantile, "must be in (0, 1)")
        check_positive(self, "evaluate.pass_at_k", ("reference_pairs",))
        check(bool(self.k) and all(k > 0 for k in self.k), "evaluate.pass_at_k.k", self.k,
              "must be a non-empty list of positive ints")
        check_positive(self, "evaluate.pass_at_k", ("bootstrap_samples",))
        check(0.0 < self.confidence < 1.0, "evaluate.pass_at_k.confidence", self.confidence, "must be in (0, 1)")


@dataclass
class PrimaryConfig:
    """The one pre-registered comparison, tested alone at alpha (no multiplicity correction)."""

    model: str = help_field("grpo_from_polychromic", "The model the recipe proposes.")
    other: str = help_field("grpo_from_baseline", "What it is compared with.")
    metric: str = help_field(
        "pass@5", "A per-tweet column of the evaluation (e.g. `pass@5`); a Pass@k here is the one the table uses."
    )


@dataclass
class SignificanceConfig:
    primary: PrimaryConfig = field(default_factory=PrimaryConfig)
    pairs: list[list[str]] = help_field(
        [], "Extra [model, other] comparisons for the verdict table, beside the recipe's (see README)."
    )
    alpha: float = help_field(
        0.05, "Level of the primary test (two-sided); every row's CI is 1 - alpha, unadjusted."
    )
    q: float = help_field(
        0.10, "False discovery rate of the secondary (exploratory) rows: Benjamini-Hochberg over them."
    )
    power: float = help_field(0.8, "Power at which the minimum detectable difference (`mde`) is reported.")

    def __post_init__(self) -> None:
        check(all(len(pair) == 2 for pair in self.pairs), "evaluate.significance.pairs", self.pairs,
              "must hold [model, other] pairs")
        check(self.primary.model != self.primary.other, "evaluate.significance.primary", self.primary,
              "compare two different models")
        check(0.0 < self.alpha < 1.0, "evaluate.significance.alpha", self.alpha, "must be in (0, 1)")
        check(0.0 < self.q < 1.0, "evaluate.significance.q", self.q, "must be in (0, 1)")
        check(0.0 < self.power < 1.0, "evaluate.significance.power", self.power, "must be in (0, 1)")


@dataclass
class JudgeConfig:
    enabled: bool = help_field(
        False, "Run the LLM judge in `evaluate` (needs the provider's API key, not on a local server; else skipped)."
    )
    provider: str = help_field(
        "anthropic",
        "`anthropic` (the Messages API, ANTHROPIC_API_KEY) or `openai` (any OpenAI-compatible server at base_url, "
        "e.g. a local vLLM, llama.cpp or Ollama; OPENAI_API_KEY if it needs one).",
    )
    model: str = help_field(
        "claude-haiku-4-5", "Judge model: an Anthropic id, or the name the OpenAI-compatible server serves."
    )
    base_url: str | None = help_field(
        None, "API base URL (a local server: e.g. http://127.0.0.1:8000/v1); null = the SDK default."
    )
    max_calls: int = help_field(200, "At most this many new (uncached) API calls per run.")
    max_tokens: int = help_field(5, "Output token cap; the judge answers A, B or TIE.")
    input_usd_per_mtok: float = help_field(1.0, "Input price, for the cost estimate printed first (local server: 0).")
    output_usd_per_mtok: float = help_field(5.0, "Output price, for the cost estimate (0 for a local server).")
    cache: str = help_field(
        "reports/judge_cache/judgments.jsonl",
        "Every judgment is appended here as it arrives; cached ones are never paid for twice.",
    )
    seed: int = help_field(0, "Seed of the randomised A/B order.")

    def __post_init__(self) -> None:
        check(self.provider in JUDGE_PROVIDERS, "evaluate.judge.provider", self.provider,
              f"choose one of {JUDGE_PROVIDERS}")
        check(self.max_calls >= 0, "evaluate.judge.max_calls", self.max_calls, "must be >= 0")
        check_positive(self, "evaluate.judge", ("max_tokens",))


@dataclass
class EvaluateConfig:
    # models: generated per seed of `seeds`; folders models/<base>, models/sft/<name>/seed_<s> (every run of
    # grpo.runs is evaluated too, from models/grpo/<name>/seed_<s>)
    base_models: list[str] = help_field(["base"], "The untuned base model, evaluated beside the warm-starts (`[]`: skip it).")
    sft_models: list[str] = help_field(
        ["baseline_phase1", "polychromic_phase1"],
        "SFT adapters; `<method>_phase1` are the GRPO warm-starts each GRPO model is compared with.",
    )
    # test prompts and sampling (the `generate` stage)
    max_prompts: int | None = help_field(12, "Evaluate this many test tweets (a seeded random choice); null = all.")
    prompt_seed: int = help_field(0, "Seed of the choice of test tweets.")
    n_samples: int = help_field(10, "Sampled replies per tweet (>= the largest k of Pass@k).")
    temperature: float = help_field(0.8, "Sampling temperature.")
    top_p: float = help_field(0.95, "Nucleus sampling mass.")
    max_new_tokens: int = help_field(
        48, "Longest reply, in tokens: above all but ~7% of the sample's human replies (17% reach 32 tokens).")
    batch_size: int = help_field(16, "Tweets per sampler call (each yields n_samples sequences).")
    bf16: Bf16 = help_field("auto", "Generate with bf16 weights: `auto` (where bf16 is faster: AMX or a bf16 GPU), true or false.")
    vllm: AutoBool = help_field(
        "auto", "Sample with vLLM: `auto` = where a CUDA GPU and the `vllm` package are both present; true or false."
    )
    # metrics (the `evaluate` stage only)
    pass_at_k: PassAtKConfig = field(default_factory=PassAtKConfig)
    bertscore_layer: int | None = help_field(None, "Encoder layer whose token embeddings BERTScore compares; null = the last.")
    significance: SignificanceConfig = field(default_factory=SignificanceConfig)
    report_examples: int = help_field(5, "Random test tweets shown with every model's samples.")
    report_seed: int = help_field(0, "Seed of the choice of those tweets.")
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def __post_init__(self) -> None:
        check(all(name == "base" for name in self.base_models), "evaluate.base_models", self.base_models,
              "may only be [] or [base]")
        check(len(set(self.models)) == len(self.models), "evaluate", self.models, "a model is listed twice")
        check(self.n_samples >= max(self.pass_at_k.k), "evaluate.n_samples", self.n_samples,
              f"must be >= the largest k of Pass@k ({max(self.pass_at_k.k)})")
        check(self.max_prompts is None or self.max_prompts > 0, "evaluate.max_prompts", self.max_prompts,
              "must be > 0 or null")
        check(self.pass_at_k.judge != "llm" or self.judge.enabled, "evaluate.pass_at_k.judge", self.pass_at_k.judge,
              "set evaluate.judge.enabled to true as well")
        check_sampling("evaluate", self.temperature, self.top_p)
        check_positive(self, "evaluate", ("max_new_tokens", "batch_size"))

    @property
    def models(self) -> list[str]:
        """The base and SFT models' names, as used in `data/generations/<name>/` and the metric keys (the
        GRPO runs, `GRPORun.model`, come from grpo.runs)."""
        return [*self.base_models, *self.sft_models]
