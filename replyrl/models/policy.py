"""Load any trained policy folder: the base, an SFT adapter, or a GRPO adapter stacked on an SFT one.

Every adapter folder written by `sft` or `grpo` has a `lineage.json`:
``{"base": "models/base", "merged": ["models/sft/baseline_phase1/seed_42"]}`` — the base checkpoint
and the adapters that were merged into it, in order, before this folder's own adapter was trained.
Loading replays exactly that chain, so a GRPO model is never silently evaluated on the wrong weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from replyrl.models.base import load_base

LINEAGE_FILE = "lineage.json"


def save_adapter(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: str | Path, base: str | Path,
    merged: list[str | Path],
) -> None:
    """Write a trained adapter folder: the adapter, the tokenizer and its `lineage.json`.

    peft keeps `target_modules` as a set, which it writes in the order of Python's per-process string
    hashing: sorted here, so the same training gives a byte-identical folder (and an unchanged DVC md5).
    """
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    config_file = Path(out, "adapter_config.json")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    write_lineage(out, base, merged)


def write_lineage(out: str | Path, base: str | Path, merged: list[str | Path]) -> None:
    """Record how ``out``'s adapter sits on top of the base (paths as the pipeline names them)."""
    lineage = {"base": str(base), "merged": [str(m) for m in merged]}
    Path(out, LINEAGE_FILE).write_text(json.dumps(lineage, indent=2) + "\n", encoding="utf-8")


def read_lineage(model_dir: str | Path) -> dict:
    path = Path(model_dir, LINEAGE_FILE)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {model_dir} is not an adapter folder written by replyrl")
    return json.loads(path.read_text(encoding="utf-8"))


def is_adapter_dir(model_dir: str | Path) -> bool:
    return Path(model_dir, "adapter_config.json").exists()


def load_policy(
    model_dir: str | Path, dtype: torch.dtype = torch.float32, merge: bool = True
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a policy for generation or further training.

    ``model_dir`` is a base folder (plain checkpoint) or an adapter folder with a lineage. With
    ``merge=True`` every adapter, this folder's too, is merged into plain weights; with
    ``merge=False`` this folder's adapter stays a trainable/disable-able `PeftModel`. Adapters are
    merged in float32 and only the merged weights are cast to ``dtype``: merging into bf16 weights
    would round every LoRA update into bf16 once per merge.
    """
    if not is_adapter_dir(model_dir):
        return load_base(model_dir, dtype=dtype)
    lineage = read_lineage(model_dir)
    model, tokenizer = load_base(lineage["base"], dtype=torch.float32)
    for adapter in lineage["merged"]:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model = PeftModel.from_pretrained(model, str(model_dir))
    model = model.merge_and_unload() if merge else model
    return model.to(dtype), tokenizer
