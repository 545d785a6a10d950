"""lorakit eval: a run scored on its held-out split, with baselines."""

import json
from pathlib import Path

from lorakit.cli.output import out, table

def cmd_eval(a) -> None:
    from lorakit.evaluation.report import evaluate

    r = evaluate(a.run, a.split, a.batch_size, with_baselines=a.baselines)
    if a.json:
        print(json.dumps(r, ensure_ascii=False))
        return
    if r.get("task") == "causal-lm":
        _print_generation(a, r)
        return
    t = table("label", "precision", "recall", "f1", "support", title=f"{a.run} — {a.split} split, {r['n']} examples")
    for name, s in r["per_class"].items():
        t.add_row(name, f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}", str(s["support"]))
    out.print(t)
    out.print(f"accuracy {r['accuracy']:.4f}   macro-F1 {r['macro_f1']:.4f}")
    if a.baselines:
        t = table("model", "accuracy", "macro-F1", title="the adapter against simple baselines (same split)")
        t.add_row(f"lorakit adapter ({Path(a.run).name})", f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}")
        for name, s in r["baselines"].items():
            t.add_row(name, f"{s['accuracy']:.4f}", f"{s['macro_f1']:.4f}")
        out.print(t)
        out.print(r["verdict"], highlight=False)
    out.print(f"written: {Path(a.run) / f'eval_{a.split}.json'}, {Path(a.run) / 'plots' / f'confusion_{a.split}.png'}")


def _print_generation(a, r: dict) -> None:
    from lorakit.evaluation.examples_page import format_table

    rows = format_table(r["systems"], r["metrics"])
    t = table(*rows[0], title=f"{a.run} — {a.split} split, {r['n']} examples, greedy, at most {r['max_new_tokens']} new tokens")
    for row in rows[1:]:
        t.add_row(*row)
    out.print(t)
    out.print(f"written: {Path(a.run) / f'eval_{a.split}.json'}, {r['pages']['html']}, {r['pages']['md']}")


def register(sub) -> None:
    s = sub.add_parser("eval", help="score a run on its held-out split")
    s.add_argument("run", help="run folder, e.g. runs/demo")
    s.add_argument("--split", default="test", help="test (default) or val")
    s.add_argument("--baselines", action="store_true",
                   help="also score baselines: majority class and TF-IDF (classification); the base model "
                        "without the adapter and a task baseline (generation)")
    s.add_argument("--batch-size", type=int, help="texts (classification: 128) or prompts (generation: 8) per batch")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)
