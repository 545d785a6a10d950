import pytest

from lorakit.cli import main
from lorakit.errors import LorakitError
from lorakit.serve.run import build_engine, parse_adapter
from serve_fixtures import install_adapter, tiny_adapters  # noqa: F401  (fixture)


def test_adapter_specs():
    assert parse_adapter("a") == ("a", "a")
    assert parse_adapter("a=runs/x") == ("a", "runs/x")
    for bad in ("=x", "a=", "../a=runs/x"):
        with pytest.raises(LorakitError):
            parse_adapter(bad)


def test_engine_from_runs_and_store_names(tiny_adapters):
    install_adapter(tiny_adapters["binary"], "bin")
    e = build_engine(None, [f"p={tiny_adapters['plain']}", "bin"])
    assert e.names() == ["bin", "p"] and e.base == str(tiny_adapters["base"])
    with pytest.raises(LorakitError, match="nothing to serve"):
        build_engine(None, [])


def test_serve_user_errors_exit_1_with_one_line(tiny_adapters, tmp_path, capsys):
    assert main(["serve", "--adapter", f"x={tmp_path / 'missing'}"]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err
    assert main(["serve", "--adapter", "not-installed"]) == 1
    assert "lorakit install" in capsys.readouterr().err
