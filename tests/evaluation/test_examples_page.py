from html.parser import HTMLParser

from rich.console import Console

from lorakit.evaluation.examples_page import format_table, pick, shorten, write_pages

SCORES = {
    "adapter": {"rougeL": 41.237, "rouge1": 45.0, "perplexity": 12.5, "loss": 2.53},
    "base (zero-shot)": {"rougeL": 20.0, "rouge1": 45.0, "perplexity": 30.25, "loss": 3.41},
    "first 8 words": {"rougeL": 30.0, "rouge1": 33.3},
}
SYSTEMS = list(SCORES)


def _examples(count: int) -> list[dict]:
    return [{"source": f"article {i}", "reference": f"headline {i}",
             "outputs": {"adapter": f"adapter says {i}", "base (zero-shot)": "", "first 8 words": f"article {i}"}}
            for i in range(count)]


class _Cells(HTMLParser):
    """The text of every table row of an HTML page, cell by cell, as a browser would show it."""

    def __init__(self):
        super().__init__()
        self.rows, self.tags, self.in_cell = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.in_cell = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.in_cell = False

    def handle_data(self, data):
        if self.in_cell:
            self.rows[-1][-1] += data


def _parse(text: str) -> _Cells:
    p = _Cells()
    p.feed(text)
    return p


def test_format_table_bolds_the_best_of_each_column():
    rows = format_table(SCORES, ["rougeL", "rouge1", "perplexity"])
    assert rows[0] == ["system", "ROUGE-L", "ROUGE-1", "perplexity"]
    assert rows[1] == ["adapter", "[bold]41.24[/bold]", "[bold]45.00[/bold]", "[bold]12.50[/bold]"]  # lowest perplexity
    assert rows[2] == ["base (zero-shot)", "20.00", "[bold]45.00[/bold]", "30.25"]  # a tie: both bold
    assert rows[3] == ["first 8 words", "30.00", "33.30", "—"]


def test_format_table_prints_through_rich_without_markup_leaking():
    rows = format_table({"[x] model": {"bleu": 1.0}, "other": {"bleu": 2.0}}, ["bleu"])
    console = Console(width=200, record=True, color_system=None)
    for row in rows:
        console.print(" | ".join(row))
    text = console.export_text()
    assert "[x] model | 1.00" in text and "other | 2.00" in text and "[bold]" not in text


def test_a_column_with_one_score_has_no_best():
    assert format_table({"a": {"bleu": 3.0}, "b": {}}, ["bleu"])[1:] == [["a", "3.00"], ["b", "—"]]


def test_pick_spreads_the_examples_evenly():
    assert pick(100, 20) == list(range(0, 100, 5))
    assert pick(7, 3) == [0, 2, 4]
    assert pick(5, 20) == [0, 1, 2, 3, 4]


def test_shorten_cuts_at_a_word_with_an_ellipsis():
    assert shorten("short text") == "short text"
    long = "word " * 200
    cut = shorten(long)
    assert cut.endswith("word…") and len(cut) <= 401 and long.startswith(cut[:-1])


def test_write_pages_scores_and_spread_examples(tmp_path):
    paths = write_pages(tmp_path / "eval_test", "demo — test split", SCORES, _examples(50), SYSTEMS, n=10)
    assert paths == {"md": tmp_path / "eval_test/report.md", "html": tmp_path / "eval_test/report.html"}
    md = paths["md"].read_text(encoding="utf-8")
    assert "| adapter | **41.24** | **45.00** | **12.50** |" in md  # loss left out: perplexity says the same
    assert "| system | ROUGE-L | ROUGE-1 | perplexity |" in md
    assert "| 6 | article 5 | headline 5 | adapter says 5 | *(empty)* | article 5 |" in md  # row index 5, shown 1-based
    assert "10 of 50 rows" in md and "headline 7" not in md

    cells = _parse(paths["html"].read_text(encoding="utf-8")).rows
    assert cells[0] == ["system", "ROUGE-L", "ROUGE-1", "perplexity"]
    assert cells[1] == ["adapter", "41.24", "45.00", "12.50"]
    assert cells[4] == ["row", "source", "reference", *SYSTEMS]
    assert [r[0] for r in cells[5:]] == [str(i + 1) for i in range(0, 50, 5)]
    assert cells[6] == ["6", "article 5", "headline 5", "adapter says 5", "(empty)", "article 5"]


def test_write_pages_escapes_untrusted_text(tmp_path):
    evil = "<script>alert('x')</script> A & B | C *bold*"
    examples = [{"source": evil, "reference": "R <b>", "outputs": {"adapter": "line 1\nline | 2"}}]
    paths = write_pages(tmp_path, "<title>", {"adapter": {"bleu": 1.0}}, examples, ["adapter"])
    page = paths["html"].read_text(encoding="utf-8")
    parsed = _parse(page)
    assert "<script" not in page and "<b>" not in page
    assert set(parsed.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "table", "tr", "th",
                                "td", "p", "span", "strong", "details", "summary"}  # nothing that loads or runs
    assert parsed.rows[-1] == ["1", evil, "R <b>", "line 1\nline | 2"]  # shown exactly as written

    md = paths["md"].read_text(encoding="utf-8")
    assert "<script" not in md and "&lt;script&gt;" in md
    row = md.splitlines()[-1]
    assert row.replace("\\|", "").count("|") == 5  # four cells: the texts' own bars are escaped
    assert "line 1<br>line \\| 2" in row


def test_a_long_source_is_shortened_and_kept_whole_in_details(tmp_path):
    source = " ".join(f"w{i}" for i in range(300))
    examples = [{"source": source, "reference": "r", "outputs": {"adapter": "o"}}]
    paths = write_pages(tmp_path, "t", {"adapter": {"bleu": 1.0}}, examples, ["adapter"])
    page = paths["html"].read_text(encoding="utf-8")
    assert f"<details><summary>full text</summary>{source}</details>" in page
    assert shorten(source) in page and shorten(source).endswith("…")
    assert source not in paths["md"].read_text(encoding="utf-8")
