"""Command line: one module per group of verbs (store, train, evaluate, predict, generate, serve, export), each a
``register`` that adds its parsers and one plain function per verb; parsing and printing only.

Errors: a LorakitError is one line ``error: ... — next: ...`` and exit code 1; usage errors exit 2
(argparse); anything else is a bug and keeps its traceback.
"""

import argparse

from rich.text import Text

from lorakit import __version__
from lorakit.cli import evaluate, export, generate, output, predict, serve, store, train
from lorakit.errors import LorakitError, TrainingInterrupted
from lorakit.training.threads import bound_openmp_spin

GROUPS = (store, train, evaluate, predict, generate, export, serve)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lorakit", description="Install, fine-tune, evaluate and use LoRA adapters.")
    p.add_argument("--version", action="version", version=f"lorakit {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    bound_openmp_spin()  # before torch loads: OpenMP reads its spin setting once (training/threads.py)
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
    err = output.err
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


__all__ = ["build_parser", "main"]
