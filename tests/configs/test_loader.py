"""params.yaml -> config dataclasses: one source of truth for defaults, and one-line errors for bad input."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from replyrl.__main__ import SECTION_CLASSES, main, section_class
from replyrl.configs.grpo import GRPOStageConfig
from replyrl.configs.loader import ConfigError, load_params, load_section, load_seeds, to_dict
from replyrl.configs.sft import SFTStageConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMS = REPO_ROOT / "params.yaml"


def write_params(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.mark.parametrize("section", list(SECTION_CLASSES))
def test_code_defaults_are_the_params_file(section: str):
    # A reader of the dataclass must see what runs: every default equals params.yaml's value.
    cls = section_class(section)
    assert to_dict(cls()) == to_dict(load_section(cls, section, PARAMS))


def test_every_param_has_help():
    def leaves(cls: type, prefix: str):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from leaves(hints[f.name], f"{prefix}.{f.name}")
            else:
                yield f"{prefix}.{f.name}", f.metadata.get("help", "")
    missing = [key for s in SECTION_CLASSES for key, text in leaves(section_class(s), s) if not text]
    assert not missing


def test_yaml_booleans_and_auto_are_accepted_for_bf16(tmp_path: Path):
    for value in (False, True, "auto"):
        path = write_params(tmp_path, {"grpo": {"bf16": value}, "sft": {"train": {"bf16": value}}})
        assert load_section(GRPOStageConfig, "grpo", path).bf16 == value
        assert load_section(SFTStageConfig, "sft", path).train.bf16 == value


@pytest.mark.parametrize(("section", "params", "message"), [
    # a typo'd value: file, key, value and what is allowed, on one line
    ("grpo", {"grpo": {"bf16": "fals"}},
     "params.yaml: grpo.bf16: 'fals' is not allowed; expected a boolean (true/false) or 'auto'"),
    ("grpo", {"grpo": {"max_steps": "ten"}}, "params.yaml: grpo.max_steps: 'ten' is not allowed; expected int"),
    # a typo'd key names the valid ones
    ("grpo", {"grpo": {"kl_coef": 0.1}}, "params.yaml: grpo: unknown key(s) ['kl_coef']; valid keys are ["),
    # a range check in __post_init__ still names the file
    ("grpo", {"grpo": {"top_p": 1.5}}, "params.yaml: grpo.top_p: 1.5 is not allowed; must be in (0, 1]"),
    ("sft", {"sft": {"lora": {"target_modules": ["lm_head"]}}},
     "params.yaml: sft.lora.target_modules: ['lm_head'] is not allowed; must be non-empty and exclude lm_head"),
    ("sft", {"grop": {}}, "params.yaml: unknown section(s) ['grop']; valid sections are ["),
])
def test_bad_params_give_one_line(tmp_path: Path, section: str, params: dict, message: str):
    path = write_params(tmp_path, params)
    with pytest.raises(ConfigError) as error:
        load_section(section_class(section), section, path)
    text = str(error.value).replace(str(tmp_path) + "/", "")
    assert text.startswith(message) and "\n" not in text


def test_seeds_must_be_distinct_integers(tmp_path: Path):
    assert load_seeds(PARAMS) == load_params(PARAMS)["seeds"]
    for bad in ([], [1, 1], ["42"], None):
        with pytest.raises(ConfigError, match="seeds: .* is not allowed; expected a non-empty list of distinct integers"):
            load_seeds(write_params(tmp_path, {"seeds": bad}))


def test_a_stage_prints_the_error_without_a_traceback(tmp_path: Path):
    path = write_params(tmp_path, {"base": {"modle": "x"}})
    result = subprocess.run([sys.executable, "stages/base.py", "--params", str(path), "--out", str(tmp_path / "out")],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"base.py: error: {path}: base: unknown key(s) ['modle']; valid keys are ['model']"]
    assert not (tmp_path / "out").exists()


def test_params_command_lists_every_param_with_its_help(capsys):
    main(["params", "grpo", "--params", str(PARAMS)])
    out = capsys.readouterr().out
    assert "grpo.kl_coeff = 0.1\n    KL coefficient" in out
    out = " ".join(out.split())  # help text is wrapped
    assert "grpo.lora.target_modules = ['q_proj', 'k_proj', 'v_proj', 'o_proj']" in out
    assert "Allowed: a boolean (true/false) or 'auto'." in out
