"""Store test fixtures: run the CLI in-process, a tiny base installed, a base of another size."""

from pathlib import Path

import pytest
from helpers import make_tiny_model


@pytest.fixture
def cli(capsys):
    """Run ``lorakit ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from lorakit.cli import main

    def run(*args):
        capsys.readouterr()
        rc = main([str(a) for a in args])
        cap = capsys.readouterr()
        return rc, cap.out, cap.err

    return run


@pytest.fixture(scope="session")
def other_base_dir(tmp_path_factory) -> Path:
    """A base of another size (hidden 48): adapters of the tiny base must not fit it."""
    return make_tiny_model(tmp_path_factory.mktemp("other") / "other-bert", hidden=48)


@pytest.fixture
def tiny_installed(tiny_model_dir, cli) -> str:
    rc, _, err = cli("install", tiny_model_dir, "--name", "tiny")
    assert rc == 0, err
    return "tiny"
