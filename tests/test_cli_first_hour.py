"""Edges a new user hit in their first hour, each kept fixed: output that survives a pipe and a narrow
terminal, recipes named or left out, skipped rows reported, runs that do not depend on the folder they
were started from, the help and the version."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import assert_user_error, lorakit, overrides, synthetic_rows, tiny_overrides, write_csv

ROOT = Path(__file__).parents[1]


def narrow(*args, cwd=None):
    """A command as a pipe sees it, with a 40-column terminal declared."""
    env = {**os.environ, "COLUMNS": "40", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "lorakit", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_bare_lorakit_prints_the_help_and_version_is_there(run_cli):
    r = run_cli()
    assert r.returncode == 0 and "install" in r.stdout and "train" in r.stdout and "serve" in r.stdout
    with pytest.raises(SystemExit) as e:
        from lorakit.cli import main

        main(["--version"])
    assert e.value.code == 0


def test_piped_narrow_output_keeps_paths_values_and_commands_whole(tmp_path, tiny_csv, tiny_model_dir):
    """rich wraps at $COLUMNS (or 80) when piped, which split printed paths across lines and cut table
    cells with an ellipsis; nothing printed may lose or break a character."""
    deep = tmp_path / "a-rather-long-folder-name-for-runs" / "and-deeper-still"
    r = narrow("train", *overrides(tmp_path, tiny_csv, tiny_model_dir, out_dir=deep, **{"train.epochs": 1}), "--quiet")
    assert r.returncode == 0, r.stderr
    run = deep / "tiny"
    assert f"run folder: {run}  (" in r.stdout and f"next: lorakit eval {run}\n" in r.stdout
    r = narrow("install", tiny_model_dir, "--name", "a-model-with-a-long-name-to-cut")
    assert r.returncode == 0, r.stderr
    for args in (["list"], ["show", "a-model-with-a-long-name-to-cut"], ["eval", run], ["--help"],
                 ["merge", run, "--out", tmp_path / "merged-model-folder-with-a-long-name"]):
        r = narrow(*args)
        assert r.returncode == 0, r.stderr
        assert "…" not in r.stdout + r.stderr, (args, r.stdout)
    assert str(tmp_path / "merged-model-folder-with-a-long-name") in r.stdout
    show = narrow("show", "a-model-with-a-long-name-to-cut", "--json")
    for sha in (f["sha256"] for f in json.loads(show.stdout)["files"].values()):
        assert sha in narrow("show", "a-model-with-a-long-name-to-cut").stdout


def test_train_takes_overrides_alone_and_named_recipes(tmp_path, tiny_csv, tiny_model_dir, run_cli):
    r = run_cli("train", *overrides(tmp_path, tiny_csv, tiny_model_dir, **{"train.epochs": 1}), "--quiet")
    assert r.returncode == 0, r.stderr
    # a packaged recipe by name: it is found (and then fails on the missing base, naming it)
    assert_user_error(run_cli("train", "tweets-sentiment", "base=nosuch-base"), "model 'nosuch-base' is not installed")
    assert_user_error(run_cli("train", "tweet-sentiment"), "packaged recipe: bbc-headlines, bbc-news, bible-en-fr, imdb, tweets-sentiment")


def test_packaged_recipes_are_the_readable_copies():
    from lorakit.config import packaged_recipes

    shipped = packaged_recipes()
    assert set(shipped) == {p.stem for p in (ROOT / "recipes").glob("*.yaml")}
    for name, path in shipped.items():
        assert path.read_text() == (ROOT / "recipes" / f"{name}.yaml").read_text(), name


def test_skipped_rows_are_reported(tmp_path, tiny_model_dir, run_cli):
    rows = synthetic_rows(150) + [("", "positive"), ("fine text", "")]
    data = write_csv(tmp_path / "rows.csv", rows)
    r = run_cli("train", *overrides(tmp_path, data, tiny_model_dir, **{"train.epochs": 1, "data.on_bad_rows": "skip"}),
                "--quiet")
    assert r.returncode == 0, r.stderr
    assert "2 bad rows skipped" in r.stdout


def test_a_run_does_not_depend_on_the_folder_it_was_started_from(tmp_path, tiny_model_dir):
    """A relative data file is resolved when the run is created: eval --baselines from elsewhere works."""
    work = tmp_path / "work"
    work.mkdir()
    write_csv(work / "rows.csv", synthetic_rows(300))
    o = tiny_overrides(tmp_path / "runs", Path("rows.csv"), tiny_model_dir, **{"train.epochs": 1})
    r = lorakit("train", *[f"{k}={v}" for k, v in o.items()], "--quiet", cwd=work)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "runs" / "tiny"
    assert (run / "config.yaml").read_text().count(str(work / "rows.csv")) == 1
    r = lorakit("eval", run, "--baselines", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "tf-idf + linear SVM" in json.loads(r.stdout)["baselines"]


def test_a_wrong_column_lists_the_columns(tmp_path, run_cli, tiny_csv, tiny_model_dir):
    from lorakit.infer.inputs import read_file
    from lorakit.errors import LorakitError

    write_csv(tmp_path / "s.csv", [("good", "x")], header=("review", "id"))
    with pytest.raises(LorakitError, match=r"no column 'nope' \(its columns: review, id\)"):
        list(read_file(tmp_path / "s.csv", "nope"))
    (tmp_path / "s.jsonl").write_text('{"review": "good"}\n')
    with pytest.raises(LorakitError, match=r"line 1 has no 'text' field \(its fields: review\)"):
        list(read_file(tmp_path / "s.jsonl", "text"))


def test_data_foreign_to_the_base_is_named_at_train_and_eval(tmp_path, tiny_model_dir, run_cli):
    """The tiny base knows a handful of English words: text in another language gets a warning with the
    fix, recorded in metrics.json; eval says in a sentence when a baseline beats the adapter, and why."""
    from lorakit.evaluation.report import verdict
    from lorakit.model.fit import vocabulary_fit

    french = [("le film était vraiment formidable aujourd'hui", "positive"), ("quelle horreur ce film", "negative"),
              ("le temps est gris", "neutral")] * 40
    data = write_csv(tmp_path / "fr.csv", french)
    r = run_cli("train", *overrides(tmp_path, data, tiny_model_dir, **{"train.epochs": 1}), "--quiet")
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("warning:")]
    assert "knows few of these texts' words" in line and "base=multilingual" in line
    vocab = json.loads((tmp_path / "runs" / "tiny" / "metrics.json").read_text())["vocabulary"]
    assert vocab["known_words"] < 0.7 and "warning" in vocab
    r = run_cli("eval", tmp_path / "runs" / "tiny", "--baselines")
    assert r.returncode == 0, r.stderr
    assert "baseline" in r.stdout.splitlines()[-2] + r.stdout.splitlines()[-1]
    beaten = {"accuracy": 0.5, "baselines": {"tf-idf + linear SVM": {"accuracy": 0.9}}}
    assert verdict(beaten, vocab).startswith("the tf-idf + linear SVM baseline scores 0.4000 accuracy above the "
                                            "adapter: the base model knows few of the data's words")
    english = vocabulary_fit(_tokenizer(tiny_model_dir), [t for t, _ in synthetic_rows(30)])
    assert english["known_words"] == 1.0 and english["unknown_tokens"] == 0.0


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
