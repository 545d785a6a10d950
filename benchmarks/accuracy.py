"""Full-data accuracy of the shipped recipes, next to the TF-IDF baselines on the same test split.

    python benchmarks/accuracy.py tweets-sentiment [key=value ...]
    python benchmarks/accuracy.py bbc-news

Long runs (tens of minutes to hours on 2 CPU cores): each trains with checkpoints, so an
interrupted run continues with the same command. The run folder is accuracy-NAME under
lorakit-bench/runs in the system temp dir (``out_dir=DIR`` puts it elsewhere, e.g. on a disk that
survives a reboot); full_finetune.py reads its splits from there. Appends to
benchmarks/results/accuracy.json.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, SCRATCH, write_result  # noqa: E402

RECIPES = Path(__file__).parents[1] / "recipes"


def main() -> None:
    from lorakit.evaluation.report import evaluate
    from lorakit.training.loop import train

    name, overrides = sys.argv[1], sys.argv[2:]
    # Where the run goes is not part of the result: out_dir is taken out of the recorded overrides.
    out_dir = next((o.split("=", 1)[1] for o in overrides if o.startswith("out_dir=")), str(SCRATCH / "runs"))
    overrides = [o for o in overrides if not o.startswith("out_dir=")]
    run = Path(out_dir) / f"accuracy-{name}"
    started = time.time()
    if (run / "checkpoint").is_dir() and not (run / "metrics.json").is_file():
        metrics = train(resume=run)
    else:
        metrics = train(RECIPES / f"{name}.yaml", [f"name={run.name}", f"out_dir={out_dir}", *overrides],
                        overwrite=True)
    result = evaluate(run, "test", with_baselines=True)
    previous = RESULTS / "accuracy.json"
    runs = json.loads(previous.read_text())["runs"] if previous.is_file() else {}
    runs[name] = {
        **({"full_finetune": runs[name]["full_finetune"]} if "full_finetune" in runs.get(name, {}) else {}),
        "recipe": f"recipes/{name}.yaml", "overrides": overrides, "train_examples": metrics["examples"]["train"],
        "test_examples": result["n"], "test_accuracy": result["accuracy"], "test_macro_f1": result["macro_f1"],
        "trainable_percent": metrics["parameters"]["trainable_percent"], "best_epoch": metrics["best_epoch"],
        "wall_seconds_this_invocation": time.time() - started, "baselines": result["baselines"],
        "precision": metrics.get("precision", "fp32"),
    }
    print(json.dumps(runs[name], indent=2))
    print(f"written: {write_result('accuracy', {'runs': runs})}")


if __name__ == "__main__":
    main()
