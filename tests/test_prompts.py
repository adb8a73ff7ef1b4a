from replyrl.configs.prompt import PromptConfig
from replyrl.models.base import load_base
from replyrl.prompts import build_prompt


def test_prompt_is_one_user_turn_ending_in_assistant_header(tiny_base_dir):
    _, tokenizer = load_base(tiny_base_dir)
    prompt = build_prompt(tokenizer, "rainy days are the best", PromptConfig())
    # The tweet sits inside the user turn and generation starts right after the assistant header.
    assert "Generate an engaging Twitter reply to this tweet:\n\nrainy days are the best\n\nReply:" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_prompt_without_chat_template_is_the_raw_template(tiny_base_dir):
    _, tokenizer = load_base(tiny_base_dir)
    config = PromptConfig(template="Tweet: {tweet}\nReply:", use_chat_template=False)
    assert build_prompt(tokenizer, "hi", config) == "Tweet: hi\nReply:"
