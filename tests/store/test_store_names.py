"""Store names: a value that is not one is refused with a next step that fits the command it was given to."""

import pytest
from store_helpers import assert_one_line_error, make_peft_adapter

from lorakit.store import home


@pytest.mark.parametrize("verb", [("rm",), ("show",), ("verify",), ("serve", "--adapter")])
def test_a_path_given_for_a_name_is_called_a_path(verb, cli):
    rc, _, err = cli(*verb, "runs/x")
    assert_one_line_error(rc, err, "invalid name 'runs/x'", "a path, not a store name", "lorakit list")
    assert "--name" not in err  # none of these commands has that option


@pytest.mark.parametrize("verb", [("rm",), ("show",), ("verify",)])
def test_a_malformed_name_says_what_a_store_name_is(verb, cli):
    rc, _, err = cli(*verb, "my model")
    assert_one_line_error(rc, err, "invalid name 'my model'", "letters, digits", "lorakit list")
    assert "--name" not in err


def test_install_names_point_at_the_options_that_set_them(tmp_path, tiny_model_dir, cli, tiny_installed):
    rc, _, err = cli("install", tiny_model_dir, "--name", "my model")
    assert_one_line_error(rc, err, "invalid name 'my model'", "--name my-model")
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    rc, _, err = cli("install", "--adapter", src, "--base", tiny_model_dir)
    assert_one_line_error(rc, err, "a path, not a store name", "--base takes the name of an installed model",
                          "lorakit install FOLDER")
    assert not (home() / "adapters").exists()


def test_a_base_path_that_is_no_model_folder_says_so(tmp_path, cli):
    from lorakit.errors import StoreError
    from lorakit.store import model_dir

    with pytest.raises(StoreError, match="no such model folder") as e:
        model_dir(str(tmp_path / "missing"))
    assert "lorakit list" in e.value.hint
    with pytest.raises(StoreError, match=r"not a model folder \(no config.json\)"):
        model_dir(str(tmp_path))
