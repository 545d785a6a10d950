import json

from lorakit.cli import main
from lorakit.infer.predictor import load


def test_predict_streams_a_file_in_input_order(trained_run, tmp_path, capsys):
    texts = [f"the movie was {w} {w}" for w in ["good", "bad", "fun", "sad", "great"] * 30]
    f = tmp_path / "in.txt"
    f.write_text("\n".join(texts) + "\n")
    assert main(["predict", str(trained_run), "--file", str(f), "--batch-size", "8", "--quiet"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == texts
    expected = load(trained_run).predict(texts)
    assert [r["label"] for r in rows] == [e["label"] for e in expected]


def test_predict_int8_reports_the_accuracy_change(trained_run, capsys):
    assert main(["predict", str(trained_run), "good fun", "--quantize", "int8"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["text"] == "good fun"
    assert "int8: test accuracy" in out.err and "change" in out.err


def test_predict_user_errors_are_one_line(trained_run, tmp_path, capsys):
    assert main(["predict", str(trained_run), "--file", str(tmp_path / "none.txt")]) == 1
    err = capsys.readouterr().err
    assert "file not found" in err and "Traceback" not in err
    assert main(["predict", str(tmp_path / "no-run"), "x"]) == 1
    assert "not found" in capsys.readouterr().err


def test_predict_takes_an_installed_adapter_by_name(trained_run, capsys):
    base = json.loads((trained_run / "adapter" / "lorakit.json").read_text())["base_path"]
    assert main(["install", base, "--name", "tiny"]) == 0
    assert main(["install", "--adapter", str(trained_run), "--base", "tiny", "--name", "support"]) == 0
    capsys.readouterr()
    assert main(["predict", "support", "good fun", "bad sad"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == [p["label"] for p in load(trained_run).predict(["good fun", "bad sad"])]
    assert main(["predict", "nosuch", "x"]) == 1
    assert "'nosuch' is neither a run folder nor an installed adapter" in capsys.readouterr().err
