"""Batch prediction throughput: lorakit's predictor vs a transformers pipeline over the PEFT model.

    python benchmarks/predict_throughput.py [--work DIR] [--n 2000]

Installs minilm into WORK/home and trains a small tweets-sentiment adapter there the first
time (a minute or two on 2 cores; WORK defaults to lorakit-bench in the system temp dir and is
reused by the serving benchmarks), then classifies the same N test tweets both ways with the
same batch size and threads, and writes benchmarks/results/predict_throughput.json.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
warnings.filterwarnings("ignore")

from common import RESULTS, SCRATCH, command, relative, write_json  # noqa: E402


def machine() -> dict:
    import torch

    flags = set()
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"]
    return {"cores": os.cpu_count(), "cpu_flags": [f for f in wanted if f in flags], "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version()}


def prepare(work: Path, n_test: int) -> Path:
    """WORK/home with minilm installed and WORK/runs/bench-2k trained on 2,000 tweets (reused when present)."""
    os.environ["LORAKIT_HOME"] = str(work / "home")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lorakit.errors import StoreError
    from lorakit.store import install_model, model_dir

    try:
        model_dir("minilm")
    except StoreError:
        install_model("minilm")
    run = work / "runs" / "bench-2k"
    if not (run / "adapter" / "lorakit.json").is_file() or sum(1 for _ in open(run / "data" / "test.jsonl")) < n_test:
        from lorakit.training.loop import train

        print(f"training a small adapter into {run} ...", flush=True)
        train(overrides={"name": "bench-2k", "out_dir": str(work / "runs"), "base": "minilm",
                         "data.dataset": "tweets-sentiment", "data.limit": 2000, "data.val_limit": 200,
                         "data.test_limit": n_test, "train.epochs": 1}, overwrite=True, show_progress=False)
    return run


def test_split(run: Path, n: int) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in open(run / "data" / "test.jsonl")][:n]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", default=str(SCRATCH), help="scratch folder, reused between runs (default: %(default)s)")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from lorakit.model.load import quiet_transformers

    quiet_transformers()  # no load reports or bars in the output, for both sides
    run = prepare(Path(a.work), a.n)
    texts, gold = test_split(run, a.n)

    from lorakit.infer.predictor import load
    from lorakit.model.adapters import resolve as load_info
    from lorakit.store import model_dir
    from reference import predict_pipeline as reference

    info = load_info(run)
    clf = reference.build(model_dir(info.base), info.path, info.labels, a.batch_size)
    reference.predict(clf, texts[:a.batch_size], info.max_length)  # warm-up, both sides
    ref_labels, ref_s = timed(lambda: reference.predict(clf, texts, info.max_length))
    clf = None  # free its memory before the next side

    ours = load(run, a.batch_size)  # the default: precision "auto"
    ours.predict(texts[:a.batch_size])  # the same warm-up as the other sides; the bf16 calibration goes on
    ours.rows = ours.rows_fp32 = 0
    our_results, our_s = timed(lambda: ours.predict(texts))
    our_labels = [r["label"] for r in our_results]
    our_precision, fp32_rows = ours.precision, ours.rows_fp32 / ours.rows
    ours = None

    exact = load(run, a.batch_size, precision="fp32")
    exact.predict(texts[:a.batch_size])
    exact_results, exact_s = timed(lambda: exact.predict(texts))
    exact_labels = [r["label"] for r in exact_results]
    prob_diff = max(abs(x["probs"][k] - y["probs"][k]) for x, y in zip(our_results, exact_results) for k in x["probs"])
    exact = None

    q = load(run, a.batch_size, quantize="int8")
    q.predict(texts[:a.batch_size])
    q_results, q_s = timed(lambda: q.predict(texts))
    q_labels = [r["label"] for r in q_results]

    def accuracy(labels):
        return sum(x == y for x, y in zip(labels, gold)) / len(gold)

    n = len(texts)
    result = {
        "benchmark": "predict_throughput",
        "command": command(),
        "machine": machine(),
        "texts": n, "batch_size": a.batch_size, "threads": a.threads,
        "base": "minilm (all-MiniLM-L6-v2)", "adapter": f"{info.meta.get('method')} on tweets-sentiment",
        "reference": {"what": "transformers pipeline('text-classification') over the PEFT model, default settings",
                      "texts_per_s": n / ref_s, "seconds": ref_s, "accuracy": accuracy(ref_labels)},
        "lorakit": {"what": "lorakit.load(run).predict as shipped: merged adapter, length-sorted batches, "
                            "inference_mode, precision auto (bf16 where the CPU has it, close calls in fp32)",
                    "precision": our_precision, "rows_computed_in_fp32": fp32_rows,
                    "texts_per_s": n / our_s, "seconds": our_s, "accuracy": accuracy(our_labels),
                    "max_prob_difference_vs_fp32": prob_diff},
        "ratio": ref_s / our_s,
        "same_predictions": sum(x == y for x, y in zip(ref_labels, our_labels)) / n,
        "lorakit_fp32": {"what": "lorakit.load(run, precision='fp32')", "texts_per_s": n / exact_s,
                         "ratio_vs_reference": ref_s / exact_s, "accuracy": accuracy(exact_labels),
                         "same_predictions": sum(x == y for x, y in zip(ref_labels, exact_labels)) / n},
        "int8": {"what": "lorakit predict --quantize int8 (dynamic, CPU), reported separately",
                 "texts_per_s": n / q_s, "ratio_vs_reference": ref_s / q_s, "accuracy": accuracy(q_labels),
                 "accuracy_change_vs_fp32": accuracy(q_labels) - accuracy(exact_labels),
                 "same_predictions_as_fp32": sum(x == y for x, y in zip(q_labels, exact_labels)) / n},
        "goal": "lorakit >= 3x the reference's texts/s, same predictions",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = write_json(RESULTS / "predict_throughput.json", result)
    print(json.dumps({k: result[k] for k in ("ratio", "same_predictions")} |
                     {"reference_texts_per_s": result["reference"]["texts_per_s"],
                      "lorakit_texts_per_s": result["lorakit"]["texts_per_s"],
                      "int8_texts_per_s": result["int8"]["texts_per_s"],
                      "int8_accuracy_change": result["int8"]["accuracy_change_vs_fp32"]}, indent=2))
    print(f"written: {relative(out)}")


if __name__ == "__main__":
    main()
