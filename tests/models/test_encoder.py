import numpy as np

from replyrl.models.encoder import PACKAGED_MINILM, encode, encode_pairs, export_encoder, load_encoder, resolve_encoder


def test_packaged_name_resolves_to_the_shipped_folder(encoder_dir):
    assert resolve_encoder(PACKAGED_MINILM) == str(encoder_dir)
    assert resolve_encoder("some/other-model") == "some/other-model"  # ids and folders pass through


def test_exported_encoder_reloads_and_embeds_like_the_source(encoder_dir, tmp_path):
    export_encoder(str(encoder_dir), tmp_path / "encoder")
    source, exported = load_encoder(encoder_dir, device="cpu"), load_encoder(tmp_path / "encoder", device="cpu")
    texts = ["rainy days are the best", "I prefer sunshine"]
    emb = encode(exported, texts)
    assert emb.shape == (2, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb, encode(source, texts), atol=1e-6)

    # Pairs come back row-aligned, and a text shared by a tweet and a reply embeds identically.
    tweets, replies = ["rainy days are the best"] * 2, ["I prefer sunshine", "rainy days are the best"]
    tweet_emb, reply_emb = encode_pairs(exported, tweets, replies)
    np.testing.assert_allclose(tweet_emb, emb[[0, 0]], atol=1e-6)
    np.testing.assert_allclose(reply_emb, emb[[1, 0]], atol=1e-6)
