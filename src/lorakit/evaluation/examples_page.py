"""A generation run's scores and examples, side by side, as a Markdown page and an HTML page.

Scores say which system is better; the examples say how: reading twenty outputs next to the
reference shows what the numbers miss. The HTML page is one self-contained file (inline CSS, no
script, nothing fetched) and every text in it is escaped: sources and outputs are untrusted.
"""

import html
import math
from pathlib import Path

from rich.markup import escape as rich_escape

METRIC_LABELS = {"rougeL": "ROUGE-L", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "bleu": "BLEU", "chrf": "chrF",
                 "exact_match": "exact match", "perplexity": "perplexity", "loss": "loss"}
LOWER_IS_BETTER = {"perplexity", "loss"}
SOURCE_CHARS = 400  # of a source shown in the examples table; the HTML page keeps the full text folded


def format_table(scores: dict[str, dict[str, float]], metrics: list[str]) -> list[list[str]]:
    """The scores table as rows of strings for rich (header first): the best of each column in bold."""
    header, rows, best = _cells(scores, metrics)
    return [[rich_escape(h) for h in header]] + [
        [f"[bold]{rich_escape(c)}[/bold]" if (i, j) in best else rich_escape(c) for j, c in enumerate(row)]
        for i, row in enumerate(rows)]


def write_pages(out_dir: Path, title: str, scores: dict[str, dict[str, float]], examples: list[dict],
                systems: list[str], n: int = 20, metrics: list[str] | None = None) -> dict[str, Path]:
    """Write ``out_dir``/report.md and report.html; return their paths under "md" and "html".

    ``examples``: one dict per row, {"source", "reference", "outputs": {system: text}}, in split order;
    ``n`` of them are shown, spread evenly over the split (see pick). ``metrics``: the score columns;
    None shows every known metric present in ``scores`` except the loss (perplexity says the same).
    """
    metrics = metrics or [m for m in METRIC_LABELS if m != "loss" and any(m in s for s in scores.values())]
    shown = pick(len(examples), n)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["md"].write_text(markdown_page(title, scores, metrics, examples, shown, systems), encoding="utf-8")
    paths["html"].write_text(html_page(title, scores, metrics, examples, shown, systems), encoding="utf-8")
    return paths


def pick(total: int, n: int) -> list[int]:
    """``n`` row indices spread evenly over ``total`` rows, first row included: a split saved in its
    source's order (Bible books, news categories) is then shown from beginning to end, not just its
    first part. Deterministic, so two runs on the same split show the same rows."""
    if total <= n:
        return list(range(total))
    return [i * total // n for i in range(n)]


def shorten(text: str, limit: int = SOURCE_CHARS) -> str:
    """``text`` cut to about ``limit`` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.8 else cut).rstrip() + "…"


def _cells(scores: dict[str, dict[str, float]], metrics: list[str]) -> tuple[list[str], list[list[str]], set]:
    """Header, one row of plain strings per system, and the (row, column) cells that hold a column's best
    (several on a tie; none where fewer than two systems have the score)."""
    systems = list(scores)
    header = ["system"] + [METRIC_LABELS.get(m, m) for m in metrics]
    rows = [[s] + [_number(scores[s].get(m)) for m in metrics] for s in systems]
    best = set()
    for j, m in enumerate(metrics, start=1):
        values = {i: scores[s][m] for i, s in enumerate(systems) if m in scores[s] and not math.isnan(scores[s][m])}
        if len(values) < 2:
            continue
        top = (min if m in LOWER_IS_BETTER else max)(values.values())
        best |= {(i, j) for i, v in values.items() if v == top}
    return header, rows, best


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _note(metrics: list[str], shown: int, total: int) -> str:
    lower = [METRIC_LABELS.get(m, m) for m in metrics if m in LOWER_IS_BETTER]
    scale = "Scores are 0-100, higher is better" + (f"; {', '.join(lower)}: lower is better" if lower else "")
    spread = f"{shown} of {total} rows, spread evenly over the split" if shown < total else f"all {total} rows"
    return f"{scale}; the best of each column is in bold. Examples: {spread}."


# Markdown

def markdown_page(title: str, scores: dict, metrics: list[str], examples: list[dict], shown: list[int],
                  systems: list[str]) -> str:
    header, rows, best = _cells(scores, metrics)
    lines = [f"# {_md(title)}", "", "## Scores", "", _md_row(header), _md_row(["---"] * len(header))]
    lines += [_md_row([f"**{_md(c)}**" if (i, j) in best else _md(c) for j, c in enumerate(row)])
              for i, row in enumerate(rows)]
    lines += ["", _md(_note(metrics, len(shown), len(examples))), "", "## Examples", ""]
    cols = ["row", "source", "reference", *systems]
    lines += [_md_row([_md(c) for c in cols]), _md_row(["---"] * len(cols))]
    for i in shown:
        e = examples[i]
        outputs = [_md_output(e["outputs"].get(s)) for s in systems]
        lines.append(_md_row([str(i + 1), _md(shorten(e["source"])), _md(e["reference"]), *outputs]))
    return "\n".join(lines) + "\n"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_output(text: str | None) -> str:
    return "—" if text is None else _md(text) if text.strip() else "*(empty)*"


def _md(text: str) -> str:
    """Text safe in a Markdown table cell: HTML escaped (renderers pass raw HTML through), Markdown's
    inline marks and the cell separator backslash-escaped, line breaks as <br>."""
    text = html.escape(text, quote=False)
    for ch in "\\`*_[]|":
        text = text.replace(ch, "\\" + ch)
    return "<br>".join(text.splitlines())


# HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.4em 0.6em; vertical-align: top; text-align: left; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text { white-space: pre-wrap; max-width: 28em; }
.empty, .missing { color: #999; font-style: italic; }
summary { color: #555; cursor: pointer; }
"""


def html_page(title: str, scores: dict, metrics: list[str], examples: list[dict], shown: list[int],
              systems: list[str]) -> str:
    header, rows, best = _cells(scores, metrics)
    score_rows = "".join(
        "<tr>" + "".join(_html_score_cell(c, j, (i, j) in best) for j, c in enumerate(row)) + "</tr>\n"
        for i, row in enumerate(rows))
    cols = ["row", "source", "reference", *systems]
    example_rows = "".join(_html_example(i, examples[i], systems) for i in shown)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n<h2>Scores</h2>\n"
            f"<table>\n<tr>{''.join(f'<th>{html.escape(h)}</th>' for h in header)}</tr>\n{score_rows}</table>\n"
            f"<p>{html.escape(_note(metrics, len(shown), len(examples)))}</p>\n<h2>Examples</h2>\n"
            f"<table>\n<tr>{''.join(f'<th>{html.escape(c)}</th>' for c in cols)}</tr>\n{example_rows}</table>\n"
            "</body>\n</html>\n")


def _html_score_cell(text: str, column: int, bold: bool) -> str:
    body = f"<strong>{html.escape(text)}</strong>" if bold else html.escape(text)
    return f"<td>{body}</td>" if column == 0 else f'<td class="num">{body}</td>'


def _html_example(i: int, e: dict, systems: list[str]) -> str:
    source = e["source"]
    short = shorten(source)
    cell = html.escape(short)
    if short != source:
        cell += f"<details><summary>full text</summary>{html.escape(source)}</details>"
    cells = [f'<td class="num">{i + 1}</td>', f'<td class="text">{cell}</td>',
             f'<td class="text">{html.escape(e["reference"])}</td>']
    cells += [f'<td class="text">{_html_output(e["outputs"].get(s))}</td>' for s in systems]
    return "<tr>" + "".join(cells) + "</tr>\n"


def _html_output(text: str | None) -> str:
    if text is None:
        return '<span class="missing">—</span>'
    return html.escape(text) if text.strip() else '<span class="empty">(empty)</span>'
