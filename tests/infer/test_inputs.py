import json

import pytest

from lorakit.errors import LorakitError
from lorakit.infer.inputs import count, read_file


def test_txt_csv_jsonl_are_read_lazily_and_counted(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("one\n\n  \ntwo, with comma\nthree\n")
    assert list(read_file(txt)) == ["one", "two, with comma", "three"]
    assert count(txt) == 3

    csv_path = tmp_path / "a.csv"
    csv_path.write_text('id,body\n1,"multi\nline"\n2,plain\n\n')
    assert list(read_file(csv_path, "body")) == ["multi\nline", "plain"]
    assert count(csv_path) == 2

    jl = tmp_path / "a.jsonl"
    jl.write_text("\n".join(json.dumps({"text": t, "x": 1}) for t in ["é", "b"]) + "\n\n")
    assert list(read_file(jl)) == ["é", "b"]
    assert count(jl) == 2


def test_bad_inputs_name_the_fix(tmp_path):
    with pytest.raises(LorakitError, match="file not found"):
        read_file(tmp_path / "nope.txt")
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("body\nx\n")
    with pytest.raises(LorakitError, match="no column 'text'") as e:
        list(read_file(csv_path))
    assert "--text-column" in e.value.hint
    jl = tmp_path / "a.jsonl"
    jl.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(LorakitError, match="line 2"):
        list(read_file(jl))
