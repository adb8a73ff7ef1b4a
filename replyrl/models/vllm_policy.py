"""A policy folder served by vLLM for sampling on a GPU (the generate stage's `evaluate.vllm`).

vLLM loads plain checkpoints, so a policy made of adapters is merged (as `load_policy` merges it for
transformers) and saved to a temporary folder first. `replyrl.sampling.generate_replies` dispatches
to `VLLMPolicy.sample`, so every caller of the sampler takes it unchanged.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from replyrl.models.policy import load_policy


class VLLMPolicy:
    """``model_dir`` (base or adapter folder) in a vLLM engine seeded with ``seed``; needs a CUDA GPU and `vllm`."""

    training = False  # what `generate_replies` restores after sampling

    def __init__(self, model_dir: str | Path, dtype: torch.dtype, seed: int = 0,
                 gpu_memory_utilization: float = 0.5) -> None:
        from vllm import LLM

        model, self.tokenizer = load_policy(model_dir, dtype=dtype)
        self.dtype = dtype
        self._folder = tempfile.TemporaryDirectory(prefix="replyrl-vllm-")
        model.save_pretrained(self._folder.name)
        self.tokenizer.save_pretrained(self._folder.name)
        del model
        self.llm = LLM(model=self._folder.name, dtype=str(dtype).removeprefix("torch."), seed=seed,
                       gpu_memory_utilization=gpu_memory_utilization)

    def sample(self, prompts: Sequence[str], num_samples: int, do_sample: bool, temperature: float, top_p: float,
               top_k: int, max_new_tokens: int) -> list[list[str]]:
        """``num_samples`` replies per prompt, with the sampling semantics of `replyrl.sampling`."""
        from vllm import SamplingParams

        params = SamplingParams(
            n=num_samples, max_tokens=max_new_tokens,
            temperature=temperature if do_sample else 0.0, top_p=top_p if do_sample else 1.0,
            top_k=(top_k or -1) if do_sample else -1,  # vLLM: -1 = no top-k cut (replyrl's 0)
        )
        # Token ids, not text: vLLM would tokenize with special tokens added, our prompts already hold them.
        ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in ids], params, use_tqdm=False)
        return [[o.text.strip() for o in out.outputs] for out in outputs]

    def train(self, mode: bool = True) -> VLLMPolicy:
        return self

    def eval(self) -> VLLMPolicy:
        return self
