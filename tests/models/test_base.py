import pytest
import torch

from replyrl.configs.loader import ConfigError
from replyrl.configs.prompt import PromptConfig
from replyrl.models.base import PACKAGED_SMOLLM2, export_base, load_base
from replyrl.models.encoder import PACKAGED_MINILM, encode, export_encoder, load_encoder
from replyrl.prompts import build_prompts
from replyrl.sampling import SamplingConfig, generate_replies


def test_exporting_a_local_folder_keeps_weights_and_tokenizer(tiny_base_dir, tmp_path):
    export_base(str(tiny_base_dir), tmp_path / "base")
    (source, source_tok), (exported, exported_tok) = load_base(tiny_base_dir), load_base(tmp_path / "base")
    ids = source_tok("rainy days are the best", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(exported(ids).logits, source(ids).logits)
    assert exported_tok.pad_token == exported_tok.eos_token == "<|im_end|>"


@pytest.mark.slow
def test_real_packaged_models_export_reload_and_generate(tmp_path):
    export_base(PACKAGED_SMOLLM2, tmp_path / "base")
    export_encoder(PACKAGED_MINILM, tmp_path / "encoder")
    model, tokenizer = load_base(tmp_path / "base")
    assert model.config.vocab_size == len(tokenizer) == 49152
    assert model.get_input_embeddings().weight.shape == (49152, 576)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)

    prompts = build_prompts(tokenizer, ["Just adopted a rescue puppy, any name ideas?"], PromptConfig())
    (replies,) = generate_replies(model, tokenizer, prompts, SamplingConfig(num_samples=2, max_new_tokens=16))
    assert len(replies) == 2 and all(r.strip() for r in replies)

    emb = encode(load_encoder(tmp_path / "encoder", device="cpu"), replies)
    assert emb.shape == (2, 384)


def test_unreachable_hub_id_is_one_line_naming_the_param(tmp_path):
    # The tests run offline (HF_HUB_OFFLINE=1), as the pipeline does: a hub id not in the cache cannot load.
    with pytest.raises(ConfigError, match=r"^base.model: 'no-such-org/no-such-model' is not a local folder .* "
                                          r"set base.model to that folder$"):
        export_base("no-such-org/no-such-model", tmp_path / "base")
    with pytest.raises(ConfigError, match=r"^encoder.model: 'no-such-org/no-such-encoder' is not a local folder"):
        export_encoder("no-such-org/no-such-encoder", tmp_path / "encoder")
    assert not (tmp_path / "base").exists() and not (tmp_path / "encoder").exists()
