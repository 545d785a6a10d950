import socket

import pytest

from lorakit.cli import build_parser, main
from lorakit.errors import LorakitError
from lorakit.serve import run
from lorakit.serve.run import build_engine, parse_adapter
from lorakit.serve.settings import Settings
from serve_helpers import install_adapter


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


class NoServer:
    """Stands in for uvicorn's server: records what it would serve on, returns at once."""

    sockets: list = []

    def __init__(self, config):
        self.config = config

    def run(self, sockets=None):
        NoServer.sockets = [s.getsockname() for s in sockets]


def test_a_busy_port_is_one_error_line_before_anything_loads_or_is_announced(tiny_adapters, capsys, monkeypatch):
    built = []
    monkeypatch.setattr(run, "build_engine", lambda *a, **k: built.append(a))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--adapter", f"p={tiny_adapters['plain']}", "--port", str(port)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert not built
    assert err.startswith("error: ") and f"{port}" in err and "already in use" in err
    assert "— next: " in err and "--port" in err
    assert "serving" not in err and "Traceback" not in err and "Errno" not in err


def test_the_start_up_line_names_the_real_port_and_counts_adapters_in_proper_english(tiny_adapters, capsys,
                                                                                    monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "Server", NoServer)
    plain, flipped = f"p={tiny_adapters['plain']}", f"f={tiny_adapters['flipped']}"
    assert main(["serve", "--adapter", plain, "--port", "0"]) == 0
    line = " ".join(capsys.readouterr().err.split())
    (host, port), = NoServer.sockets
    assert port > 0 and f"serving 1 adapter over {tiny_adapters['base']} (p) on http://127.0.0.1:{port} " in line
    assert main(["serve", "--adapter", plain, "--adapter", flipped, "--port", "0"]) == 0
    assert "serving 2 adapters over " in capsys.readouterr().err


def test_serving_leaves_the_host_programs_logging_alone(tiny_adapters, capsys, monkeypatch):
    """uvicorn's own logging config closes every handler in the process (a notebook's, absl's that
    rouge-score installs): serving must not, and its warnings still reach stderr."""
    import io
    import logging

    import uvicorn

    monkeypatch.setattr(uvicorn, "Server", NoServer)
    theirs = io.StringIO()
    handler = logging.StreamHandler(theirs)
    logging.getLogger().addHandler(handler)
    try:
        assert main(["serve", "--adapter", f"p={tiny_adapters['plain']}", "--port", "0"]) == 0
        logging.getLogger().warning("still here")
        assert handler in logging.getLogger().handlers and not theirs.closed
        assert "still here" in theirs.getvalue()
    finally:
        logging.getLogger().removeHandler(handler)
    logging.getLogger("uvicorn.error").warning("a server warning")
    assert "WARNING: a server warning" in capsys.readouterr().err


def test_serve_help_shows_every_default_and_they_are_the_servers(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for default in ("127.0.0.1", "8000", "64", "5000", "2097152", "1024", "5.0", "30.0", "auto"):
        assert f"(default: {default})" in help_text, default
    a = build_parser().parse_args(["serve"])
    limits = Settings()
    assert (a.max_texts, a.max_chars, a.max_body_bytes, a.max_queue, a.max_batch, a.max_wait_ms, a.timeout,
            a.precision) == (limits.max_texts, limits.max_chars, limits.max_body_bytes, limits.max_queue,
                             limits.max_batch, limits.max_wait_ms, limits.request_timeout_s, limits.precision)
