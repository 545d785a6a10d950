import tarfile
from collections import Counter

import pytest

from lorakit.tasks.classification.data import ClassificationData as DataArgs, prepare
from lorakit.data.builtin import bbc_news, imdb, tweets_sentiment
from lorakit.data.files import read_file
from lorakit.data.splits import stratified_take
from lorakit.errors import DataError

from helpers import synthetic_rows, write_csv


def test_bad_rows_are_reported_with_line_numbers(tmp_path):
    rows = [("fine text", "positive"), ("", "negative"), ("no label", ""), ("multi\nline text", "positive"),
            ("odd label", "maybe")]
    path = write_csv(tmp_path / "d.csv", rows)
    with pytest.raises(DataError) as e:
        read_file(path, "text", "label", ["negative", "positive"], "error")
    msg = str(e.value)
    # Header is line 1; the multi-line row spans lines 5-6, so the unknown label is on line 7.
    assert "3 bad rows (line 3: empty text; line 4: missing label; line 7: unknown label 'maybe')" in msg
    assert "data.on_bad_rows=skip" in msg


def test_bad_rows_can_be_skipped_and_counted(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("a", "x"), ("", "y"), ("b", "y"), ("c", "")])
    table = read_file(path, "text", "label", None, "skip")
    assert table.texts == ["a", "b"] and table.labels == ["x", "y"] and table.skipped == 2


def test_missing_column_names_the_columns(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("a", "x")], header=("sentence", "label"))
    with pytest.raises(DataError, match="no column 'text'.*columns are: sentence, label"):
        read_file(path, "text", "label", None, "error")


def test_jsonl_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jl = tmp_path / "d.jsonl"
    jl.write_text('{"text": "a", "label": "x"}\nnot json\n\n{"text": "b", "label": 1}\n')
    with pytest.raises(DataError, match="line 2: not a JSON object"):
        read_file(jl, "text", "label", None, "error")
    t = read_file(jl, "text", "label", None, "skip")
    assert t.labels == ["x", "1"] and t.lines == [1, 4]
    pq.write_table(pa.table({"t": ["a", "b", ""], "y": ["p", "q", "p"]}), tmp_path / "d.parquet")
    t = read_file(tmp_path / "d.parquet", "t", "y", None, "skip")
    assert t.texts == ["a", "b"] and t.skipped == 1
    with pytest.raises(DataError, match="no column 'text'"):
        read_file(tmp_path / "d.parquet", "text", "y", None, "error")


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        read_file(tmp_path / "d.xlsx", "text", "label", None, "error")
    with pytest.raises(DataError, match="file not found"):
        prepare(DataArgs(dataset=str(tmp_path / "nope.csv")))


def test_splits_are_stratified_disjoint_and_seeded(tmp_path):
    path = write_csv(tmp_path / "d.csv", synthetic_rows(600))
    args = DataArgs(dataset=str(path), test_fraction=0.2, val_fraction=0.1, limit=300)
    a, b = prepare(args), prepare(args)
    assert a.test.texts == b.test.texts and a.train.texts == b.train.texts
    assert len(a.test) == 120 and len(a.val) == 48 and len(a.train) == 300
    for split in (a.train, a.val, a.test):
        counts = Counter(split.labels)
        assert max(counts.values()) - min(counts.values()) <= 1  # 1/3 each, as in the data
    assert not set(a.test.lines) & set(a.train.lines) and not set(a.val.lines) & set(a.train.lines)
    # The test split does not depend on train.limit: every run is scored on the same held-out rows.
    assert prepare(args.model_copy(update={"limit": 100})).test.lines == a.test.lines
    assert prepare(args.model_copy(update={"seed": 1})).test.lines != a.test.lines


def test_stratified_take_keeps_proportions():
    labels = ["a"] * 800 + ["b"] * 200
    taken = stratified_take(list(range(1000)), labels, 100, 0)
    assert Counter(labels[i] for i in taken) == {"a": 80, "b": 20}
    assert stratified_take(list(range(10)), labels, None, 0) == list(range(10))


def test_too_few_examples_for_a_split(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("a", "x"), ("b", "x"), ("c", "y")])
    with pytest.raises(DataError, match="too few examples to make a stratified test split"):
        prepare(DataArgs(dataset=str(path)))


def test_builtin_tweets_and_bbc():
    t = tweets_sentiment()
    assert len(t) == 38158 and Counter(t.labels) == {"negative": 16186, "neutral": 15018, "positive": 6954}
    b = bbc_news()
    assert len(b) == 2225 and set(b.labels) == {"business", "entertainment", "politics", "sports", "tech"}


def _fake_imdb(root):
    for split in ("train", "test"):
        for label, word in (("neg", "awful"), ("pos", "great")):
            d = root / "aclImdb" / split / label
            d.mkdir(parents=True)
            for i in range(6):
                (d / f"{i}_1.txt").write_text(f"a {word} film number {i}")
    return root / "aclImdb"


def test_imdb_from_folder_and_tarball(tmp_path):
    folder = _fake_imdb(tmp_path / "src")
    from_dir = imdb(str(folder))
    tgz = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(folder, arcname="aclImdb")
    from_tar = imdb(str(tgz))
    for t in (from_dir, from_tar):
        assert len(t) == 12 and len(t.test) == 12 and Counter(t.test.labels) == {"neg": 6, "pos": 6}
    assert sorted(from_dir.texts) == sorted(from_tar.texts)
    # The official test split is used as the test split.
    s = prepare(DataArgs(dataset="imdb", path=str(tgz), val_fraction=0.25))
    assert len(s.test) == 12 and len(s.train) + len(s.val) == 12


def test_imdb_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        imdb(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no train/neg/ folder"):
        imdb(str(tmp_path / "empty"))
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="not a readable tar archive"):
        imdb(str(tmp_path / "junk.tar.gz"))
    with pytest.raises(DataError, match="set data.path"):  # offline: the hub copy cannot be fetched
        imdb(None)
