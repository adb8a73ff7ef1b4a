"""Benchmark GRPO rollouts: the original recipe's loop vs ours, then where a GRPO step's time goes.

Same model, prompts, group size and sampling settings for both:

(a) original: one `generate` call per reply, then one no-grad forward per reply to recompute its
    log-probs;
(b) TRL's stock path: one `generate` call for every prompt's whole group, then one batched no-grad
    forward for all log-probs;
(c) ours (what `ReplyGRPOTrainer` does): the same, sampled by `replyrl.sampling` (each prompt
    prefilled once for its group, a nucleus step without a full-vocabulary sort), the log-probs by
    TRL's fused head with `replyrl.models.shared_prefix` (each prompt run once, reply positions only).

Then a few real `ReplyGRPOTrainer` steps (new LoRA on the model, the heuristic reward + diversity
bonus) with their time split into generation / reward / other rollout work (reference log-probs) /
policy forward-backward. Not a test: prints numbers, asserts nothing.

    python benchmarks/grpo_rollout.py                 # models/base if present, else the packaged SmolLM2
    python benchmarks/grpo_rollout.py --tiny          # tiny random model: a quick smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from trl.trainer.utils import add_fused_lm_head

from replyrl.cli import setup_logging
from replyrl.configs.encoder import EncoderConfig
from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.loader import load_section
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.reward import RewardConfig
from replyrl.io import read_jsonl
from replyrl.models.base import PACKAGED_SMOLLM2, export_base, load_base
from replyrl.models.encoder import load_encoder, resolve_encoder
from replyrl.models.precision import describe_machine, precision_kwargs
from replyrl.models.shared_prefix import add_shared_prefix_forward
from replyrl.prompts import build_prompts
from replyrl.sampling import SamplingConfig, eos_token_ids, sample_token_ids
from replyrl.training import grpo_trainer
from replyrl.training.grpo import phase2_dataset
from replyrl.training.grpo_rewards import build_reward_funcs, reward_weights
from replyrl.training.grpo_trainer import build_trainer

logger = logging.getLogger("grpo_rollout")
REPO = Path(__file__).resolve().parent.parent


def model_folder(args: argparse.Namespace, tmp: Path) -> Path:
    if args.tiny:
        sys.path.insert(0, str(REPO / "tests"))  # the test suite's tiny-model builder, reused as is
        from conftest import build_tiny_base

        return build_tiny_base(tmp / "tiny")
    if Path(args.model).exists():
        return Path(args.model)
    logger.info("%s not found: exporting the packaged SmolLM2-135M-Instruct to a temporary folder", args.model)
    export_base(PACKAGED_SMOLLM2, tmp / "base")
    return tmp / "base"


def benchmark_parser(doc: str, data: str) -> argparse.ArgumentParser:
    """The arguments every benchmark here takes: which model, params file and data."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/base", help="Base model folder.")
    parser.add_argument("--tiny", action="store_true", help="Use a tiny random model instead.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default=data)
    return parser


def completion_logps(model, sequences: torch.Tensor, attention: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """Per-token log-probs of the generated part (what GRPO needs from a rollout besides the text)."""
    logits = model(input_ids=sequences, attention_mask=attention).logits[:, prompt_len - 1 : -1]
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, sequences[:, prompt_len:, None]).squeeze(-1)


def generated_tokens(sequences: torch.Tensor, prompt_len: int, eos_id: int) -> int:
    """Tokens up to and including the first EOS of each row (padding after it is not work done)."""
    completions = sequences[:, prompt_len:]
    is_eos = completions == eos_id
    lengths = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, torch.tensor(completions.shape[1]))
    return int(lengths.sum())


@torch.no_grad()
def rollout_per_reply(model, tokenizer, prompts: list[str], group: int, gen_kwargs: dict) -> int:
    tokens = 0
    for prompt in prompts:
        enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        for _ in range(group):
            seq = model.generate(**enc, **gen_kwargs)
            completion_logps(model, seq, torch.ones_like(seq), enc["input_ids"].shape[1])
            tokens += generated_tokens(seq, enc["input_ids"].shape[1], tokenizer.eos_token_id)
    return tokens


@torch.no_grad()
def rollout_batched(model, tokenizer, prompts: list[str], group: int, gen_kwargs: dict) -> int:
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    seq = model.generate(**enc, num_return_sequences=group, **gen_kwargs)
    prompt_mask = enc["attention_mask"].repeat_interleave(group, 0)
    attention = torch.cat([prompt_mask, torch.ones_like(seq[:, prompt_mask.shape[1] :])], dim=1)
    completion_logps(model, seq, attention, prompt_mask.shape[1])
    return generated_tokens(seq, prompt_mask.shape[1], tokenizer.eos_token_id)


@torch.no_grad()
def rollout_sampler(model, tokenizer, prompts: list[str], group: int, gen_kwargs: dict) -> int:
    sampling = SamplingConfig(num_samples=group, temperature=gen_kwargs["temperature"], top_p=gen_kwargs["top_p"],
                              top_k=gen_kwargs["top_k"], max_new_tokens=gen_kwargs["max_new_tokens"])
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    completions = sample_token_ids(model, prompt_ids, sampling, eos_token_ids(model, tokenizer), tokenizer.pad_token_id)
    group_prompts = [p for p in prompt_ids for _ in range(group)]
    batch = tokenizer.pad({"input_ids": [p + c for p, c in zip(group_prompts, completions)]}, padding_side="right",
                          return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    for row, prompt in enumerate(group_prompts):
        labels[row, : len(prompt)] = -100
    model(**batch, labels=labels, fused_lm_head=True)  # the batched log-prob pass, as the trainer runs it
    return sum(len(c) for c in completions)


def timed(totals: dict[str, float], name: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - start

    return wrapper


def step_split(model_dir: Path, rows: list[dict], config: GRPOStageConfig, args: argparse.Namespace, tmp: Path) -> None:
    reward_config = load_section(RewardConfig, "reward", args.params)
    encoder = load_encoder(args.encoder if Path(args.encoder).exists() else resolve_encoder(EncoderConfig().model))
    model, tokenizer = load_base(model_dir)
    dataset = phase2_dataset(rows, tokenizer, load_section(PromptConfig, "prompt", args.params))
    totals: dict[str, float] = defaultdict(float)
    weights = reward_weights(config)
    funcs = build_reward_funcs(list(weights), reward_config, encoder, args.reward_model)
    funcs = [timed(totals, "reward", f) for f in funcs]
    trainer = build_trainer(config, model, tokenizer, dataset, funcs, list(weights.values()), tmp / "ckpt", seed=0)
    trainer.model.generate = timed(totals, "generation", trainer.model.generate)  # TRL's paths, if configured
    grpo_trainer.sample_token_ids = timed(totals, "generation", grpo_trainer.sample_token_ids)
    trainer._generate_and_score_completions = timed(totals, "rollout", trainer._generate_and_score_completions)
    start = time.perf_counter()
    trainer.train()
    total = (time.perf_counter() - start) / config.max_steps
    parts = {k: v / config.max_steps for k, v in totals.items()}
    other_rollout = parts["rollout"] - parts["generation"] - parts["reward"]
    print(f"\nGRPO step on {describe_machine()} ({config.prompts_per_step} prompts x {config.num_generations}, {config.max_completion_length} "
          f"new tokens, bf16={trainer.args.bf16}), mean of {config.max_steps} steps: {total:.2f} s")
    for name, value in [("generation", parts["generation"]), ("reward (+ diversity)", parts["reward"]),
                        ("reference log-probs + rollout bookkeeping", other_rollout),
                        ("policy forward-backward + optimizer", total - parts["rollout"])]:
        print(f"  {name:<42} {value:6.2f} s  {100 * value / total:5.1f}%")


def main() -> None:
    parser = benchmark_parser(__doc__, data="data/processed/phases/training_data_phase2_grpo.jsonl")
    parser.add_argument("--encoder", default="models/encoder")
    parser.add_argument("--reward-model", default="models/reward_model")
    parser.add_argument("--prompts", type=int, help="Prompts per rollout batch (default: grpo.prompts_per_step).")
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps timed for the split (0 = skip).")
    parser.add_argument("--repeats", type=int, default=2, help="Timed repeats of each rollout variant.")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice). On a CPU shared "
                        "with other jobs, 1 avoids OpenMP oversubscription, which can slow generation 5x.")
    args = parser.parse_args()
    setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = load_section(GRPOStageConfig, "grpo", args.params)
    rows = read_jsonl(args.data) if Path(args.data).exists() else [
        {"tweet_id": i, "tweet": f"Just tried the new coffee place downtown, number {i}. Thoughts?"} for i in range(64)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model_folder(args, Path(tmp))
        model, tokenizer = load_base(model_dir)
        model.eval()
        # (c)'s log-prob pass, as in the trainer; (a) and (b) call the model without `fused_lm_head`,
        # which is the model's own forward.
        add_fused_lm_head(model, temperature=config.temperature)
        add_shared_prefix_forward(model, temperature=config.temperature)
        prompt_config = load_section(PromptConfig, "prompt", args.params)
        tweets = list(dict.fromkeys(row["tweet"] for row in rows))[: args.prompts or config.prompts_per_step]
        prompts = build_prompts(tokenizer, tweets, prompt_config)
        gen_kwargs = dict(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=0,
                          max_new_tokens=config.max_completion_length, pad_token_id=tokenizer.pad_token_id)
        g = config.num_generations
        print(f"{describe_machine()}; model {model_dir} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params), "
              f"{len(prompts)} prompts x {g} replies, <= {config.max_completion_length} new tokens, "
              f"T={config.temperature}, top_p={config.top_p}, {torch.get_num_threads()} threads")
        rollout_batched(model, tokenizer, prompts[:1], g, {**gen_kwargs, "max_new_tokens": 4})  # warm-up
        variants = [("(a) original: per-reply generate + log-probs, fp32", rollout_per_reply, torch.float32),
                    ("(b) TRL stock: one batched generate + log-probs, fp32", rollout_batched, torch.float32),
                    ("(c) ours: replyrl.sampling + log-probs, fp32", rollout_sampler, torch.float32)]
        if precision_kwargs(config.bf16)["bf16"]:  # the stage then holds the weights in bf16 (see build_trainer)
            variants.append(("(c) ours, bf16 weights (as the stage runs here)", rollout_sampler, torch.bfloat16))
        results = {}
        for name, fn, dtype in variants:
            model.to(dtype)
            tokens, seconds = 0, 0.0
            for _ in range(args.repeats):
                start = time.perf_counter()
                tokens += fn(model, tokenizer, prompts, g, gen_kwargs)
                seconds += time.perf_counter() - start
            results[name] = tokens / seconds
            print(f"{name:<52} {tokens / args.repeats:6.0f} tokens in {seconds / args.repeats:6.1f} s: "
                  f"{tokens / seconds:6.1f} tokens/s ({results[name] / next(iter(results.values())):.1f}x)")
        print(f"speed-up of ours over the original: {max(results.values()) / next(iter(results.values())):.1f}x "
              "(goal: >= 10x)")
        if args.steps:
            step_config = dataclasses.replace(config, max_steps=args.steps, save_steps=10**6, sample_every=10**6)
            step_split(model_dir, rows, step_config, args, Path(tmp))


if __name__ == "__main__":
    main()
