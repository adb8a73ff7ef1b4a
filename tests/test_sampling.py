"""The sampler draws what transformers' `generate` draws: the same distribution per step (chi-square on
fixed logits, against transformers' own warpers) and the same sequences where generation is
deterministic (greedy, through the shared-prompt cache and left padding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from scipy.stats import chisquare
from transformers import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from replyrl.models.base import load_base
from replyrl.models.lm_head import plain_lm_head
from replyrl.sampling import SamplingConfig, _last_logits, eos_token_ids, generate_replies, sample_next, sample_token_ids

DRAWS = 20_000


def reference_probs(logits: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
    """The next-token distribution of transformers' sampling: its warpers in its order, then softmax."""
    warpers = LogitsProcessorList([TemperatureLogitsWarper(sampling.temperature)])
    if sampling.top_k:
        warpers.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    return warpers(None, logits.clone()).softmax(dim=-1)


# Two rows per case (a peaked and a flatter distribution over 12 tokens).
LOGITS = torch.tensor([
    [4.0, 3.1, 2.5, 2.0, 1.2, 1.0, 0.3, 0.0, -0.5, -1.0, -2.0, -3.0],
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2],
])


@pytest.mark.parametrize(("sampling", "candidates"), [
    (SamplingConfig(temperature=0.8, top_p=0.9), 64),                # nucleus inside the candidates
    (SamplingConfig(temperature=1.0, top_p=0.95), 3),                # the flat row's nucleus needs the full sort
    (SamplingConfig(temperature=1.2, top_p=0.7, top_k=5), 3),        # top-k, then top-p within it
    (SamplingConfig(temperature=0.8, top_p=1.0, top_k=4), 64),       # top-k alone
    (SamplingConfig(temperature=1.0, top_p=1.0), 64),                # plain softmax sampling
])
def test_each_step_draws_from_transformers_distribution(sampling, candidates):
    generator = torch.Generator().manual_seed(0)
    rows = LOGITS.repeat_interleave(DRAWS, dim=0)
    tokens = sample_next(rows, sampling, candidates=candidates, generator=generator).view(2, DRAWS)
    expected = reference_probs(LOGITS, sampling)
    for row in range(2):
        counts = np.bincount(tokens[row].numpy(), minlength=LOGITS.size(1))
        support = expected[row] > 0
        assert counts[~support.numpy()].sum() == 0, "a token outside transformers' nucleus/top-k was drawn"
        probs = expected[row][support].double().numpy()
        result = chisquare(counts[support.numpy()], DRAWS * probs / probs.sum())
        assert result.pvalue > 1e-3, (row, counts, expected[row])


def test_nuclei_wider_than_the_candidates_are_drawn_from_the_next_widths():
    # 300 tokens and 2 candidates: the widths are 2, 32 and 300 (the full sort). Rows whose nucleus
    # holds ~1, ~20 and ~200 tokens each end at another width, and all draw transformers' distribution.
    logits = torch.stack([
        torch.cat([torch.tensor([12.0]), torch.zeros(299)]),
        torch.cat([6.0 - 0.01 * torch.arange(20), torch.zeros(280)]),  # no ties: the nucleus edge is one token
        -torch.linspace(0.0, 2.0, 300),
    ])
    sampling = SamplingConfig(temperature=1.0, top_p=0.9)
    tokens = sample_next(logits.repeat_interleave(DRAWS, dim=0), sampling, candidates=2,
                         generator=torch.Generator().manual_seed(0)).view(3, DRAWS)
    expected = reference_probs(logits, sampling)
    sizes = [int((p > 0).sum()) for p in expected]
    assert sizes[0] == 1 and 2 < sizes[1] <= 32 < sizes[2]
    for row in range(3):
        counts = np.bincount(tokens[row].numpy(), minlength=300)
        support = (expected[row] > 0).numpy()
        assert counts[~support].sum() == 0
        if support.sum() > 1:  # a one-token nucleus is checked by the line above (chi-square needs two)
            probs = expected[row][support].double().numpy()
            assert chisquare(counts[support], DRAWS * probs / probs.sum()).pvalue > 1e-3, row


def test_ties_at_the_top_k_cut_all_stay_as_in_transformers():
    logits = torch.tensor([[3.0, 2.0, 2.0, 1.0]])
    sampling = SamplingConfig(top_k=2)
    tokens = sample_next(logits.repeat(DRAWS, 1), sampling, generator=torch.Generator().manual_seed(0))
    expected = reference_probs(logits, sampling)[0].double().numpy()  # [.576, .212, .212, 0]
    counts = np.bincount(tokens.numpy(), minlength=4)
    assert counts[3] == 0 and chisquare(counts[:3], DRAWS * expected[:3] / expected[:3].sum()).pvalue > 1e-3


def test_a_wrong_nucleus_is_detected():
    # The test above can fail: drawing from top-p 0.9 is rejected against a 0.7 reference.
    generator = torch.Generator().manual_seed(0)
    tokens = sample_next(LOGITS[:1].repeat(DRAWS, 1), SamplingConfig(top_p=0.9), generator=generator)
    expected = reference_probs(LOGITS[:1], SamplingConfig(top_p=0.7))[0]
    counts = np.bincount(tokens.numpy(), minlength=LOGITS.size(1))
    assert counts[(expected == 0).numpy()].sum() > 0


def test_greedy_matches_generate_through_the_shared_prompt_cache(tiny_base_dir):
    model, tokenizer = load_base(tiny_base_dir)
    model.eval()
    prompts = ["hi", "a much longer prompt, so the others are left-padded", "what do you think?"]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    with torch.no_grad():
        reference = model.generate(**enc, do_sample=False, max_new_tokens=12, pad_token_id=tokenizer.pad_token_id,
                                   temperature=None, top_p=None, top_k=None)
    width = enc["input_ids"].size(1)
    expected = [[t for t in row[width:].tolist()] for row in reference]
    greedy = SamplingConfig(num_samples=3, do_sample=False, max_new_tokens=12)
    eos = eos_token_ids(model, tokenizer)
    rows = sample_token_ids(model, tokenizer(prompts)["input_ids"], greedy, eos, tokenizer.pad_token_id)
    assert len(rows) == 9
    for i, want in enumerate(expected):
        cut = next((j + 1 for j, t in enumerate(want) if t in eos), len(want))
        assert rows[3 * i : 3 * i + 3] == [want[:cut]] * 3  # each prompt's 3 rows share its cache


def test_greedy_rows_of_a_sampled_batch_decode_as_a_greedy_pass(tiny_base_dir):
    model, tokenizer = load_base(tiny_base_dir)
    model.eval()
    prompt_ids = tokenizer(["hi", "a longer prompt, so the first one is left-padded"])["input_ids"]
    eos = eos_token_ids(model, tokenizer)
    greedy = sample_token_ids(model, prompt_ids, SamplingConfig(do_sample=False, max_new_tokens=12), eos,
                              tokenizer.pad_token_id)
    torch.manual_seed(0)
    mixed = SamplingConfig(num_samples=3, temperature=1.5, max_new_tokens=12, with_greedy=True)
    rows = sample_token_ids(model, prompt_ids, mixed, eos, tokenizer.pad_token_id)
    assert len(rows) == 8 and [rows[3], rows[7]] == greedy  # each prompt's 3 samples, then its greedy reply
    assert rows[0:3] != [greedy[0]] * 3  # the others are sampled (at temperature 1.5 a tie is all but impossible)
    replies = generate_replies(model, tokenizer, ["hi"], mixed, batch_size=1)
    assert len(replies[0]) == 4 and replies[0][3] == tokenizer.decode(greedy[0], skip_special_tokens=True).strip()


def assert_head_path_matches(model, ids: torch.Tensor) -> torch.Tensor:
    """The logits through `plain_lm_head` equal the model's own forward's; returns the latter."""
    head = plain_lm_head(model)
    assert head is not None
    with torch.no_grad():
        ours = _last_logits(model, head, input_ids=ids)
        theirs = _last_logits(model, None, input_ids=ids)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    return theirs


def test_the_head_as_its_matrix_gives_the_model_logits(tiny_base_dir):
    model, tokenizer = load_base(tiny_base_dir)
    assert_head_path_matches(model, torch.tensor(tokenizer(["what do you think about it?"])["input_ids"]))
    model.config.final_logit_softcapping = 30.0  # a transform after the head: the model's own forward
    assert plain_lm_head(model) is None


def test_greedy_stops_at_an_eos_as_generate_does(tiny_base_dir):
    # The tiny random model never emits its real EOS: declare a token its greedy replies do emit as one.
    model, tokenizer = load_base(tiny_base_dir)
    model.eval()
    prompts = ["hi", "what do you think about the weather today?"]
    greedy = SamplingConfig(do_sample=False, max_new_tokens=10)
    free = sample_token_ids(model, tokenizer(prompts)["input_ids"], greedy, [-1], tokenizer.pad_token_id)
    eos = free[1][3]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    with torch.no_grad():
        reference = model.generate(**enc, do_sample=False, max_new_tokens=10, eos_token_id=eos,
                                   pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None, top_k=None)
    width = enc["input_ids"].size(1)
    rows = sample_token_ids(model, tokenizer(prompts)["input_ids"], greedy, [eos], tokenizer.pad_token_id)
    for row, ref in zip(rows, reference[:, width:].tolist()):
        cut = ref.index(eos) + 1 if eos in ref else len(ref)
        assert row == ref[:cut]
    assert rows[1][-1] == eos and len(rows[1]) <= 4


def test_samples_stop_at_the_first_eos_and_keep_prompt_order(tiny_base_dir):
    model, tokenizer = load_base(tiny_base_dir)
    torch.manual_seed(0)
    sampling = SamplingConfig(num_samples=4, temperature=1.5, top_p=0.95, max_new_tokens=20)
    eos = eos_token_ids(model, tokenizer)
    # GRPO's layout: each prompt repeated once per group member, sampled once.
    prompt_ids = tokenizer(["first", "second"])["input_ids"]
    repeated = [ids for ids in prompt_ids for _ in range(4)]
    rows = sample_token_ids(model, repeated, SamplingConfig(**{**sampling.__dict__, "num_samples": 1}), eos,
                            tokenizer.pad_token_id)
    assert len(rows) == 8 and all(1 <= len(r) <= 20 for r in rows)
    assert all(t not in eos for r in rows for t in r[:-1])  # nothing after an EOS
    replies = generate_replies(model, tokenizer, ["first", "second"], sampling, batch_size=1)
    assert [len(r) for r in replies] == [4, 4]


def test_the_head_as_its_matrix_gives_a_lora_policy_logits(tiny_base_dir):
    # GRPO's rollouts sample a PEFT-wrapped policy: the backbone's LoRA layers must be the ones used.
    model, tokenizer = load_base(tiny_base_dir)
    policy = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    ids = torch.tensor(tokenizer(["what do you think about it?"])["input_ids"])
    theirs = assert_head_path_matches(policy, ids)
    with torch.no_grad(), policy.disable_adapter():
        plain = _last_logits(policy, None, input_ids=ids)
    assert not torch.allclose(theirs, plain, atol=1e-4)  # the random adapter does change the logits


def test_a_head_with_its_own_forward_or_bias_goes_through_the_model(tiny_base_dir):
    model, _ = load_base(tiny_base_dir)
    head = model.get_output_embeddings()
    head.forward = lambda hidden: torch.nn.functional.linear(hidden.float(), head.weight.float())  # as TRL's fp32 cast
    assert plain_lm_head(model) is None
    del head.forward
    assert plain_lm_head(model) is not None
    handle = head.register_forward_hook(lambda module, args, out: out * 2)
    assert plain_lm_head(model) is None
    handle.remove()
    head.bias = torch.nn.Parameter(torch.zeros(head.out_features))
    assert plain_lm_head(model) is None
