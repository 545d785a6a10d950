"""lorakit train: a recipe (or --resume RUN), in one process or several through torchrun."""

import json
from pathlib import Path

from lorakit.cli.output import out, plural
from lorakit.errors import LorakitError

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
    skipped = f"; {plural(ex['skipped_bad_rows'], 'bad row')} skipped" if ex["skipped_bad_rows"] else ""
    out.print(f"examples: {ex['train']:,} train, {ex['val']:,} validation, {ex['test']:,} test{skipped}",
              highlight=False)
    out.print(f"run folder: {m['run']}  (adapter/, metrics.json, tb/, plots/)", highlight=False)
    out.print(f"next: lorakit eval {m['run']}")


def register(sub) -> None:
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
