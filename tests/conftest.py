"""Shared fixtures: an isolated store, a tiny random BERT on disk, a small synthetic dataset.

Everything is built offline in a few seconds; only the end-to-end test uses real weights
(the embedded minilm package).
"""

import os
from pathlib import Path

# Before anything imports huggingface_hub (it reads these once, at import): no test reaches a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers import Result, make_tiny_model, synthetic_rows, tiny_overrides, write_csv  # noqa: E402

@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test gets its own store and never touches the network or the user's store."""
    monkeypatch.setenv("LORAKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_model_no_dropout(tmp_path_factory) -> Path:
    """The tiny model without dropout: for runs that must match exactly however batches are split."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert-nodrop", dropout=0.0)


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "synthetic.csv", synthetic_rows(600))


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory, tiny_model_dir) -> Path:
    """A run of the tiny model on the synthetic CSV, trained once per test session: copy it (tiny_run)."""
    from lorakit.training.loop import train

    root = tmp_path_factory.mktemp("trained")
    data = write_csv(root / "synthetic.csv", synthetic_rows(600))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORAKIT_HOME", str(root / "home"))
        m = train(overrides=tiny_overrides(root / "runs", data, tiny_model_dir), show_progress=False)
    return Path(m["run"])


@pytest.fixture
def tiny_run(tmp_path, tiny_csv, trained_tiny_run) -> Path:
    """A trained run folder of the tiny model, this test's own: a copy of the session's run whose
    recipe reads this test's ``tiny_csv`` (the same rows, so the run resumes and evaluates as its own)."""
    import shutil

    import yaml

    run = tmp_path / "runs" / "tiny"
    shutil.copytree(trained_tiny_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["dataset"], config["out_dir"] = str(tiny_csv), str(tmp_path / "runs")
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return run


@pytest.fixture
def run_cli(capsys):
    """The CLI in this process (fast); ``helpers.lorakit`` runs the real entry point in a subprocess."""
    from lorakit.cli import main

    def call(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse usage errors
            code = e.code
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call
