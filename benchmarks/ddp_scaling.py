"""Data-parallel scaling: training samples/s with 1 and with N processes (torchrun underneath).

    python benchmarks/ddp_scaling.py [--examples 1000] [--nproc 2]

On a CPU machine each process gets cores/N threads (1 each on 2 cores); on a GPU machine each
process gets one GPU. Writes benchmarks/results/ddp_scaling.json with both rates and the
scaling efficiency (rate_N / (N x rate_1)).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402


def run(nproc: int, examples: int, threads: int, tmp: str, model_dir: str) -> dict:
    name = f"p{nproc}"
    cmd = [sys.executable, "-m", "lorakit", "train", str(Path(__file__).parents[1] / "recipes/tweets-sentiment.yaml"),
           f"name={name}", f"out_dir={tmp}", f"base={model_dir}", f"data.limit={examples}", "data.val_limit=200",
           "data.test_limit=200", "train.epochs=1", f"train.threads={threads}", "--quiet", "--json",
           "--nproc", str(nproc)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if out.returncode != 0:
        sys.exit(out.stderr[-3000:])
    m = json.loads((Path(tmp) / name / "metrics.json").read_text())
    h = m["history"][0]
    return {"processes": m["processes"], "samples_per_s": h["train_samples_per_s"], "val_accuracy": h["val_accuracy"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--nproc", type=int, default=2)
    a = ap.parse_args()
    import torch

    from lorakit.store.sources import ALIASES, package_dir

    model_dir = str(package_dir(*ALIASES["minilm"]))
    per_process = 1 if torch.cuda.is_available() else max(1, (os.cpu_count() or 1) // a.nproc)
    with tempfile.TemporaryDirectory() as tmp:
        one = run(1, a.examples, per_process, tmp, model_dir)
        many = run(a.nproc, a.examples, per_process, tmp, model_dir)
    result = {"examples": a.examples, "threads_per_process": per_process, "one": one, "many": many,
              "speedup": many["samples_per_s"] / one["samples_per_s"],
              "efficiency": many["samples_per_s"] / (a.nproc * one["samples_per_s"])}
    print(json.dumps({k: result[k] for k in ("speedup", "efficiency")}))
    print(f"written: {write_result('ddp_scaling', result)}")


if __name__ == "__main__":
    main()
