"""The shared-prefix forward equals TRL's fused-head forward: log-probs, metrics, loss and LoRA gradients."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from trl.trainer.utils import add_fused_lm_head

from replyrl.models.base import load_base
from replyrl.models.shared_prefix import _plan, add_shared_prefix_forward

OUTPUTS = ("log_probs", "entropy", "is_top1")


@pytest.fixture(scope="module")
def base(tiny_base_dir):
    return load_base(tiny_base_dir)


def lora_model(model, shared: bool, temperature: float = 1.0):
    model = copy.deepcopy(model)
    add_fused_lm_head(model, temperature=temperature, outputs=OUTPUTS)
    torch.manual_seed(1)  # the same LoRA init for both variants
    peft = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    for name, param in peft.named_parameters():
        if "lora_B" in name:  # nonzero, so the adapter changes the outputs and has gradients through A too
            param.data.normal_(0, 0.5)
    if shared:
        add_shared_prefix_forward(peft, temperature=temperature, outputs=OUTPUTS)
    return peft.train()


def sft_batch(tokenizer):
    """Right-padded rows sharing a chat-template header, prompt masked (TRL's collator layout)."""
    pairs = [("hello there, how are you", "fine, thanks"), ("what a day it was", "indeed, a long one"),
             ("cats or dogs?", "dogs, always and forever, no doubt")]
    ids, labels = [], []
    for tweet, reply in pairs:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": tweet}], tokenize=False,
                                               add_generation_prompt=True)
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids.append(p + r)
        labels.append([-100] * len(p) + r)
    width = max(map(len, ids))
    return {
        "input_ids": torch.tensor([i + [tokenizer.pad_token_id] * (width - len(i)) for i in ids]),
        "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids]),
        "labels": torch.tensor([x + [-100] * (width - len(x)) for x in labels]),
    }


def grpo_batch(tokenizer, group: int = 3, tweets: tuple[str, str] = ("a longer first tweet here", "short")):
    """Left-padded prompts, each once per group member, then right-padded completions (TRL GRPO's layout)."""
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in tweets]
    width = max(map(len, prompts))
    completions = [tokenizer(c, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
                   for c in (" yes", " no way", " maybe later today")]
    c_width = max(map(len, completions))
    ids, mask = [], []
    for p in prompts:
        for c in completions[:group]:
            ids.append([tokenizer.pad_token_id] * (width - len(p)) + p + c + [tokenizer.pad_token_id] * (c_width - len(c)))
            mask.append([0] * (width - len(p)) + [1] * (len(p) + len(c)) + [0] * (c_width - len(c)))
    ids, mask = torch.tensor(ids), torch.tensor(mask)
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :width] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def forward_backward(model, batch, **kwargs):
    model.zero_grad()
    out = model(**batch, fused_lm_head=True, **kwargs)
    out.loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])
    return out, grads


def layouts(tokenizer) -> dict[str, dict[str, torch.Tensor]]:
    sft = sft_batch(tokenizer)
    unlabelled = {k: v.clone() for k, v in sft.items()}
    unlabelled["labels"][1] = -100  # a row with nothing to score
    positioned = {**sft, "position_ids": torch.arange(sft["input_ids"].size(1)).expand_as(sft["input_ids"]) + 3}
    return {
        "sft": sft,
        "sft, a row without labels": unlabelled,
        "sft, position_ids given": positioned,
        "grpo": grpo_batch(tokenizer),
        # equal-length prompts (no padding) that share their first words: a common part and a per-group part
        "grpo, common words": grpo_batch(tokenizer, tweets=("one two cats and more", "one two dogs and more")),
    }


LAYOUTS = ["sft", "sft, a row without labels", "sft, position_ids given", "grpo", "grpo, common words"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_equals_trl_forward(base, layout, temperature):
    model, tokenizer = base
    batch = layouts(tokenizer)[layout]
    expected, expected_grads = forward_backward(lora_model(model, False, temperature), batch)
    got, grads = forward_backward(lora_model(model, True, temperature), batch)
    assert torch.equal(got.label_mask, expected.label_mask)
    torch.testing.assert_close(got.log_probs, expected.log_probs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.entropy, expected.entropy, atol=1e-5, rtol=1e-4)
    assert torch.equal(got.is_top1, expected.is_top1)
    torch.testing.assert_close(got.loss, expected.loss)
    assert expected_grads.abs().max() > 0
    torch.testing.assert_close(grads, expected_grads, atol=1e-6, rtol=1e-4)


def test_reference_pass_without_grad_or_adapter_equals_trl(base):
    model, tokenizer = base
    batch = grpo_batch(tokenizer)
    outputs = []
    for shared in (False, True):
        peft = lora_model(model, shared)
        with torch.no_grad(), peft.disable_adapter():
            outputs.append(peft(**batch, fused_lm_head=True).log_probs)
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-5, rtol=1e-4)


def test_plan_keys_on_positions_too(base):
    _, tokenizer = base
    batch = grpo_batch(tokenizer)
    positions = torch.arange(batch["input_ids"].size(1)).expand_as(batch["input_ids"]).clone()
    positions[1] += 1  # same tokens as its group, other positions: not the same prefix
    plan = _plan(batch["input_ids"], batch["attention_mask"], positions, batch["labels"])
    assert len(plan.unique) == 3


def test_models_a_split_forward_would_change_keep_trls(base):
    model, _ = base
    capped = copy.deepcopy(model)
    capped.config.final_logit_softcapping = 30.0
    add_fused_lm_head(capped, outputs=OUTPUTS)
    trl_forward = capped.forward
    add_shared_prefix_forward(capped, outputs=OUTPUTS)
    assert capped.forward is trl_forward


def test_num_items_in_batch_divides_the_loss_as_trl(base):
    model, tokenizer = base
    batch = grpo_batch(tokenizer)
    expected = lora_model(model, False)(**batch, fused_lm_head=True, num_items_in_batch=50).loss
    got = lora_model(model, True)(**batch, fused_lm_head=True, num_items_in_batch=50).loss
    torch.testing.assert_close(got, expected)


def test_plan_shares_the_header_and_each_groups_prompt(base):
    _, tokenizer = base
    sft = sft_batch(tokenizer)
    plan = _plan(sft["input_ids"], sft["attention_mask"], None, sft["labels"])
    # Every row is distinct, but the chat-template header is common to all of them.
    header = tokenizer.apply_chat_template([{"role": "user", "content": ""}], tokenize=True)
    assert plan.common >= 5 and len(plan.unique) == 3 and plan.common <= len(header["input_ids"])
    grpo = grpo_batch(tokenizer)
    plan = _plan(grpo["input_ids"], grpo["attention_mask"], None, grpo["labels"])
    # Two prompts (one left-padded, so nothing common to both), each shared by its group of three, up to
    # the position that predicts the first completion token.
    prompt_width = int((grpo["labels"] != -100).int().argmax(dim=1).min())
    assert plan.common == 0 and plan.split == prompt_width - 1 and len(plan.unique) == 2
    assert plan.row_of.tolist() == [plan.row_of[0].item()] * 3 + [plan.row_of[3].item()] * 3
    same_start = grpo_batch(tokenizer, tweets=("one two cats and more", "one two dogs and more"))
    plan = _plan(same_start["input_ids"], same_start["attention_mask"], None, same_start["labels"])
    assert 0 < plan.common < plan.split and len(plan.unique) == 2


def test_nothing_shared_or_unsupported_inputs_go_to_trl(base, monkeypatch):
    model, tokenizer = base
    peft = lora_model(model, True)

    def shared_path(*args, **kwargs):
        raise AssertionError("shared path taken")

    monkeypatch.setattr("replyrl.models.shared_prefix._shared_prefix_hidden", shared_path)
    batch = grpo_batch(tokenizer, group=1)  # two rows, two prompts, no common header: nothing to share
    assert _plan(batch["input_ids"], batch["attention_mask"], None, batch["labels"]) is None
    peft(**batch, fused_lm_head=True)
    peft(**grpo_batch(tokenizer), fused_lm_head=True, output_attentions=True)
    peft(**grpo_batch(tokenizer))  # a plain forward (generation, logits) is the model's own
    backbone = peft.get_base_model().base_model
    backbone.gradient_checkpointing = True  # the cache the shared path needs is off under checkpointing
    try:
        peft(**grpo_batch(tokenizer), fused_lm_head=True)
    finally:
        backbone.gradient_checkpointing = False
    with pytest.raises(AssertionError, match="shared path taken"):  # the same call, supported: shared
        peft(**grpo_batch(tokenizer), fused_lm_head=True)
