"""lorakit predict: texts classified, one JSON line each."""

import json
import sys

from lorakit.cli.output import err
from lorakit.errors import LorakitError

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
    predictor = load(a.run, a.batch_size, quantize=a.quantize, precision=a.precision)
    if a.quantize:
        from lorakit.infer.quality import int8_report

        r = int8_report(a.run, a.batch_size)
        err.print(f"int8: test accuracy {r['int8_accuracy']:.4f} vs fp32 {r['fp32_accuracy']:.4f} "
                  f"(change {r['change']:+.4f}; same label as fp32 for {r['agreement']:.1%} of {r['n']} texts)",
                  highlight=False)
    # The bar goes to stderr and only on a terminal: stdout stays clean JSON lines.
    bar = Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err, transient=True, disable=a.quiet or not err.is_terminal or (total or 0) < 2 * a.batch_size)
    with bar:
        task = bar.add_task("predict", total=total)
        for text, p in predictor.predict_stream(texts):
            print(json.dumps({"text": text, **p}, ensure_ascii=False))
            bar.advance(task)


def register(sub) -> None:
    s = sub.add_parser("predict", help="classify texts: one JSON line per input")
    s.add_argument("run", help="run folder (e.g. runs/demo) or an installed adapter's name")
    s.add_argument("texts", nargs="*", metavar="TEXT")
    s.add_argument("--file", help="a .txt (one text per line), .csv or .jsonl file")
    s.add_argument("--text-column", default="text", help="column or field of --file holding the text")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--quantize", choices=["int8"], help="dynamic int8 quantization (CPU); reports the test accuracy change")
    s.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 on CPUs with native bf16, close calls decided in fp32 (same labels as fp32)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_predict, trailing="texts")
