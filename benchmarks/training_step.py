"""Benchmark a training step's forward-backward: TRL's fused-head forward vs `replyrl.models.shared_prefix`.

Same LoRA model (the sft/grpo params' adapter), same batches, both orders interleaved:

* **SFT**: batches of `sft.train.per_device_train_batch_size` phase-1 rows laid out by TRL's collator
  (prompt masked, reply + EOS trained): forward + backward + optimiser step.
* **GRPO**: `grpo.prompts_per_step` phase-2 prompts x `grpo.num_generations` replies (left-padded
  prompts, `grpo.max_completion_length` reply tokens): the policy's forward + backward and the
  reference's no-grad forward (adapter disabled), as a GRPO step runs them.

Prints seconds per step for each and their ratio, on the machine named in the first line. Not a test:
prints numbers, asserts nothing.

    python benchmarks/training_step.py            # models/base if present, else the packaged SmolLM2
    python benchmarks/training_step.py --tiny     # tiny random model: a quick smoke run
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from trl.trainer.utils import add_fused_lm_head

from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.loader import load_section, to_dict
from replyrl.configs.prompt import PromptConfig
from replyrl.configs.sft import SFTStageConfig
from replyrl.io import read_jsonl
from replyrl.models.base import PACKAGED_SMOLLM2, export_base, load_base
from replyrl.models.precision import describe_machine
from replyrl.models.shared_prefix import add_shared_prefix_forward
from replyrl.prompts import build_prompt

REPO = Path(__file__).resolve().parent.parent
PHASES = REPO / "data/processed/phases"


def model_folder(tiny: bool, tmp: Path) -> Path:
    if tiny:
        sys.path.insert(0, str(REPO / "tests"))  # the test suite's tiny-model builder, reused as is
        from conftest import build_tiny_base

        return build_tiny_base(tmp / "tiny")
    if (REPO / "models/base/config.json").exists():
        return REPO / "models/base"
    export_base(PACKAGED_SMOLLM2, tmp / "base")
    return tmp / "base"


def rows(name: str, count: int, seed: int = 0) -> list[dict]:
    path = PHASES / name
    data = read_jsonl(path) if path.exists() else [{"tweet": f"tweet number {i} about the weather today",
                                                   "reply": f"reply {i}, it is sunny"} for i in range(count)]
    return random.Random(seed).sample(data, min(count, len(data)))


def pad(sequences: list[list[int]], value: int, left: bool = False) -> torch.Tensor:
    width = max(map(len, sequences))
    return torch.tensor([[value] * (width - len(s)) + s if left else s + [value] * (width - len(s)) for s in sequences])


def sft_batches(tokenizer, prompt: PromptConfig, batch: int, steps: int) -> list[dict[str, torch.Tensor]]:
    """Right-padded (prompt + reply + EOS) rows, prompt masked, as TRL's collator makes them."""
    out = []
    data = rows("training_data_phase1_sft.jsonl", batch * steps)
    for start in range(0, len(data) - batch + 1, batch):
        ids, labels = [], []
        for row in data[start : start + batch]:
            p = tokenizer(build_prompt(tokenizer, row["tweet"], prompt), add_special_tokens=False)["input_ids"]
            r = tokenizer(row["reply"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            ids.append(p + r)
            labels.append([-100] * len(p) + r)
        input_ids = pad(ids, tokenizer.pad_token_id)
        out.append({"input_ids": input_ids, "attention_mask": pad([[1] * len(i) for i in ids], 0),
                    "labels": pad(labels, -100)})
    return out


def grpo_batches(tokenizer, prompt: PromptConfig, config: GRPOStageConfig, steps: int) -> list[dict[str, torch.Tensor]]:
    """Left-padded prompts, each repeated for its group, + ``max_completion_length`` reply tokens (right-padded)."""
    out = []
    data = rows("training_data_phase2_grpo.jsonl", config.prompts_per_step * steps * 2)
    for step in range(steps):
        group = data[step * config.prompts_per_step * 2 : (step + 1) * config.prompts_per_step * 2]
        prompts = [tokenizer(build_prompt(tokenizer, r["tweet"], prompt), add_special_tokens=False)["input_ids"]
                   for r in group[: config.prompts_per_step]]
        replies = [tokenizer(r["reply"], add_special_tokens=False)["input_ids"] for r in group]
        prompt_ids = pad([p for p in prompts for _ in range(config.num_generations)], tokenizer.pad_token_id, left=True)
        prompt_mask = (prompt_ids != tokenizer.pad_token_id).long()
        completions = [(replies[i % len(replies)] * 4)[: config.max_completion_length]
                       for i in range(len(prompt_ids))]
        completion_ids = pad(completions, tokenizer.pad_token_id)
        completion_mask = pad([[1] * len(c) for c in completions], 0)
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        mask = torch.cat([prompt_mask, completion_mask], dim=1)
        labels = input_ids.masked_fill(mask == 0, -100)
        labels[:, : prompt_ids.size(1)] = -100
        out.append({"input_ids": input_ids, "attention_mask": mask, "labels": labels})
    return out


def timed(step: Callable[[dict[str, torch.Tensor]], None], batches: list[dict[str, torch.Tensor]]) -> list[float]:
    times = []
    for batch in batches:
        start = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="Tiny random model (smoke run).")
    parser.add_argument("--steps", type=int, default=4, help="Batches per variant and round.")
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved rounds of both variants.")
    args = parser.parse_args()
    params = REPO / "params.yaml"
    sft = load_section(SFTStageConfig, "sft", params)
    grpo = load_section(GRPOStageConfig, "grpo", params)
    prompt = load_section(PromptConfig, "prompt", params)
    print(describe_machine())
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_base(model_folder(args.tiny, Path(tmp)))
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    lora = {k: v for k, v in to_dict(sft.lora).items() if k != "lora_dropout"}  # dropout off: same work both ways
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))
    model.train()
    base = model.get_base_model()
    trl_forward = base.forward
    add_shared_prefix_forward(model, outputs=("log_probs", "entropy"))
    variants = {"TRL fused head": trl_forward, "shared prefix": base.forward}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)

    def sft_step(batch: dict[str, torch.Tensor]) -> None:
        model(**batch, fused_lm_head=True).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    def grpo_step(batch: dict[str, torch.Tensor]) -> None:
        with torch.no_grad(), model.disable_adapter():
            model(**batch, fused_lm_head=True)
        sft_step(batch)

    cases = {
        f"SFT step ({sft.train.per_device_train_batch_size} rows)":
            (sft_step, sft_batches(tokenizer, prompt, sft.train.per_device_train_batch_size, args.steps)),
        f"GRPO step ({grpo.prompts_per_step} prompts x {grpo.num_generations}, reference + policy)":
            (grpo_step, grpo_batches(tokenizer, prompt, grpo, args.steps)),
    }
    for name, (step, batches) in cases.items():
        tokens = sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)
        times: dict[str, list[float]] = {v: [] for v in variants}
        step(batches[0])  # warm-up
        for _ in range(args.rounds):
            for variant, forward in variants.items():
                base.forward = forward
                times[variant] += timed(step, batches)
        median = {v: statistics.median(t) for v, t in times.items()}
        print(f"\n{name}, {tokens:.0f} tokens per batch:")
        for variant, seconds in median.items():
            print(f"  {variant:16s} {seconds:6.2f} s per step (median of {len(times[variant])})")
        print(f"  speed-up: {median['TRL fused head'] / median['shared prefix']:.2f}x")


if __name__ == "__main__":
    main()
