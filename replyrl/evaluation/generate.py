"""The `generate` stage: sample every evaluated model's replies to the same test tweets, once.

Metrics are computed later from these files (`evaluate`), so changing a metric never resamples.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, set_seed

from replyrl.configs.evaluate import EvaluateConfig
from replyrl.configs.loader import AutoBool, Bf16
from replyrl.configs.prompt import PromptConfig
from replyrl.data.groups import group_key, tweet_key
from replyrl.data.schema import CONTEXT_FIELD
from replyrl.models.policy import load_policy
from replyrl.models.precision import check_vllm, model_dtype, vllm_usable
from replyrl.models.vllm_policy import VLLMPolicy
from replyrl.prompts import build_prompts
from replyrl.sampling import SamplingConfig, generate_replies


def select_test_tweets(rows: Sequence[dict], max_prompts: int | None, seed: int) -> list[dict]:
    """Group test rows by tweet and pick ``max_prompts`` tweets (seeded, so every model gets the same ones).

    Each tweet's human replies become its references. Returns dicts with ``tweet_id`` (`tweet_key`),
    ``group_id`` (`group_key`: the conversation, the unit evaluation pairs and resamples), ``tweet``,
    ``references`` and, for the sample, the chat's ratings (the gold judge's context), in a stable order.
    """
    tweets: dict[str, dict] = {}
    for row in rows:
        key = tweet_key(row)
        if key not in tweets:
            tweets[key] = {"tweet_id": key, "group_id": group_key(row), "tweet": row["tweet"], "references": []}
            if CONTEXT_FIELD in row:
                tweets[key][CONTEXT_FIELD] = row[CONTEXT_FIELD]
        tweets[key]["references"].append(row["reply"])
    keys = sorted(tweets)
    if max_prompts is not None and max_prompts < len(keys):
        keys = sorted(random.Random(seed).sample(keys, max_prompts))
    return [tweets[k] for k in keys]


def load_for_generation(model_dir: str, bf16: Bf16, vllm: AutoBool = False,
                        seed: int = 0) -> tuple[PreTrainedModel | VLLMPolicy, PreTrainedTokenizerBase]:
    """Any policy folder, on the accelerator if there is one, with bf16 weights where they are faster.

    With ``vllm`` true (or ``auto`` where a CUDA GPU and `vllm` are present) it is served by a
    `VLLMPolicy` engine seeded with ``seed``, which `generate_replies` samples from like a model.
    """
    if vllm is True:
        check_vllm("evaluate.vllm")
    if vllm is True or (vllm == "auto" and vllm_usable()):
        policy = VLLMPolicy(model_dir, model_dtype(bf16), seed=seed)
        return policy, policy.tokenizer
    model, tokenizer = load_policy(model_dir, dtype=model_dtype(bf16))
    if torch.accelerator.is_available():
        model.to(torch.accelerator.current_accelerator())
    return model, tokenizer


def generate_for_model(
    model: PreTrainedModel | VLLMPolicy,
    tokenizer: PreTrainedTokenizerBase,
    tweets: Sequence[dict],
    prompt: PromptConfig,
    config: EvaluateConfig,
    seed: int,
    progress: bool = True,
) -> list[dict]:
    """``config.n_samples`` sampled replies and one greedy reply per tweet, as generation-file rows."""
    prompts = build_prompts(tokenizer, [t["tweet"] for t in tweets], prompt)
    sampling = SamplingConfig(
        num_samples=config.n_samples, temperature=config.temperature, top_p=config.top_p,
        max_new_tokens=config.max_new_tokens, with_greedy=True,
    )
    set_seed(seed)
    replies = generate_replies(model, tokenizer, prompts, sampling, config.batch_size, progress)
    params = {
        "seed": seed, "n_samples": config.n_samples, "temperature": config.temperature, "top_p": config.top_p,
        "top_k": sampling.top_k,
        "max_new_tokens": config.max_new_tokens, "dtype": str(model.dtype).removeprefix("torch."),
        "sampler": "vllm" if isinstance(model, VLLMPolicy) else "replyrl",
    }
    # Each sample's length in tokens, re-tokenised from its text: the report counts those that reached
    # max_new_tokens (cut off rather than finished).
    return [
        {**tweet, "prompt": text, "samples": rows[:-1], "greedy": rows[-1],
         "sample_tokens": [len(ids) for ids in tokenizer(rows[:-1], add_special_tokens=False)["input_ids"]],
         "generation": params}
        for tweet, text, rows in zip(tweets, prompts, replies)
    ]
