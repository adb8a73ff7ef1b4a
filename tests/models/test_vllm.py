"""vLLM switches: a clear error where vLLM cannot run (here: no CUDA GPU or no `vllm`), the replyrl
sampler under `auto`, and, where a GPU with vLLM is lent, real sampling through it."""

from __future__ import annotations

import dataclasses

import pytest

from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.loader import ConfigError
from replyrl.evaluation.generate import load_for_generation
from replyrl.models.precision import vllm_usable
from replyrl.sampling import SamplingConfig, generate_replies
from replyrl.training.grpo_trainer import grpo_args

needs_no_vllm = pytest.mark.skipif(vllm_usable(), reason="this machine can run vLLM")
needs_vllm = pytest.mark.skipif(not vllm_usable(), reason="needs a CUDA GPU and the vllm package")


@needs_no_vllm
def test_forcing_vllm_where_it_cannot_run_names_the_param(tiny_base_dir):
    with pytest.raises(ConfigError, match=r"^evaluate.vllm: true needs "):
        load_for_generation(str(tiny_base_dir), False, vllm=True)


@needs_no_vllm
def test_auto_falls_back_to_the_replyrl_sampler(tiny_base_dir):
    model, _ = load_for_generation(str(tiny_base_dir), False, vllm="auto")
    assert type(model).__name__ == "LlamaForCausalLM"


def test_grpo_vllm_params_reach_trl(tmp_path):
    config = dataclasses.replace(GRPOStageConfig(), use_vllm=True, vllm_mode="server",
                                 vllm_server_base_url="http://127.0.0.1:8000", vllm_gpu_memory_utilization=0.5)
    args = grpo_args(config, tmp_path, seed=0, reward_weights=[1.0])
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url, args.vllm_gpu_memory_utilization) == (
        True, "server", "http://127.0.0.1:8000", 0.5)
    assert grpo_args(GRPOStageConfig(), tmp_path, seed=0, reward_weights=[1.0]).use_vllm is False


def test_bad_vllm_params_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"^grpo.vllm_mode: 'remote' is not allowed"):
        GRPOStageConfig(vllm_mode="remote")
    with pytest.raises(ConfigError, match=r"^grpo.vllm_gpu_memory_utilization: 1.5 is not allowed"):
        GRPOStageConfig(vllm_gpu_memory_utilization=1.5)


@needs_vllm
def test_vllm_policy_samples_like_the_sampler(tiny_base_dir):
    model, tokenizer = load_for_generation(str(tiny_base_dir), False, vllm=True, seed=0)
    replies = generate_replies(model, tokenizer, ["hi there", "how are you?"], SamplingConfig(
        num_samples=3, temperature=0.8, top_p=0.95, max_new_tokens=8))
    assert [len(r) for r in replies] == [3, 3]
    greedy = generate_replies(model, tokenizer, ["hi there"], SamplingConfig(do_sample=False, max_new_tokens=8))
    assert greedy == generate_replies(model, tokenizer, ["hi there"], SamplingConfig(do_sample=False, max_new_tokens=8))
