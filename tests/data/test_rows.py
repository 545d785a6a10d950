import csv
import json

import pytest

from lorakit.data import write_split
from lorakit.data.rows import Rows, read_rows
from lorakit.data.rows_files import read_generation_file
from lorakit.errors import ConfigError, DataError
from lorakit.tasks.causal_lm.data import CausalLMData, load_rows, prepare


def write_jsonl(path, rows) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return str(path)


def write_csv(path, header, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def chat(*turns):
    return [{"role": r, "content": c} for r, c in turns]


def test_prompt_completion_keeps_an_optional_source(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "Q1", "completion": "A1"},
                                           {"prompt": "Q2", "completion": "A2", "source": "raw 2", "extra": 1}])
    rows = load_rows(CausalLMData(dataset=f))
    assert rows.rows == [{"prompt": "Q1", "completion": "A1"},
                         {"prompt": "Q2", "completion": "A2", "source": "raw 2"}]
    assert rows.lines == [1, 2] and rows.skipped == 0 and rows.groups is None


def test_auto_detection_order_and_each_format(tmp_path):
    cases = {
        # messages wins over prompt/completion when a file has both
        "messages": ({"messages": chat(("user", "hi"), ("assistant", "hello")), "prompt": "x", "completion": "y"},
                     {"messages": chat(("user", "hi"), ("assistant", "hello"))}),
        "prompt-completion": ({"prompt": "p", "completion": "c", "text": "t"}, {"prompt": "p", "completion": "c"}),
        "alpaca": ({"instruction": "Sum", "input": "2 3", "output": "5", "text": "t"},
                   {"prompt": "Sum\n\n2 3", "completion": "5"}),
        "source-target": ({"source": "bonjour", "target": "hello", "text": "t"},
                          {"prompt": "bonjour", "completion": "hello", "source": "bonjour"}),
        "text": ({"text": "just text", "other": 1}, {"text": "just text"}),
    }
    for name, (raw, expected) in cases.items():
        f = write_jsonl(tmp_path / f"{name}.jsonl", [raw])
        assert load_rows(CausalLMData(dataset=f)).rows == [expected], name


def test_alpaca_without_input_and_renamed_columns(tmp_path):
    f = write_jsonl(tmp_path / "a.jsonl", [{"q": "Say hi", "ctx": "", "a": "hi"}, {"q": "Add", "a": "4", "ctx": "2+2"}])
    data = CausalLMData(dataset=f, format="alpaca", instruction_column="q", input_column="ctx", output_column="a")
    assert load_rows(data).rows == [{"prompt": "Say hi", "completion": "hi"}, {"prompt": "Add\n\n2+2", "completion": "4"}]


def test_source_target_template(tmp_path):
    f = write_jsonl(tmp_path / "st.jsonl", [{"source": "chat", "target": "cat"}])
    data = CausalLMData(dataset=f, prompt_template='Translate {"fr": "{source}"} to English:')
    # Other braces are plain text: the template is not a format string.
    assert load_rows(data).rows == [{"prompt": 'Translate {"fr": "chat"} to English:', "completion": "cat",
                                     "source": "chat"}]


def test_prompt_template_must_name_the_source():
    with pytest.raises(ValueError, match="must contain {source}"):
        CausalLMData(prompt_template="Translate:")
    from lorakit.config import load_config

    with pytest.raises(ConfigError, match=r"data\.prompt_template: .*must contain \{source\}"):
        load_config(overrides={"task": "causal-lm", "data.prompt_template": "Translate:"})


def test_no_known_columns_lists_found_and_accepted(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError) as e:
        load_rows(CausalLMData(dataset=f))
    msg = str(e.value)
    assert "cannot tell the format from the columns question, answer" in msg
    assert "prompt-completion: prompt + completion" in msg and "alpaca: instruction + output" in msg
    assert "data.format" in msg and "\n" not in msg
    # Naming the columns is the fix the hint points to.
    rows = load_rows(CausalLMData(dataset=f, prompt_column="question", completion_column="answer"))
    assert rows.rows == [{"prompt": "q", "completion": "a"}]


def test_explicit_format_with_a_missing_column(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "answer": "a"}])
    with pytest.raises(DataError, match="no column 'completion' for data.format=prompt-completion.*"
                                        "columns are: prompt, answer; set data.completion_column"):
        load_rows(CausalLMData(dataset=f, format="prompt-completion"))


BAD = [
    {"prompt": "fine", "completion": "ok"},                                   # line 1
    {"prompt": "q", "completion": ""},                                        # line 2: empty completion
    "{not json",                                                              # line 3
    {"messages": chat(("user", "hi"), ("bot", "yo"))},                        # line 4: unknown role
    {"messages": chat(("system", "s"), ("user", "hi"))},                      # line 5: no assistant turn
    {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": ["x"]}]},  # line 6
    {"prompt": "q", "completion": "good too"},                                # line 7
    {"prompt": "", "completion": "c"},                                        # line 8: empty prompt
    {"prompt": "q", "completion": {"nested": 1}},                             # line 9
]


def test_bad_rows_error_names_the_file_and_lines(tmp_path):
    f = write_jsonl(tmp_path / "data.jsonl", BAD)
    with pytest.raises(DataError) as e:
        read_generation_file(tmp_path / "data.jsonl", "prompt-completion",
                             {"prompt": "prompt", "completion": "completion", "source": "source"}, "{source}", "error")
    msg = str(e.value)
    assert msg.startswith(f"{f}: 7 bad rows (line 2: empty completion; line 3: not a JSON object; line 4: empty prompt;")
    assert "; and 2 more)" in msg and "data.on_bad_rows=skip" in msg and "\n" not in msg


def test_bad_chat_rows_are_reported_and_skipped(tmp_path):
    rows = [r for r in BAD if isinstance(r, str) or "messages" in r] + [{"messages": chat(("user", "a"), ("assistant", "b"))}]
    f = write_jsonl(tmp_path / "chat.jsonl", [{"messages": chat(("user", "x"), ("assistant", "y"))}] + rows)
    with pytest.raises(DataError) as e:
        load_rows(CausalLMData(dataset=f))
    assert ("4 bad rows (line 2: not a JSON object; line 3: unknown role 'bot'; line 4: no assistant turn; "
            "line 5: assistant turn with non-string content)") in str(e.value)
    kept = load_rows(CausalLMData(dataset=f, on_bad_rows="skip"))
    assert kept.lines == [1, 6] and kept.skipped == 4
    assert kept.rows[1] == {"messages": chat(("user", "a"), ("assistant", "b"))}


def test_skipped_rows_are_counted_through_prepare(tmp_path):
    good = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(30)]
    f = write_jsonl(tmp_path / "d.jsonl", good[:10] + [{"prompt": "q", "completion": " "}] + good[10:])
    with pytest.raises(DataError, match="line 11: empty completion"):
        prepare(CausalLMData(dataset=f))
    splits = prepare(CausalLMData(dataset=f, on_bad_rows="skip"))
    assert splits.skipped == 1 and len(splits.train) + len(splits.val) + len(splits.test) == 30


def test_empty_text_and_all_bad(tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [{"text": "  "}, {"text": None}])
    with pytest.raises(DataError, match="2 bad rows .line 1: empty text; line 2: empty text"):
        load_rows(CausalLMData(dataset=f))
    with pytest.raises(DataError, match="no usable rows"):
        load_rows(CausalLMData(dataset=f, on_bad_rows="skip"))


def test_csv_with_messages_as_json_text(tmp_path):
    convo = json.dumps(chat(("system", "Be brief."), ("user", "Capital of France?"), ("assistant", "Paris.")))
    f = write_csv(tmp_path / "c.csv", ["messages"], [[convo], ["not json"], [json.dumps(chat(("user", "x")))]])
    with pytest.raises(DataError, match=r"2 bad rows \(line 3: messages is not valid JSON; line 4: no assistant turn\)"):
        load_rows(CausalLMData(dataset=f))
    rows = load_rows(CausalLMData(dataset=f, on_bad_rows="skip"))
    assert rows.rows == [{"messages": chat(("system", "Be brief."), ("user", "Capital of France?"), ("assistant", "Paris."))}]
    assert rows.lines == [2]  # the header is line 1


def test_csv_prompt_completion_line_numbers_count_multiline_cells(tmp_path):
    f = write_csv(tmp_path / "pc.csv", ["prompt", "completion"], [["a\nb", "c"], ["d", ""], ["e", "é"]])
    with pytest.raises(DataError, match=r"1 bad row \(line 4: empty completion\)"):
        load_rows(CausalLMData(dataset=f))
    assert load_rows(CausalLMData(dataset=f, on_bad_rows="skip")).rows[1] == {"prompt": "e", "completion": "é"}


def test_parquet_with_message_structs_and_json_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    turns = chat(("user", "hi"), ("assistant", "hello"))
    pq.write_table(pa.table({"messages": [turns, chat(("user", "x"), ("robot", "y"))]}), tmp_path / "s.parquet")
    with pytest.raises(DataError, match=r"line 2: unknown role 'robot'"):
        load_rows(CausalLMData(dataset=str(tmp_path / "s.parquet")))
    pq.write_table(pa.table({"conv": [json.dumps(turns)], "n": [1]}), tmp_path / "j.parquet")
    assert load_rows(CausalLMData(dataset=str(tmp_path / "j.parquet"), messages_column="conv")).rows == [{"messages": turns}]
    pq.write_table(pa.table({"prompt": ["p", "q"], "completion": ["c", None]}), tmp_path / "pc.parquet")
    rows = load_rows(CausalLMData(dataset=str(tmp_path / "pc.parquet"), on_bad_rows="skip"))
    assert rows.rows == [{"prompt": "p", "completion": "c"}] and rows.skipped == 1
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        load_rows(CausalLMData(dataset=str(tmp_path / "broken.parquet")))


def test_json_array_file_numbers_its_items(tmp_path):
    f = tmp_path / "alpaca.json"
    f.write_text(json.dumps([{"instruction": "Hi", "input": "", "output": "Hello"},
                             {"instruction": "Bye", "input": "", "output": ""}], indent=2))
    with pytest.raises(DataError, match=r"1 bad row \(item 2: empty output\)"):
        load_rows(CausalLMData(dataset=str(f)))
    rows = load_rows(CausalLMData(dataset=str(f), on_bad_rows="skip"))
    assert rows.rows == [{"prompt": "Hi", "completion": "Hello"}] and rows.lines == [1]
    (tmp_path / "lines.json").write_text('{"text": "a"}\n{"text": "b"}\n')
    assert load_rows(CausalLMData(dataset=str(tmp_path / "lines.json"))).rows == [{"text": "a"}, {"text": "b"}]


def test_missing_unknown_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_rows(CausalLMData(dataset=str(tmp_path / "nope.jsonl")))
    with pytest.raises(DataError, match="unknown dataset 'bbc'.*bbc-headlines, bible-en-fr"):
        load_rows(CausalLMData(dataset="bbc"))
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="e.jsonl: no rows"):
        load_rows(CausalLMData(dataset=str(tmp_path / "e.jsonl")))
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        load_rows(CausalLMData(dataset=str(tmp_path / "d.txt")))


def test_file_splits_are_80_10_10_disjoint_and_seeded(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(1000)])
    a, b = prepare(CausalLMData(dataset=f)), prepare(CausalLMData(dataset=f))
    assert (len(a.train), len(a.val), len(a.test)) == (800, 100, 100)
    assert a.test.lines == b.test.lines and a.train.lines == b.train.lines
    parts = [set(s.lines) for s in (a.train, a.val, a.test)]
    assert set().union(*parts) == set(range(1, 1001)) and sum(map(len, parts)) == 1000
    assert prepare(CausalLMData(dataset=f, seed=1)).test.lines != a.test.lines
    limited = prepare(CausalLMData(dataset=f, limit=50, val_limit=20, test_limit=30))
    assert (len(limited.train), len(limited.val), len(limited.test)) == (50, 20, 30)
    assert set(limited.train.lines) <= parts[0] and set(limited.test.lines) <= parts[2]


def test_too_few_rows_for_splits(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"text": "a"}, {"text": "b"}])
    with pytest.raises(DataError, match="2 usable rows, too few for train / validation / test splits"):
        prepare(CausalLMData(dataset=f))
    f = write_jsonl(tmp_path / "d3.jsonl", [{"text": t} for t in "abc"])
    assert [len(s) for s in (lambda s: (s.train, s.val, s.test))(prepare(CausalLMData(dataset=f)))] == [1, 1, 1]
    with pytest.raises(DataError, match="too few"):
        prepare(CausalLMData(dataset=f, test_fraction=0.9))


def test_records_fingerprint_and_round_trip(tmp_path):
    rows = Rows([{"prompt": "Traduis : « été »", "completion": "summer", "source": "été"},
                 {"messages": chat(("user", "日本"), ("assistant", "Japan"))}, {"text": "plain"}],
                "x", [1, 2, 3], ["a", "b", "c"])
    assert rows.texts == ["Traduis : « été »\nsummer", "日本\nJapan", "plain"]
    write_split(rows, tmp_path / "val.jsonl")
    raw = (tmp_path / "val.jsonl").read_text(encoding="utf-8")
    assert "« été »" in raw and "日本" in raw  # not \u-escaped
    back = read_rows(tmp_path / "val.jsonl")
    assert back.records() == rows.records() and back.fingerprint() == rows.fingerprint()
    assert back.lines == [1, 2, 3] and back.source == str(tmp_path / "val.jsonl")
    # Order-sensitive, key-order-insensitive, and the records are copies.
    assert rows.subset([1, 0, 2]).fingerprint() != rows.fingerprint()
    assert Rows([{"completion": "summer", "source": "été", "prompt": "Traduis : « été »"}] + rows.rows[1:],
                "y", [1, 2, 3]).fingerprint() == rows.fingerprint()
    rows.records()[0]["prompt"] = "changed"
    assert rows.rows[0]["prompt"] == "Traduis : « été »"
    sub = rows.subset([2, 0])
    assert sub.rows == [rows.rows[2], rows.rows[0]] and sub.lines == [3, 1] and sub.groups == ["c", "a"]
