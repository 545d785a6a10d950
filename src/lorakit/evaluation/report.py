"""`lorakit eval`: score a run on one of its saved splits; write JSON and a confusion-matrix PNG."""

import json
from pathlib import Path

from lorakit import tasks
from lorakit.data import read_split
from lorakit.errors import RunError
from lorakit.evaluation.plots import confusion_matrix_png
from lorakit.infer.predictor import load
from lorakit.model.adapters import resolve
from lorakit.model.merged import read_merged
from lorakit.tasks.classification.metrics import classification_metrics

SPLITS = ("test", "val")


def evaluate(run: str | Path, split: str = "test", batch_size: int | None = None, with_baselines: bool = False) -> dict:
    """Scores of ``run`` on its saved ``split`` (eval_SPLIT.json in the run); ``batch_size``: the task's default
    when None (classification 128 texts, generation 8 prompts)."""
    run = Path(run)
    if split not in SPLITS:
        raise RunError(f"unknown split {split!r}", f"use one of: {', '.join(SPLITS)}")
    if read_merged(run) is not None:
        raise RunError(f"{run} is a merged model: lorakit eval scores a run on the split it held out",
                       "give the run folder the model was merged from (e.g. runs/NAME); "
                       "lorakit predict takes merged folders")
    path = run / "data" / f"{split}.jsonl"
    task = tasks.require(resolve(run).task, "eval")
    if not path.is_file():
        raise RunError(f"{run}: no saved {split} split ({path} missing)", "give a run folder written by lorakit train")
    if task.name == "causal-lm":
        from lorakit.evaluation.generation import evaluate_generation

        return evaluate_generation(run, path, split, batch_size or 8, with_baselines)
    predictor = load(run, batch_size or 128)
    table = read_split(path)
    unknown = set(table.labels) - set(predictor.labels)
    if unknown:
        raise RunError(f"{path}: labels {sorted(unknown)} are not the adapter's labels {predictor.labels}")
    index = {name: i for i, name in enumerate(predictor.labels)}
    y_pred = predictor.logits(table.texts).argmax(-1).tolist()
    result = classification_metrics([index[label] for label in table.labels], y_pred, predictor.labels)
    result["split"] = split
    result["run"] = str(run)
    if with_baselines:
        result["baselines"] = _baselines(run, table, predictor.labels)
        result["verdict"] = verdict(result, _vocabulary(run))
    (run / f"eval_{split}.json").write_text(json.dumps(result, indent=2))
    (run / "plots").mkdir(exist_ok=True)
    confusion_matrix_png(result["confusion_matrix"], predictor.labels, run / "plots" / f"confusion_{split}.png",
                         f"{run.name} — {split} (accuracy {result['accuracy']:.3f})")
    return result


def _baselines(run: Path, table, labels: list[str]) -> dict:
    """Baselines fitted on the run's training and validation splits (rebuilt from its config: splits are
    seeded); they select nothing on validation data, so they may as well learn from it."""
    from lorakit.config import load_config
    from lorakit.evaluation.baselines import baselines

    cfg = load_config(run / "config.yaml")
    splits = tasks.get(cfg.task).prepare(cfg.data)
    scores = baselines(splits.train.texts + splits.val.texts, splits.train.labels + splits.val.labels,
                       table.texts, table.labels, labels)
    return {name: {k: s[k] for k in ("accuracy", "macro_f1")} for name, s in scores.items()}


def verdict(result: dict, vocabulary: dict) -> str:
    """One sentence: does the adapter beat the best baseline, and if not, the likely reason."""
    name, best = max(result["baselines"].items(), key=lambda kv: kv[1]["accuracy"])
    gap = result["accuracy"] - best["accuracy"]
    if gap >= 0:
        return f"the adapter scores {gap:+.4f} accuracy above the best baseline ({name})"
    why = (f": the base model knows few of the data's words (it keeps {vocabulary['known_words']:.0%} of them whole), "
           "so a base in the data's language should do better" if vocabulary.get("warning") else
           ": more training data, epochs or a larger base may help")
    return f"the {name} baseline scores {-gap:.4f} accuracy above the adapter{why}"


def _vocabulary(run: Path) -> dict:
    try:
        return json.loads((run / "metrics.json").read_text()).get("vocabulary") or {}
    except (OSError, ValueError):
        return {}
