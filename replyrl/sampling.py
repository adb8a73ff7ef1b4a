"""Batched sampling of replies: every prompt's n samples come from one `generate` call per batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class SamplingConfig:
    num_samples: int = 1
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    # 0 = no top-k cut, as GRPO samples (TRL's top_k=0); left unset, transformers would apply the
    # model's generation_config default (50), silently narrowing every sampled distribution.
    top_k: int = 0
    max_new_tokens: int = 48


@torch.no_grad()
def generate_replies(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    sampling: SamplingConfig,
    batch_size: int = 8,
    progress: bool = False,
) -> list[list[str]]:
    """Return, for each prompt, ``sampling.num_samples`` decoded replies (special tokens stripped).

    Prompts are left-padded and batched; each batch yields ``batch_size * num_samples`` sequences
    from a single `generate` call, which is what makes sampling n replies per prompt affordable.
    """
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    kwargs = dict(max_new_tokens=sampling.max_new_tokens, num_return_sequences=sampling.num_samples,
                  pad_token_id=tokenizer.pad_token_id)
    if sampling.do_sample:
        kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    out: list[list[str]] = []
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, desc="generating", disable=not progress, unit="batch"):
        batch = list(prompts[start : start + batch_size])
        enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        seqs = model.generate(**enc, **kwargs)
        texts = tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        n = sampling.num_samples
        out.extend([t.strip() for t in texts[i * n : (i + 1) * n]] for i in range(len(batch)))
    model.train(was_training)
    return out
