"""Learned engagement reward: a small MLP on frozen sentence embeddings of the tweet and the reply.

Features of a pair with embeddings u (tweet) and v (reply) are ``[u, v, |u - v|, u * v]``, the
classic sentence-pair head (InferSent, Sentence-BERT). ``u`` and ``v`` let the head judge each text
alone; ``u * v`` (whose sum is their cosine, as both are L2-normalised) and ``|u - v|`` expose how
the reply relates to the tweet directly, which a small MLP would otherwise have to learn from the
concatenation with far more data. The head ends in a sigmoid: its output is predicted engagement in
[0, 1], trained with binary cross-entropy on the soft ``engagement`` targets.

A trained model is a folder with ``model.safetensors`` (weights) and ``config.json`` (architecture
and the encoder's embedding size), so it reloads with this module alone and no pickled objects.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from scipy import stats
from sentence_transformers import SentenceTransformer
from torch import nn
from tqdm.auto import tqdm

from replyrl.configs.reward import LearnedRewardConfig
from replyrl.data.groups import holdout_mask
from replyrl.models.encoder import encode_pairs

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FEATURES = ["tweet", "reply", "abs_diff", "product"]


def pair_features(tweet_emb: np.ndarray, reply_emb: np.ndarray) -> torch.Tensor:
    """``[u, v, |u - v|, u * v]`` per row, as a float32 tensor of width ``4 * embedding_dim``."""
    u = torch.as_tensor(tweet_emb, dtype=torch.float32)
    v = torch.as_tensor(reply_emb, dtype=torch.float32)
    return torch.cat([u, v, (u - v).abs(), u * v], dim=1)


class EngagementHead(nn.Module):
    """MLP from pair features to one engagement logit per pair."""

    def __init__(self, input_dim: int, hidden_sizes: Sequence[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden_sizes:
            layers += [nn.Linear(input_dim, width), nn.GELU(), nn.Dropout(dropout)]
            input_dim = width
        layers.append(nn.Linear(input_dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)


class LearnedReward:
    """Callable learned reward: ``reward(tweets, replies) -> predicted engagement in [0, 1]``."""

    name = "learned"

    def __init__(
        self, head: EngagementHead, architecture: dict[str, Any], encoder: SentenceTransformer, batch_size: int = 64
    ) -> None:
        self.head = head.eval()
        self.architecture = architecture
        self.encoder = encoder
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        tweet_emb, reply_emb = encode_pairs(self.encoder, tweets, replies, self.batch_size)
        return torch.sigmoid(self.head(pair_features(tweet_emb, reply_emb))).double().numpy()

    def save(self, out: str | Path) -> None:
        """Write ``model.safetensors`` + ``config.json`` into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(out / WEIGHTS_FILE))
        (out / CONFIG_FILE).write_text(json.dumps(self.architecture, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, encoder: SentenceTransformer, batch_size: int = 64) -> LearnedReward:
        """Load a folder written by :meth:`save`; ``encoder`` must be the one it was trained on."""
        path = Path(path)
        if not (path / CONFIG_FILE).exists() or not (path / WEIGHTS_FILE).exists():
            raise FileNotFoundError(
                f"{path} has no {CONFIG_FILE} + {WEIGHTS_FILE}: train the learned reward first (`dvc repro reward`)"
            )
        architecture = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        dim = encoder.get_embedding_dimension()
        if architecture["embedding_dim"] != dim or architecture["features"] != FEATURES:
            raise ValueError(
                f"{path / CONFIG_FILE}: trained on {architecture['embedding_dim']}-dim embeddings with features "
                f"{architecture['features']}, but the encoder gives {dim}-dim embeddings and this code builds "
                f"{FEATURES}; retrain the reward model with this encoder"
            )
        head = EngagementHead(dim * len(FEATURES), architecture["hidden_sizes"], architecture["dropout"])
        head.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
        return cls(head, architecture, encoder, batch_size)


def _evaluate(head: EngagementHead, features: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    head.eval()
    with torch.no_grad():
        logits = head(features)
    pred = torch.sigmoid(logits)
    pearson = stats.pearsonr(pred.numpy(), target.numpy()).statistic if pred.std() > 0 and target.std() > 0 else 0.0
    return {
        "loss": nn.functional.binary_cross_entropy_with_logits(logits, target).item(),
        "mse": torch.mean((pred - target) ** 2).item(),
        "pearson": float(pearson),
    }


def train_reward_model(
    rows: Sequence[dict],
    encoder: SentenceTransformer,
    config: LearnedRewardConfig,
    batch_size: int = 64,
    progress: bool = True,
) -> tuple[LearnedReward, dict[str, Any]]:
    """Fit the MLP head on ``rows`` (each with ``tweet``, ``reply``, ``engagement``) with early stopping.

    A slice of the groups (``config.validation_fraction``; conversations, else tweets) is held out; training
    stops after ``config.patience`` epochs without a lower validation MSE and the best epoch's
    weights are kept. Returns the reward and a report: sizes, best epoch, validation metrics and
    the per-epoch history. ``batch_size`` is the encoder's; the head's is ``config.batch_size``.
    """
    tweets = [r["tweet"] for r in rows]
    replies = [r["reply"] for r in rows]
    target = torch.tensor([r["engagement"] for r in rows], dtype=torch.float32)
    is_val = torch.from_numpy(holdout_mask(rows, config.validation_fraction, config.seed))
    logger.info("embedding %d training pairs (%d held out for early stopping)", len(rows), int(is_val.sum()))
    features = pair_features(*encode_pairs(encoder, tweets, replies, batch_size))
    train_x, train_y, val_x, val_y = features[~is_val], target[~is_val], features[is_val], target[is_val]

    torch.manual_seed(config.seed)
    head = EngagementHead(features.shape[1], config.hidden_sizes, config.dropout)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    shuffle = torch.Generator().manual_seed(config.seed)
    best, best_state, history = None, None, []
    epochs = tqdm(range(1, config.max_epochs + 1), desc="reward model", unit="epoch", disable=not progress)
    for epoch in epochs:
        head.train()
        order = torch.randperm(len(train_x), generator=shuffle)
        losses = []
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            loss = nn.functional.binary_cross_entropy_with_logits(head(train_x[idx]), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        val = _evaluate(head, val_x, val_y)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses))} | {f"val_{k}": v for k, v in val.items()})
        epochs.set_postfix(val_mse=f"{val['mse']:.4f}", val_pearson=f"{val['pearson']:.3f}", refresh=False)
        if best is None or val["mse"] < best["val_mse"]:
            best, best_state = history[-1], copy.deepcopy(head.state_dict())
        elif epoch - best["epoch"] >= config.patience:
            break
    head.load_state_dict(best_state)
    architecture = {
        "embedding_dim": encoder.get_embedding_dimension(),
        "features": FEATURES,
        "hidden_sizes": list(config.hidden_sizes),
        "dropout": config.dropout,
    }
    report = {
        "n_train": len(train_x),
        "n_val": len(val_x),
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "val_mse": best["val_mse"],
        "val_pearson": best["val_pearson"],
        "history": history,
    }
    logger.info(
        "best epoch %d of %d: val mse %.4f, pearson %.3f",
        best["epoch"], len(history), best["val_mse"], best["val_pearson"],
    )
    return LearnedReward(head, architecture, encoder, batch_size), report
