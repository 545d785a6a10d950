from pathlib import Path

import pytest

from lorakit.config import load_config
from lorakit.errors import ConfigError

RECIPES = sorted((Path(__file__).parents[1] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_validate_and_name_their_command(recipe):
    from lorakit import tasks

    cfg = load_config(recipe)
    assert cfg.base == tasks.get(cfg.task).default_base  # an embedded model: every recipe runs offline
    assert recipe.read_text().startswith(f"# lorakit train recipes/{recipe.name}")


def test_overrides_are_parsed_as_yaml_and_nested():
    cfg = load_config(None, ["train.lr=5e-4", "data.limit=200", "lora.target_modules=[query, value]", "name=x"])
    assert cfg.train.lr == 5e-4 and cfg.data.limit == 200
    assert cfg.lora.target_modules == ["query", "value"] and cfg.name == "x"


def test_python_api_overrides_keep_types():
    assert load_config(None, {"data.labels": ["a", "b"], "train.epochs": 1}).data.labels == ["a", "b"]


@pytest.mark.parametrize("override, message", [
    ("train.lr=-1", "train.lr: input should be greater than 0, got -1"),
    ("train.lrr=1", "unknown key 'train.lrr' (allowed here: epochs, batch_size, micro_batch_size, max_tokens_per_pass, lr,"),
    ("bogus=1", "unknown key 'bogus' (allowed here: task, name, out_dir, base, data, lora, train)"),
    ("lora.method=qlora", "lora.method: input should be 'lora', 'rslora', 'dora' or 'adalora', got 'qlora'"),
    ("data.on_bad_rows=drop", "data.on_bad_rows: input should be 'error' or 'skip'"),
    ("name=../x", "name: value error, must be a plain folder name"),
    ("train.epochs", "override 'train.epochs' is not key=value"),
    ("train.distributed.strategy=zero", "train.distributed.strategy: input should be 'ddp', 'fsdp' or 'deepspeed'"),
    ("train.distributed.zero_stage=4", "train.distributed.zero_stage: input should be 1, 2 or 3"),
    ("train.distributed.shards=2", "unknown key 'train.distributed.shards' (allowed here: strategy, fsdp_version,"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert message in str(e.value)


def test_bad_recipe_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(bad)

