"""Polychromic SFT: cross-entropy plus a set-level diversity term that carries gradient.

Set-RL in the spirit of "Polychromic Objectives for Reinforcement Learning" (Hamid et al., 2025).
Every ``generation_steps`` optimiser steps, for up to ``max_generation_prompts`` prompts of the
micro-batch, the current policy samples a set S of ``num_generations`` replies (no grad). The set is
scored ``f(S) = mean(quality) × diversity(S)`` (diversity: mean pairwise cosine distance of encoder
embeddings) and each reply gets its leave-one-out contribution ``A_i = f(S) − f(S \\ {i})``. The loss is

    CE − λ · mean_i(A_i · log π(y_i | x))

with the gradient flowing through log π (REINFORCE on the set advantage). The original project
subtracted a diversity number computed under no_grad, a constant that left plain SFT; here a reply
that adds diversity gets its probability pushed up. Evaluation loss is CE only, so checkpoints are
compared like with like.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from trl import SFTConfig

from replyrl.configs.sft import PolychromicTermConfig
from replyrl.metrics.diversity import semantic_diversity
from replyrl.models.encoder import encode
from replyrl.sampling import SamplingConfig, eos_token_ids, sample_token_ids
from replyrl.training.sft_trainer import ReplySFTTrainer
from replyrl.training.set_advantages import set_score

QualityFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]
TWEET_COLUMN = "tweet"


@dataclass
class PolychromicSFTConfig(SFTConfig, PolychromicTermConfig):
    """`SFTConfig` plus the set-level term's fields (declared, with their help, in `replyrl.configs.sft`).

    The dataset needs a `tweet` column (the quality's input).
    """

    def __post_init__(self) -> None:
        super().__post_init__()  # TRL's checks; they do not chain on to the term's
        self.check_term()


def leave_one_out_advantages(quality: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """``A_i = f(S) − f(S \\ {i})``: how much reply ``i`` adds to the set's score.

    >>> emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # two identical replies, one different
    >>> a = leave_one_out_advantages(np.ones(3), emb)
    >>> bool(a[2] > 0 > a[0]) and bool(a[0] == a[1])
    True
    """
    full = set_score(quality, embeddings)
    keep = ~np.eye(len(quality), dtype=bool)
    return np.array([full - set_score(quality[k], embeddings[k]) for k in keep])


class _KeepTweets:
    """Collator wrapper that passes the raw tweets of a batch through, beside the tensors."""

    def __init__(self, collator: Callable[[list[dict[str, Any]]], dict[str, Any]]):
        self.collator = collator

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator([{k: v for k, v in ex.items() if k != TWEET_COLUMN} for ex in examples])
        batch[TWEET_COLUMN] = [ex[TWEET_COLUMN] for ex in examples]
        return batch


class PolychromicSFTTrainer(ReplySFTTrainer):
    """`ReplySFTTrainer` whose training loss adds the polychromic set-advantage term (see module doc).

    Args beyond `SFTTrainer`'s:
        encoder: sentence encoder whose embeddings define a set's diversity.
        quality_fn: ``quality_fn(tweets, replies) -> np.ndarray``; None scores every reply 1.
        encoder_batch_size: sentences per encoder call.
    """

    _tag_names = ["trl", "sft", "polychromic"]

    def __init__(
        self,
        *args: Any,
        encoder: SentenceTransformer,
        quality_fn: QualityFn | None = None,
        encoder_batch_size: int = 64,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, PolychromicSFTConfig):
            raise TypeError(f"PolychromicSFTTrainer needs a PolychromicSFTConfig, got {type(self.args).__name__}")
        self.encoder = encoder.to(self.accelerator.device)
        self.quality_fn = quality_fn
        self.encoder_batch_size = encoder_batch_size
        self._pair_collator = self.data_collator  # pads (input_ids, labels) rows for the log-prob pass
        self.data_collator = _KeepTweets(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if TWEET_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, TWEET_COLUMN]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        tweets = inputs.pop(TWEET_COLUMN)
        result = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        if not model.training:
            return result
        loss = result[0] if return_outputs else result
        # Like TRL's MoE aux loss: with num_items_in_batch the CE is already a share of the accumulated
        # step's token mean, so the per-micro-batch set term is divided by the accumulation steps too.
        steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
        self._log_mean("ce_loss", loss.item() * steps)
        if self.state.global_step % self.args.generation_steps == 0:
            term = self._set_term(model, inputs, tweets)
            loss = loss + self.args.polychromic_coef * term / steps
        return (loss, result[1]) if return_outputs else loss

    def _set_term(self, model, inputs: dict[str, torch.Tensor], tweets: list[str]) -> torch.Tensor:
        """``−mean_i(A_i · log π(y_i | x))`` over the sampled sets, differentiable through log π."""
        args, n = self.args, self.args.num_generations
        count = min(args.max_generation_prompts, len(tweets))
        # The prompt of a row is everything before its first trained (label != -100) token.
        prompts = []
        for ids, labels in zip(inputs["input_ids"][:count], inputs["labels"][:count]):
            start = int((labels != -100).int().argmax())
            prompts.append(ids[:start].tolist())
        replies = self._sample(model, prompts)
        texts = [t.strip() for t in self._tokenizer.batch_decode(replies, skip_special_tokens=True)]

        set_tweets = [tweet for tweet in tweets[:count] for _ in range(n)]
        quality = np.ones(len(texts)) if self.quality_fn is None else np.asarray(self.quality_fn(set_tweets, texts), float)
        embeddings = encode(self.encoder, texts, self.encoder_batch_size)
        sets = [slice(i * n, (i + 1) * n) for i in range(count)]
        advantages = np.concatenate([leave_one_out_advantages(quality[s], embeddings[s]) for s in sets])

        # Re-score the sampled replies with grad, laid out like SFT rows (prompt masked, reply trained).
        rows = [
            {"input_ids": prompts[k // n] + reply, "labels": [-100] * len(prompts[k // n]) + reply}
            for k, reply in enumerate(replies)
        ]
        batch = self._prepare_inputs(self._pair_collator(rows))
        log_probs = model(**batch, fused_lm_head=True).log_probs.sum(dim=1)
        term = -(torch.as_tensor(advantages, dtype=log_probs.dtype, device=log_probs.device) * log_probs).mean()

        self._log_mean("polychromic/term", term.item())
        self._log_mean("polychromic/set_diversity", np.mean([semantic_diversity(embeddings[s]) for s in sets]))
        self._log_mean("polychromic/set_score", np.mean([set_score(quality[s], embeddings[s]) for s in sets]))
        self._log_mean("polychromic/quality", quality.mean())
        self._log_mean("polychromic/abs_advantage", np.abs(advantages).mean())
        return term

    def _log_mean(self, key: str, value: float) -> None:
        """Queue a train metric (averaged over processes now, over steps when TRL logs)."""
        value = torch.tensor(float(value), device=self.accelerator.device)
        self._metrics["train"][key].append(self.accelerator.gather_for_metrics(value).mean().item())

    def _sample(self, model, prompts: list[list[int]]) -> list[list[int]]:
        """``num_generations`` completions per prompt (row k belongs to prompt k // n), each up to and
        including its first EOS."""
        args = self.args
        unwrapped = self.accelerator.unwrap_model(model)
        sampling = SamplingConfig(num_samples=args.num_generations, temperature=args.temperature, top_p=args.top_p,
                                  max_new_tokens=args.max_completion_length)
        was_training = unwrapped.training
        unwrapped.eval()  # no LoRA dropout while sampling
        try:
            return sample_token_ids(unwrapped, prompts, sampling, eos_token_ids(unwrapped, self._tokenizer),
                                    self._tokenizer.pad_token_id)
        finally:
            unwrapped.train(was_training)
