"""A lorakit run records its base in adapter/lorakit.json: installing the run needs no --base, and is still checked."""

import json

import pytest
from store_helpers import assert_one_line_error, make_peft_adapter, store_state


def _run(tmp_path, trained_on, recorded: str, base_path=None):
    """A run folder as lorakit train writes it: adapter/ holds the PEFT files and lorakit.json."""
    run = tmp_path / "runs" / "demo"
    make_peft_adapter(trained_on, run / "adapter")
    meta = {"labels": ["a", "b", "c"], "base": recorded, "base_path": str(base_path or trained_on), "max_length": 16}
    (run / "adapter" / "lorakit.json").write_text(json.dumps(meta))
    return run


def test_the_base_recorded_by_name_is_used(tmp_path, tiny_model_dir, cli, tiny_installed):
    run = _run(tmp_path, tiny_model_dir, "tiny")
    rc, out, err = cli("install", "--adapter", run, "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["base"] == "tiny" and m["name"] == "demo"


def test_a_base_recorded_as_a_folder_is_the_model_installed_from_it(tmp_path, tiny_model_dir, cli, tiny_installed):
    run = _run(tmp_path, tiny_model_dir, str(tiny_model_dir))
    rc, out, err = cli("install", "--adapter", run, "--json")
    assert rc == 0, err
    assert json.loads(out)["base"] == "tiny"


def test_an_explicit_base_still_wins(tmp_path, tiny_model_dir, cli, tiny_installed):
    assert cli("install", tiny_model_dir, "--name", "tiny2")[0] == 0
    run = _run(tmp_path, tiny_model_dir, "tiny")
    rc, out, err = cli("install", "--adapter", run, "--base", "tiny2", "--json")
    assert rc == 0 and json.loads(out)["base"] == "tiny2", err


@pytest.mark.parametrize("recorded, hint", [
    ("ghost", "install it first: lorakit install SOURCE --name ghost; or pass --base NAME"),
    ("minilm", "install it first: lorakit install minilm; or pass --base NAME"),
])
def test_a_recorded_base_that_is_not_installed_is_named(recorded, hint, tmp_path, tiny_model_dir, cli, tiny_installed):
    run = _run(tmp_path, tiny_model_dir, recorded)
    before = store_state()
    rc, _, err = cli("install", "--adapter", run)
    assert_one_line_error(rc, err, f"the adapter's base model '{recorded}' (from its lorakit.json) is not installed",
                          hint)
    assert store_state() == before


def test_a_recorded_folder_that_is_not_installed_is_named(tmp_path, tiny_model_dir, cli):
    run = _run(tmp_path, tiny_model_dir, str(tiny_model_dir))
    rc, _, err = cli("install", "--adapter", run)
    assert_one_line_error(rc, err, f"the model folder {tiny_model_dir}", "is not installed",
                          f"lorakit install {tiny_model_dir}")
    assert cli("install", tiny_model_dir)[0] == 0  # the command named, then the adapter again
    rc, out, err = cli("install", "--adapter", run, "--json")
    assert rc == 0 and json.loads(out)["base"] == tiny_model_dir.name, err


def test_the_recorded_base_is_checked_like_a_given_one(tmp_path, tiny_model_dir, other_base_dir, cli, tiny_installed):
    assert cli("install", other_base_dir, "--name", "other")[0] == 0
    run = _run(tmp_path, tiny_model_dir, "other")  # lorakit.json says other, the weights are for tiny
    rc, _, err = cli("install", "--adapter", run)
    assert_one_line_error(rc, err, "does not fit base 'other'", "--base tiny")


def test_without_a_record_the_base_is_asked_for(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "plain")
    rc, _, err = cli("install", "--adapter", src)
    assert_one_line_error(rc, err, "an adapter needs its base model", "--base NAME")
    run = _run(tmp_path, tiny_model_dir, "tiny")
    (run / "adapter" / "lorakit.json").write_text("{broken")
    rc, _, err = cli("install", "--adapter", run)
    assert_one_line_error(rc, err, "lorakit.json: not valid JSON", "--base NAME")


def test_a_run_given_as_a_model_is_pointed_at_install_adapter(tmp_path, tiny_model_dir, cli, tiny_installed):
    run = _run(tmp_path, tiny_model_dir, "tiny")
    rc, _, err = cli("install", run)
    assert_one_line_error(rc, err, "holds a LoRA adapter", f"lorakit install --adapter {run}")
    assert "--base" not in err  # the run records it
