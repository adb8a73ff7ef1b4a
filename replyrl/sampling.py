"""The one sampler: every place that samples replies (the generate stage, `suggest`, GRPO rollouts,
polychromic sets) draws them here.

It draws from exactly the distribution transformers' `generate` samples with the same temperature,
top-k and top-p (a test checks it with a chi-square test), and is faster on a CPU for two reasons
(`benchmarks/sampling.py` measures both):

* **Shared prompts.** `generate(num_return_sequences=n)` copies each prompt n times *before* the
  prefill, so a prompt's forward pass is computed n times over. Here each distinct prompt is run once
  and its KV cache copied to its n rows; GRPO's repeated prompts (one row per group member) are
  recognised the same way.
* **Nucleus without a full sort.** transformers sorts the whole vocabulary (49k tokens for SmolLM2)
  for every row at every step and then draws with `multinomial` over all of it. Here top-p works on
  the `candidates` most likely tokens and draws among those; a row whose nucleus does not fit in
  them (a flat distribution) is redrawn from 16 times as many, and so on up to the full sort.
* **The head's matrix on the left.** On a CPU, ``W @ h.T`` runs ~2x faster than ``h @ W.T`` (what
  `nn.Linear` computes) for a 49k x 576 head at a decoding batch of 8 and ~1.3x at 160, so the
  decoding step computes a plain head's logits itself (`replyrl.models.lm_head.plain_lm_head`).
* **Greedy rows in the sampled batch.** Decoding streams all weights once per step whatever the
  batch, so evaluation's greedy reply (``with_greedy``) is one more row per prompt of the sampled
  batch: ~10% on top of it, where a separate greedy pass of 16 rows cost 37% of the 160 sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StaticCache

from replyrl.models.lm_head import plain_lm_head

# Enough for the nucleus of almost every step of a tuned chat model at top_p <= 0.95 (a row that needs
# more is redrawn from NUCLEUS_WIDENING times as many, up to the full sort: speed, never the distribution).
NUCLEUS_CANDIDATES = 64
NUCLEUS_WIDENING = 16


@dataclass
class SamplingConfig:
    num_samples: int = 1
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    # 0 = no top-k cut, as GRPO samples (TRL's top_k=0); transformers' `generate` would otherwise apply
    # the model's generation_config default (50), silently narrowing every sampled distribution.
    top_k: int = 0
    max_new_tokens: int = 48
    # One more row per prompt, decoded greedily in the same batch (after its num_samples sampled rows).
    with_greedy: bool = False

    @property
    def rows_per_prompt(self) -> int:
        return self.num_samples + int(self.with_greedy)


def sample_next(
    logits: torch.Tensor,
    sampling: SamplingConfig,
    candidates: int = NUCLEUS_CANDIDATES,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row of ``logits`` (rows x vocab), as transformers' `generate` would draw it.

    transformers applies temperature, then top-k, then top-p: a token is kept when the probability
    mass of the tokens more likely than it is below ``top_p`` (so the most likely token always is),
    and the draw is from the kept tokens, renormalised. Greedy (``do_sample=False``) is the argmax.
    """
    if not sampling.do_sample:
        return logits.argmax(dim=-1)
    scores = logits.float() / sampling.temperature
    vocab = scores.size(-1)
    if 0 < sampling.top_k < vocab:
        # As transformers' top-k: every token scoring at least the k-th score stays (ties at the cut too).
        kth = scores.topk(sampling.top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p >= 1.0:
        return torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(-1)
    log_norm = scores.logsumexp(dim=-1, keepdim=True)
    tokens = torch.empty(len(scores), dtype=torch.long, device=scores.device)
    todo = torch.arange(len(scores), device=scores.device)
    pending, pending_norm, width = scores, log_norm, candidates
    while True:
        width = min(width, vocab)
        top_scores, top_ids = pending.topk(width, dim=-1)  # sorted, most likely first
        probs = (top_scores - pending_norm).exp()
        keep = probs.cumsum(dim=-1) - probs < sampling.top_p
        # The nucleus fits in the candidates when they hold at least top_p of the mass (or are the whole
        # vocabulary); a row where it does not is redrawn from more of them.
        fits = (probs.sum(dim=-1) >= sampling.top_p) | (width == vocab)
        choice = torch.multinomial(probs * keep, 1, generator=generator)
        tokens[todo[fits]] = top_ids.gather(-1, choice)[fits, 0]
        if bool(fits.all()):
            return tokens
        todo, width = todo[~fits], width * NUCLEUS_WIDENING
        pending, pending_norm = scores[todo], log_norm[todo]


@torch.no_grad()
def sample_token_ids(
    model: PreTrainedModel,
    prompt_ids: Sequence[Sequence[int]],
    sampling: SamplingConfig,
    eos_token_ids: Sequence[int],
    pad_token_id: int,
) -> list[list[int]]:
    """``sampling.num_samples`` completions (token ids, up to and including the first EOS) for each
    prompt, prompt-major: row ``i * rows_per_prompt + j`` is prompt i's j-th sample, and with
    ``sampling.with_greedy`` row ``i * rows_per_prompt + num_samples`` its greedy completion.

    Identical prompts (GRPO passes each prompt once per group member) are prefilled once. The model is
    used in whatever train/eval mode it is in.
    """
    device = next(model.parameters()).device
    per_prompt = sampling.rows_per_prompt
    rows = [tuple(ids) for ids in prompt_ids for _ in range(per_prompt)]
    if sampling.max_new_tokens <= 0:
        return [[] for _ in rows]
    unique = list(dict.fromkeys(rows))
    index = {prompt: i for i, prompt in enumerate(unique)}
    row_of = torch.tensor([index[r] for r in rows], device=device)
    greedy = ((torch.arange(len(rows), device=device) % per_prompt) >= sampling.num_samples).nonzero().squeeze(-1)
    width = max(len(ids) for ids in unique)
    ids = torch.full((len(unique), width), pad_token_id, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for i, prompt in enumerate(unique):  # left padding, as generate
        ids[i, width - len(prompt):] = torch.tensor(prompt, device=device)
        mask[i, width - len(prompt):] = 1
    positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)

    # Preallocated for prompt + reply: a growing cache re-copies every layer's keys and values at each
    # step, which took ~30% of a CPU sampling run (issue 13).
    cache = StaticCache(config=model.config, max_cache_len=width + sampling.max_new_tokens)
    head = plain_lm_head(model) if device.type == "cpu" else None
    logits = _last_logits(model, head, input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache)
    cache.reorder_cache(row_of)  # each distinct prompt's cache, copied to its rows
    logits, mask, position = logits[row_of], mask[row_of], positions[row_of, -1:]

    eos = torch.tensor(list(eos_token_ids), device=device)
    done = torch.zeros(len(rows), dtype=torch.bool, device=device)
    new_tokens: list[torch.Tensor] = []
    for step in range(sampling.max_new_tokens):
        token = sample_next(logits, sampling)
        token[greedy] = logits[greedy].argmax(dim=-1)
        token = token.masked_fill(done, pad_token_id)
        new_tokens.append(token)
        done |= torch.isin(token, eos)
        if bool(done.all()) or step == sampling.max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
        position = position + 1
        logits = _last_logits(model, head, input_ids=token[:, None], attention_mask=mask, position_ids=position,
                              cache=cache)
    out = torch.stack(new_tokens, dim=1).tolist()
    return [_until_eos(seq, set(eos_token_ids)) for seq in out]


def _last_logits(model: PreTrainedModel, head: tuple[torch.nn.Module, torch.Tensor] | None,
                 **inputs: torch.Tensor | StaticCache) -> torch.Tensor:
    """The last position's logits (rows x vocab) of a forward with the cache; with a plain ``head``
    (`plain_lm_head`) computed as ``W @ h.T`` (module docstring)."""
    if head is None:
        return model(**inputs, use_cache=True, logits_to_keep=1).logits[:, -1]
    backbone, weight = head
    hidden = backbone(**inputs, use_cache=True).last_hidden_state[:, -1]
    return (weight @ hidden.T).T


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The tokens that end a reply: the model's generation config's (one id or several, as `generate`
    stops), else the tokenizer's EOS."""
    eos = model.generation_config.eos_token_id
    return [eos] if isinstance(eos, int) else list(eos or [tokenizer.eos_token_id])


def _until_eos(tokens: list[int], eos: set[int]) -> list[int]:
    for i, token in enumerate(tokens):
        if token in eos:
            return tokens[: i + 1]
    return tokens


def generate_replies(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    sampling: SamplingConfig,
    batch_size: int = 8,
    progress: bool = False,
) -> list[list[str]]:
    """Return, for each prompt, ``sampling.num_samples`` decoded replies (special tokens stripped), and
    with ``sampling.with_greedy`` its greedy reply after them.

    ``batch_size`` prompts (x ``rows_per_prompt`` rows) are sampled together, in eval mode (no dropout).
    A `VLLMPolicy` (GPU) samples all prompts in one call of its engine instead.
    """
    from tqdm.auto import tqdm

    from replyrl.models.vllm_policy import VLLMPolicy

    if isinstance(model, VLLMPolicy):
        out = model.sample(prompts, sampling.num_samples, sampling.do_sample, sampling.temperature, sampling.top_p,
                           sampling.top_k, sampling.max_new_tokens)
        if sampling.with_greedy:
            greedy = model.sample(prompts, 1, False, 1.0, 1.0, 0, sampling.max_new_tokens)
            out = [replies + best for replies, best in zip(out, greedy)]
        return out

    was_training = model.training
    model.eval()
    eos_ids = eos_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    out: list[list[str]] = []
    starts = range(0, len(prompts), batch_size)
    try:
        for start in tqdm(starts, desc="generating", disable=not progress, unit="batch"):
            batch = list(prompts[start : start + batch_size])
            prompt_ids = tokenizer(batch, add_special_tokens=False)["input_ids"]
            completions = sample_token_ids(model, prompt_ids, sampling, eos_ids, pad_id)
            texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
            n = sampling.rows_per_prompt
            out.extend([t.strip() for t in texts[i * n : (i + 1) * n]] for i in range(len(batch)))
    finally:
        model.train(was_training)
    return out
