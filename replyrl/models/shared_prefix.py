"""Training forwards that run each shared prompt prefix once: TRL's fused-LM-head forward, made cheaper.

Every training forward of TRL's trainers (SFT's cross-entropy, GRPO's policy and reference log-probs,
the polychromic set term) is ``model(input_ids, attention_mask, labels, fused_lm_head=True)``: the
backbone over every token of every row, then the LM head. Two kinds of work in it are wasted:

* **Shared prefixes.** A GRPO batch holds each prompt once per group member, a polychromic set its
  prompt once per reply, and every SFT row starts with the same chat-template header (system turn
  and instruction, 35 of its ~63 prompt tokens). Causal attention means a prefix's keys and values
  do not depend on what follows, so the prefix common to all rows runs once (batch 1), each distinct
  prompt once, and only the rest runs per row, reading the shared keys/values from a cache. The
  gradient flows through the cache to the LoRA weights of the shared part, summed over the rows that
  share it, exactly as in the full forward.
* **Prompt logits.** Off CUDA/XPU, TRL's fused head scores every position, prompt included (its
  compact path is for Triton devices); here the head runs on the labelled positions only.

The result equals TRL's forward up to float rounding (a test checks log-probs and LoRA gradients).
Two differences, neither in expectation: dropout draws one mask for a shared prefix instead of one
per row (more variance in SFT with `lora_dropout`; GRPO runs without dropout), and sums run in another
order. Calls this does not cover go to TRL's forward unchanged: no labels (in GRPO, a batch whose every
reply was cut at max_completion_length and masked by `mask_truncated_completions`), multimodal inputs,
activation checkpointing, and models or setups where a split forward is not the same computation or is
untested (MoE router losses, logit scaling/softcapping, linear-attention caches, dynamic RoPE,
non-causal or chunked attention, FSDP and DeepSpeed).

TRL's GRPO loss switches (`grpo.loss_type`, `epsilon_high`, `importance_sampling_level`,
`top_entropy_quantile`, the entropy bonus, ...) act on the log-probs, entropies and completion masks
this returns, and a masked (truncated) completion is only a row with zeros in its attention mask and
no labels; so each works through the split forward (tests/training/test_grpo_switches.py).
"""

from __future__ import annotations

import functools
import logging
import types
from contextlib import nullcontext
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import DistributedType, is_peft_model
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer
from trl.kernels.chunked_logprob import ChunkedLogProbFunction
from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE, FusedCausalLMOutput

from replyrl.models.lm_head import logit_transform

# The inputs a text decoder's training forward needs (and PEFT's defaults, ignored: the outputs are TRL's);
# any other set one (images, router logits, packed sequences' cu_seqlens, attentions) goes to TRL's forward.
_HANDLED = {"input_ids", "attention_mask", "position_ids", "use_cache", "return_dict"}

logger = logging.getLogger(__name__)


def _unshareable(model: PreTrainedModel) -> str | None:
    """Why a split forward would not be TRL's computation for ``model`` (or is untested), else None."""
    config = model.config.get_text_config()
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    transform = logit_transform(model)
    if transform is not None:
        return transform
    if getattr(config, "output_router_logits", False):
        return "an MoE router loss"
    if rope.get("rope_type") in ("dynamic", "longrope"):  # frequencies depend on each call's longest position
        return f"{rope['rope_type']} RoPE"
    if not getattr(config, "is_causal", True) or getattr(config, "attention_chunk_size", None):
        return "non-causal or chunked attention"
    if not all(type(layer) in (DynamicLayer, DynamicSlidingWindowLayer) for layer in DynamicCache(config=model.config).layers):
        return "cache layers that update in place (linear attention)"
    if PartialState().distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return "FSDP/DeepSpeed (a layer called once per segment is untested under sharding)"
    return None


def add_shared_prefix_forward(
    model: PreTrainedModel,
    temperature: float = 1.0,
    cast_lm_head_to_fp32: bool = False,
    outputs: tuple[str, ...] = ("log_probs",),
) -> None:
    """Patch ``model`` (a causal LM or its PEFT wrapper, which TRL's `add_fused_lm_head` has patched:
    call it after the trainer's ``__init__``) so its ``fused_lm_head=True`` calls share prefixes
    (module docstring).

    ``temperature``, ``cast_lm_head_to_fp32`` and ``outputs`` must be the values the trainer gave
    `add_fused_lm_head`: they are TRL's, with the same meaning.
    """
    if is_peft_model(model):
        model = model.get_base_model()  # where TRL patched the forward
    reason = _unshareable(model)
    if reason is not None:
        logger.info("training forwards: TRL's (no shared prefixes with %s)", reason)
        return
    fused_forward = model.forward

    @functools.wraps(type(model).forward)  # `generate` checks its kwargs against this signature
    def forward(self, *args: Any, fused_lm_head: bool = False, labels: torch.Tensor | None = None,
                num_items_in_batch: Any = None, **kwargs: Any) -> Any:
        backbone = self.base_model
        given = {name for name, value in kwargs.items() if value is not None and value is not False}
        handled = (fused_lm_head and not args and labels is not None and given <= _HANDLED
                   and kwargs.get("attention_mask") is not None and not self.is_activation_checkpointing)
        positions = kwargs.get("position_ids")
        if handled and positions is not None:
            positions = positions.expand_as(kwargs["input_ids"])
        plan = _plan(kwargs["input_ids"], kwargs["attention_mask"], positions, labels) if handled else None
        if plan is None:
            return fused_forward(*args, fused_lm_head=fused_lm_head, labels=labels,
                                 num_items_in_batch=num_items_in_batch, **kwargs)
        hidden = _shared_prefix_hidden(backbone, kwargs["input_ids"], kwargs["attention_mask"], positions, plan)
        return _score(self, hidden, labels[:, plan.split + 1:], labels.shape, temperature, cast_lm_head_to_fp32,
                      outputs, num_items_in_batch)

    model.forward = types.MethodType(forward, model)


class _Plan:
    """How a batch splits: positions ``[0, common)`` shared by every row, ``[common, split)`` by the rows
    of each distinct prompt (``unique`` rows; ``row_of[i]`` is row i's), ``[split, L)`` run per row."""

    def __init__(self, common: int, split: int, unique: torch.Tensor, row_of: torch.Tensor):
        self.common, self.split, self.unique, self.row_of = common, split, unique, row_of


def _plan(input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor | None,
          labels: torch.Tensor) -> _Plan | None:
    """The split of a batch, or None when nothing is shared (then TRL's forward is as cheap). Rows share
    a prefix when its tokens, mask and (given) positions are all equal."""
    labelled = (labels[:, 1:] != -100).any(dim=0)
    if not bool(labelled.any()):
        return None
    # Hidden states are needed from the position before the first labelled token of any row on.
    split = int(labelled.int().argmax())
    if split == 0:
        return None
    parts = [input_ids, attention_mask] + ([] if position_ids is None else [position_ids])
    prefix = torch.stack([part[:, :split].to(input_ids.dtype) for part in parts], dim=1)  # rows x parts x split
    unique, row_of = torch.unique(prefix.flatten(1), dim=0, return_inverse=True)
    same = (unique.view(len(unique), len(parts), split) == unique[:1].view(1, len(parts), split)).all(dim=(0, 1))
    common = split if bool(same.all()) else int((~same).int().argmax())
    if common == 0 and len(unique) == len(input_ids):
        return None
    return _Plan(common, split, _first_rows(row_of), row_of)


def _first_rows(row_of: torch.Tensor) -> torch.Tensor:
    """The first row of each distinct prompt, in the order `torch.unique` numbered them."""
    first = torch.full((int(row_of.max()) + 1,), len(row_of), dtype=torch.long, device=row_of.device)
    return first.scatter_reduce(0, row_of, torch.arange(len(row_of), device=row_of.device), reduce="amin")


def _shared_prefix_hidden(
    backbone: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
    position_ids: torch.Tensor | None, plan: _Plan,
) -> torch.Tensor:
    """Last hidden states of positions ``[split, L)`` of every row, the prefix run once per sharer.

    Without ``position_ids`` each segment gets the backbone's own default after a cache, which is what
    it gives the whole batch at once (as in generation)."""
    cache = DynamicCache(config=backbone.config)

    def run(rows: torch.Tensor, start: int, end: int) -> torch.Tensor:
        positions = None if position_ids is None else position_ids[rows, start:end]
        return backbone(input_ids=input_ids[rows, start:end], attention_mask=attention_mask[rows, :end],
                        position_ids=positions, cache=cache, use_cache=True).last_hidden_state

    if plan.common > 0:
        run(plan.unique[:1], 0, plan.common)
        cache.reorder_cache(torch.zeros(len(plan.unique), dtype=torch.long, device=input_ids.device))
    if plan.split > plan.common:
        run(plan.unique, plan.common, plan.split)
    cache.reorder_cache(plan.row_of)
    return run(torch.arange(len(input_ids), device=input_ids.device), plan.split, input_ids.size(1))


def _score(
    model: PreTrainedModel, hidden: torch.Tensor, labels: torch.Tensor, shape: torch.Size, temperature: float,
    cast_lm_head_to_fp32: bool, outputs: tuple[str, ...], num_items_in_batch: Any,
) -> FusedCausalLMOutput:
    """TRL's fused-head output (per-token fields of the full, shifted ``shape``), computed on the labelled
    positions only. ``hidden`` holds positions ``[split, L)``; ``labels`` the tokens they predict."""
    lm_head = model.get_output_embeddings()
    # A model split across devices (`device_map`) can end on another device than its head.
    hidden, labels = hidden[:, :-1].to(lm_head.weight.device), labels.to(lm_head.weight.device)
    mask = labels != -100
    selected = hidden[mask]
    autocast = nullcontext()
    if cast_lm_head_to_fp32:
        selected = selected.float()
        autocast = torch.autocast(selected.device.type, enabled=False)
    with autocast:
        fields = ChunkedLogProbFunction.apply(selected, lm_head.weight, lm_head.bias, labels[mask], temperature,
                                              _CHUNKED_LOGPROB_CHUNK_SIZE, None, 1.0, outputs)
    full_mask = torch.zeros(shape[0], shape[1] - 1, dtype=torch.bool, device=mask.device)
    full_mask[:, shape[1] - 1 - mask.size(1):] = mask
    # masked_scatter keeps a batch without labelled tokens connected to the graph (a zero gradient).
    log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1 = (
        None if x is None else x.new_zeros(full_mask.shape).masked_scatter(full_mask, x) for x in fields)
    count = full_mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs, entropy=entropy,
                               log_sum_sq_probs=log_sum_sq_probs, mean_logits=mean_logits, is_top1=is_top1,
                               label_mask=full_mask, aux_loss=None)
