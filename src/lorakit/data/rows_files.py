"""Generation rows from a user's .jsonl / .json / .csv / .parquet file, in one of five formats.

  prompt-completion  prompt, completion (and an optional source: the raw input, for baselines)
  messages           a chat: a list of {role, content} (in CSV and Parquet also a JSON string)
  alpaca             instruction, input (optional), output -> prompt = instruction + blank line + input
  source-target      source, target -> prompt = the prompt template with the source in it
  text               plain text (continued pretraining)

Column names are the recipe's (``columns`` maps each role above to the file's column). Rows that
cannot be trained on are bad rows: reported with their line numbers, or skipped and counted.
"""

import json
from pathlib import Path

from lorakit.data.files import SUFFIXES, file_rows
from lorakit.data.rows import Rows
from lorakit.errors import DataError

ROLES = ("system", "user", "assistant")
# The columns each format needs; ``auto`` takes the first format whose columns are all there.
REQUIRED = {
    "messages": ("messages",),
    "prompt-completion": ("prompt", "completion"),
    "alpaca": ("instruction", "output"),
    "source-target": ("source", "target"),
    "text": ("text",),
}
SHOWN_BAD = 5  # bad rows named in the error; the rest are counted


class _Bad(ValueError):
    """A row that cannot be used; the message says why."""


def _text(value, what: str) -> str:
    """A cell as text: numbers read as written, a missing cell as empty; anything else is a bad row."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Bad(f"{what} is not text")


def _required(value, what: str) -> str:
    text = _text(value, what)
    if not text.strip():
        raise _Bad(f"empty {what}")
    return text


def _prompt_completion(raw: dict, cols: dict, template: str) -> dict:
    row = {"prompt": _required(raw.get(cols["prompt"]), "prompt"),
           "completion": _required(raw.get(cols["completion"]), "completion")}
    source = _text(raw.get(cols["source"]), "source")
    if source.strip():
        row["source"] = source
    return row


def _turns(value) -> list:
    if isinstance(value, str):  # CSV cells and some Parquet files hold the conversation as JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _Bad("messages is not valid JSON") from None
    if not isinstance(value, list) or not value:
        raise _Bad("messages is not a list of turns")
    return value


def _messages(raw: dict, cols: dict, template: str) -> dict:
    turns = []
    for m in _turns(raw.get(cols["messages"])):
        if not isinstance(m, dict):
            raise _Bad("a turn is not an object with role and content")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise _Bad(f"unknown role {role!r}")
        if not isinstance(content, str):
            raise _Bad(f"{role} turn with non-string content")
        turns.append({"role": role, "content": content})  # other keys (name, tool calls) are not trained on
    answers = [t["content"] for t in turns if t["role"] == "assistant"]
    if not answers:
        raise _Bad("no assistant turn")
    if not any(a.strip() for a in answers):
        raise _Bad("empty assistant turn")
    return {"messages": turns}


def _alpaca(raw: dict, cols: dict, template: str) -> dict:
    instruction = _required(raw.get(cols["instruction"]), "instruction")
    extra = _text(raw.get(cols["input"]), "input")
    output = _required(raw.get(cols["output"]), "output")
    return {"prompt": instruction + ("\n\n" + extra if extra.strip() else ""), "completion": output}


def _source_target(raw: dict, cols: dict, template: str) -> dict:
    source = _required(raw.get(cols["source"]), "source")
    target = _required(raw.get(cols["target"]), "target")
    # replace, not str.format: a template may hold other braces (JSON, code) that are plain text
    return {"prompt": template.replace("{source}", source), "completion": target, "source": source}


def _plain(raw: dict, cols: dict, template: str) -> dict:
    return {"text": _required(raw.get(cols["text"]), "text")}


MAKERS = {"messages": _messages, "prompt-completion": _prompt_completion, "alpaca": _alpaca,
          "source-target": _source_target, "text": _plain}


def _json_array(path: Path) -> list[tuple[int, dict | None]] | None:
    """The items of a .json file holding one JSON array (how Alpaca-style data is often shipped); None for JSON lines."""
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(4096).lstrip()
        if not head.startswith("["):
            return None
        text = head + f.read()
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})", "give a JSON array of objects, or one JSON object per line") from None
    return [(n, item if isinstance(item, dict) else None) for n, item in enumerate(items, 1)]


def _numbered_rows(path: Path) -> tuple[list[tuple[int, dict | None]], str]:
    """Every row with its line number (the item number in a JSON array: the unit says which)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {path.suffix.lower()!r}", f"use one of {', '.join(SUFFIXES)}")
    items = _json_array(path) if path.suffix.lower() == ".json" else None
    if items is not None:
        return items, "item"
    return list(file_rows(path)), "line"


def _accepted(cols: dict) -> str:
    return "; ".join(f"{fmt}: {' + '.join(cols[r] for r in roles)}" for fmt, roles in REQUIRED.items())


def choose_format(fmt: str, found: list[str], cols: dict, path: Path) -> str:
    """The format named, its columns checked; or, for ``auto``, the first one whose columns are all found."""
    if fmt == "auto":
        fmt = next((f for f, roles in REQUIRED.items() if all(cols[r] in found for r in roles)), None)
        if fmt is None:
            raise DataError(f"{path}: cannot tell the format from the columns {', '.join(found) or '(none)'} "
                            f"(accepted: {_accepted(cols)})",
                            "rename the columns, or set data.format and the data.*_column keys")
        return fmt
    missing = [r for r in REQUIRED[fmt] if cols[r] not in found]
    if missing:
        raise DataError(f"{path}: no column {cols[missing[0]]!r} for data.format={fmt}",
                        f"columns are: {', '.join(found)}; set data.{missing[0]}_column")
    return fmt


def _report(path: Path, bad: list[tuple[int, str]], unit: str) -> None:
    shown = "; ".join(f"{unit} {n}: {why}" for n, why in bad[:SHOWN_BAD])
    more = f"; and {len(bad) - SHOWN_BAD} more" if len(bad) > SHOWN_BAD else ""
    raise DataError(f"{path}: {len(bad)} bad row{'s' * (len(bad) > 1)} ({shown}{more})",
                    "fix them, or set data.on_bad_rows=skip to skip and count them")


def read_generation_file(path: Path, fmt: str, cols: dict[str, str], template: str, on_bad_rows: str) -> Rows:
    """Rows of ``path`` in format ``fmt`` (or ``auto``: from the columns of the first row)."""
    numbered, unit = _numbered_rows(path)
    first = next((row for _, row in numbered if row is not None), None)
    if first is None:
        raise DataError(f"{path}: no rows" if not numbered else f"{path}: no row is a JSON object",
                        "give one JSON object per line, or a CSV / Parquet file with a header")
    make = MAKERS[choose_format(fmt, [k for k in first if k is not None], cols, path)]
    rows, lines, bad = [], [], []
    for n, raw in numbered:
        try:
            if raw is None:
                raise _Bad("not a JSON object")
            rows.append(make(raw, cols, template))
            lines.append(n)
        except _Bad as e:
            bad.append((n, str(e)))
    if bad and on_bad_rows == "error":
        _report(path, bad, unit)
    if not rows:
        raise DataError(f"{path}: no usable rows ({len(bad)} bad)", "fix the rows, or check data.format and the data.*_column keys")
    return Rows(rows, str(path), lines, skipped=len(bad))
