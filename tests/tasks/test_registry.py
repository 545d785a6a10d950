"""The task registry: a task is looked up by name, older names still read, and a command that does not
fit a run's task stops with one line naming both."""

import json
import shutil

import pytest

from lorakit import tasks
from lorakit.errors import ConfigError, RunError
from lorakit.tasks.base import Task


class Scoring(Task):
    name = "scoring"
    summary = "a made-up task that only trains"
    commands = frozenset({"train"})


@pytest.fixture
def scoring_task():
    tasks.register(Scoring())
    yield
    del tasks.TASKS["scoring"]


def test_names_and_aliases():
    assert tasks.get("classification") is tasks.get("sequence-classification")  # lorakit.json of earlier versions
    with pytest.raises(ConfigError, match="unknown task 'nope'.*classification"):
        tasks.get("nope")


def test_a_command_that_does_not_fit_the_task_names_both(scoring_task):
    with pytest.raises(RunError) as e:
        tasks.require("scoring", "predict")
    assert "lorakit predict does not fit a scoring run (a made-up task that only trains)" in str(e.value)
    assert "lorakit predict takes classification runs" in e.value.hint
    assert tasks.require("classification", "predict").name == "classification"


def test_predict_and_merge_refuse_a_run_of_another_task(scoring_task, tmp_path, capsys):
    """The task recorded in lorakit.json is read back wherever an adapter is loaded."""
    from helpers import make_tiny_model, synthetic_rows, tiny_overrides, write_csv
    from lorakit.cli import main
    from lorakit.training.loop import train

    base = make_tiny_model(tmp_path / "tiny")
    rows = write_csv(tmp_path / "rows.csv", synthetic_rows(90))
    run = tmp_path / "runs" / "tiny"
    train(overrides=tiny_overrides(tmp_path / "runs", rows, base, **{"train.epochs": 1}), show_progress=False)
    meta = json.loads((run / "adapter" / "lorakit.json").read_text())
    assert meta["task"] == "classification"
    (run / "adapter" / "lorakit.json").write_text(json.dumps({**meta, "task": "scoring"}))
    for argv in (["predict", run, "good"], ["merge", run, "--out", tmp_path / "m"], ["eval", run],
                 ["export", run, "--out", tmp_path / "e"]):
        capsys.readouterr()
        assert main([str(a) for a in argv]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and f"lorakit {argv[0]} does not fit a scoring" in lines[0], lines
    assert not (tmp_path / "m").exists() and not (tmp_path / "e").exists()
    shutil.rmtree(run)
