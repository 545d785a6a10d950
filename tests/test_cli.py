"""The command line end to end on the tiny model, in subprocesses, as a user runs it."""

import io
import json

from helpers import assert_user_error, lorakit, make_tiny_model, overrides, write_csv


def test_train_eval_predict(tmp_path, tiny_csv, tiny_model_dir, run_cli, monkeypatch):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  epochs: 3\n")
    r = lorakit("train", recipe, *overrides(tmp_path, tiny_csv, tiny_model_dir, **{"train.epochs": 3}), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "best epoch" in r.stdout and "lorakit eval" in r.stdout
    run = tmp_path / "runs" / "tiny"

    r = lorakit("eval", run, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["split"] == "test" and res["n"] == 120 and 0 <= res["accuracy"] <= 1
    assert set(res["per_class"]) == {"negative", "neutral", "positive"}
    assert sum(map(sum, res["confusion_matrix"])) == 120
    assert (run / "plots/confusion_test.png").stat().st_size > 1000
    assert json.loads((run / "eval_test.json").read_text())["accuracy"] == res["accuracy"]

    r = lorakit("predict", run, "good great", "bad awful")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["text"] for row in rows] == ["good great", "bad awful"]
    assert all(set(row) == {"text", "label", "probs"} for row in rows)

    # the same predictions from a .txt file, a .jsonl file and stdin
    (tmp_path / "in.txt").write_text("good great\nbad awful\n")
    (tmp_path / "in.jsonl").write_text('{"text": "good great"}\n{"text": "bad awful"}\n')
    write_csv(tmp_path / "in.csv", [("good great",), ("bad awful",)], header=("text",))
    results = [run_cli("predict", run, "--file", tmp_path / name) for name in ("in.txt", "in.jsonl", "in.csv")]
    monkeypatch.setattr("sys.stdin", io.StringIO("good great\nbad awful\n"))
    results.append(run_cli("predict", run))
    for r in results:
        assert r.returncode == 0, r.stderr
        assert [json.loads(line) for line in r.stdout.splitlines()] == rows


def test_user_errors_are_one_line_and_exit_1(tmp_path, tiny_csv, tiny_model_dir, run_cli):
    lorakit = run_cli
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  lr: -1\n")
    assert_user_error(lorakit("train", recipe), "train.lr: input should be greater than 0, got -1")
    recipe.write_text("trian:\n  lr: 1\n")
    assert_user_error(lorakit("train", recipe), "unknown key 'trian'")
    recipe.write_text("train: [\n")
    assert_user_error(lorakit("train", recipe), "is not valid YAML")
    assert_user_error(lorakit("train", tmp_path / "none.yaml"), "not found")

    bad = write_csv(tmp_path / "bad.csv", [("ok", "a"), ("", "b"), ("fine", "b")])
    recipe.write_text("{}\n")
    r = lorakit("train", recipe, *overrides(tmp_path, bad, tiny_model_dir))
    assert_user_error(r, "1 bad row (line 3: empty text)")
    assert "data.on_bad_rows=skip" in r.stderr

    assert_user_error(lorakit("eval", tmp_path / "nope"), "not found")
    assert_user_error(lorakit("predict", tmp_path / "nope", "x"), "not found")
    assert_user_error(lorakit("install", tmp_path / "nope"), "no such folder, file, alias or hub id")
    assert_user_error(lorakit("install", "someorg/somemodel"), "cannot download 'someorg/somemodel'")


def test_usage_errors_exit_2(run_cli):
    lorakit = run_cli
    r = lorakit("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_install_and_list(tmp_path, tiny_model_dir, run_cli):
    lorakit = run_cli
    r = lorakit("install", tiny_model_dir, "--name", "tiny")
    assert r.returncode == 0, r.stderr
    r = lorakit("list", "--json")
    (entry,) = json.loads(r.stdout)
    assert entry["name"] == "tiny" and entry["kind"] == "model" and entry["parameters"] > 0
    assert lorakit("install", tiny_model_dir, "--name", "tiny").returncode == 0  # identical content: a no-op
    other = make_tiny_model(tmp_path / "other", seed=1)
    assert_user_error(lorakit("install", other, "--name", "tiny"), "already installed")
    assert_user_error(lorakit("install", tiny_model_dir, "--name", "../evil"), "invalid name '../evil'")


def test_list_arguments_may_follow_options(tmp_path, tiny_csv, tiny_model_dir, run_cli):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    # the override after --quiet reaches the recipe (and fails validation there, naming the key)
    r = run_cli("train", recipe, "--quiet", "train.lr=-1")
    assert_user_error(r, "train.lr: input should be greater than 0")
    assert_user_error(run_cli("train", recipe, "--nproc", "0"), "--nproc must be at least 1")
    assert run_cli("train", recipe, "--quiet", "--bogus").returncode == 2
