"""Benchmark the sampler (`replyrl.sampling`) against stock transformers `generate` at equal work.

Both sample the same prompts with the same batch, temperature, top-p, top-k (0) and token budget, at
the settings of the places that sample: the generate stage (`evaluate.*`: 16 tweets x 10 replies) and
GRPO rollouts (`grpo.*`: prompts_per_step x num_generations replies). Speed is generated tokens (up to
each reply's first EOS) per second, so a variant that stops earlier gets no credit for it. Prints ratios measured in
this run; asserts nothing (tests/test_sampling.py checks that both draw from the same distribution).

    python benchmarks/sampling.py                 # models/base if present, else the packaged SmolLM2
    python benchmarks/sampling.py --tiny          # tiny random model: a quick smoke run
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from grpo_rollout import benchmark_parser, generated_tokens, model_folder  # this folder (the script is run as a file)

from replyrl.cli import setup_logging
from replyrl.configs.evaluate import EvaluateConfig
from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.loader import load_section
from replyrl.configs.prompt import PromptConfig
from replyrl.io import read_jsonl
from replyrl.models.base import load_base
from replyrl.models.precision import describe_machine
from replyrl.prompts import build_prompts
from replyrl.sampling import SamplingConfig, eos_token_ids, sample_token_ids


@torch.no_grad()
def stock_generate(model, tokenizer, prompts: list[str], sampling: SamplingConfig) -> int:
    enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    seq = model.generate(**enc, do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                         top_k=sampling.top_k, max_new_tokens=sampling.max_new_tokens,
                         num_return_sequences=sampling.num_samples, pad_token_id=tokenizer.pad_token_id)
    return generated_tokens(seq, enc["input_ids"].shape[1], tokenizer.eos_token_id)


def ours(model, tokenizer, prompts: list[str], sampling: SamplingConfig) -> int:
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    rows = sample_token_ids(model, ids, sampling, eos_token_ids(model, tokenizer), tokenizer.pad_token_id)
    return sum(len(r) for r in rows)


def compare(model, tokenizer, prompts: list[str], sampling: SamplingConfig, repeats: int) -> None:
    print(f"\n{len(prompts)} prompts x {sampling.num_samples} replies, <= {sampling.max_new_tokens} new tokens, "
          f"T={sampling.temperature}, top_p={sampling.top_p}, top_k={sampling.top_k}, {model.dtype}")
    speed = {}
    for name, fn in [("stock transformers generate", stock_generate), ("replyrl.sampling", ours)]:
        tokens, seconds = 0, 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            tokens += fn(model, tokenizer, prompts, sampling)
            seconds += time.perf_counter() - start
        speed[name] = tokens / seconds
        print(f"  {name:<30} {tokens / repeats:6.0f} tokens in {seconds / repeats:6.1f} s: {speed[name]:6.1f} tokens/s")
    ratio = speed["replyrl.sampling"] / speed["stock transformers generate"]
    print(f"  ratio: {ratio:.2f}x (goal >= 2x)")


def main() -> None:
    parser = benchmark_parser(__doc__, data="data/processed/test_data.jsonl")
    parser.add_argument("--repeats", type=int, default=2, help="Timed repeats of each variant.")
    parser.add_argument("--bf16", action="store_true", help="bf16 weights (default float32, what `auto` picks "
                        "on a CPU without AMX).")
    args = parser.parse_args()
    setup_logging()
    evaluate = load_section(EvaluateConfig, "evaluate", args.params)
    grpo = load_section(GRPOStageConfig, "grpo", args.params)
    rows = read_jsonl(args.data) if Path(args.data).exists() else [
        {"tweet": f"Just tried the new coffee place downtown, number {i}. Thoughts?"} for i in range(16)]
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_base(model_folder(args, Path(tmp)))
        model.eval().to(torch.bfloat16 if args.bf16 else torch.float32)
        tweets = list(dict.fromkeys(row["tweet"] for row in rows))
        prompts = build_prompts(tokenizer, tweets, load_section(PromptConfig, "prompt", args.params))
        print(f"{describe_machine()}; model {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params")
        torch.manual_seed(0)
        ours(model, tokenizer, prompts[:1], SamplingConfig(max_new_tokens=4))  # warm-up
        compare(model, tokenizer, prompts[: evaluate.batch_size], SamplingConfig(
            num_samples=evaluate.n_samples, temperature=evaluate.temperature, top_p=evaluate.top_p,
            max_new_tokens=evaluate.max_new_tokens), args.repeats)
        compare(model, tokenizer, prompts[: grpo.prompts_per_step], SamplingConfig(
            num_samples=grpo.num_generations, temperature=grpo.temperature, top_p=grpo.top_p,
            max_new_tokens=grpo.max_completion_length), args.repeats)


if __name__ == "__main__":
    main()
