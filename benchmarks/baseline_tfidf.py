"""TF-IDF baselines on the built-in datasets, on the same stratified splits lorakit uses.

    python benchmarks/baseline_tfidf.py

Fits on the train + validation splits of each recipe (80% of the data, seed 0), scores on the
held-out test split; writes benchmarks/results/baseline_tfidf.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from lorakit.tasks.classification.data import prepare  # noqa: E402
from lorakit.config import load_config  # noqa: E402
from lorakit.evaluation.baselines import baselines  # noqa: E402

RECIPES = Path(__file__).parents[1] / "recipes"


def main() -> None:
    results = {}
    for name, limits in (("tweets-sentiment", [None, 4000]), ("bbc-news", [None])):
        for limit in limits:
            cfg = load_config(RECIPES / f"{name}.yaml", {"data.limit": limit})
            s = prepare(cfg.data)
            train_texts, train_labels = s.train.texts + s.val.texts, s.train.labels + s.val.labels
            if limit:  # the same number of training examples a `data.limit` run sees, stratified
                from lorakit.data.splits import stratified_take

                keep = stratified_take(list(range(len(train_texts))), train_labels, limit, 0)
                train_texts, train_labels = [train_texts[i] for i in keep], [train_labels[i] for i in keep]
            scores = baselines(train_texts, train_labels, s.test.texts, s.test.labels, s.label_names)
            key = name if limit is None else f"{name} ({limit} training examples)"
            results[key] = {"train_examples": len(train_texts), "test_examples": len(s.test),
                            **{m: {k: v[k] for k in ("accuracy", "macro_f1")} for m, v in scores.items()}}
            print(key, {m: round(v["accuracy"], 4) for m, v in scores.items()})
    print(f"written: {write_result('baseline_tfidf', {'results': results})}")


if __name__ == "__main__":
    main()
