"""Training on a shared CPU: the old default thread setup against the new one, with and without
other processes busy on the same cores, side by side in one run, same data.

    python benchmarks/train_under_load.py [--examples 320] [--rounds 2]

Sides, each a `lorakit train` process of one epoch on the same tweets-sentiment subset:

- old: all cores as torch threads, OpenMP's default spin-waiting (GOMP_SPINCOUNT=300000 is
  libgomp's default when no wait policy is set; giving it explicitly keeps this side the old one
  once the command line bounds the spin itself);
- new: what the command line does with ``lorakit.training.threads``: bound the spin before torch
  loads, then take the thread count from the cores that other processes leave free.

Loads: none; one busy process (one core taken); two (both cores taken, the reported case); and one
busy process that starts only after the new side has chosen its threads (a load that arrives later:
only the spin bound helps there). A busy process is a Python loop, killed when the side ends.

Each round runs every case once, rounds interleave, and the median is reported. Each case also
records how many cores processes outside this benchmark kept busy meanwhile: on a shared machine
that is the noise. Writes benchmarks/results/train_under_load.json.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SCRATCH, write_result  # noqa: E402

RECIPE = Path(__file__).parents[1] / "recipes" / "tweets-sentiment.yaml"
OLD_SPIN = "300000"

# The new default, as the command line runs it: bound the spin first (before torch is imported),
# then choose the threads; the choice goes to stderr as one JSON line before training starts.
NEW_DRIVER = """
import json, sys
from lorakit.training.threads import bound_openmp_spin, choose_threads
bound_openmp_spin()
n, warning = choose_threads(None, 1)
print(json.dumps({"threads": n, "warning": warning}), file=sys.stderr, flush=True)
from lorakit.cli import main
sys.exit(main([*sys.argv[1:], f"train.threads={n}"]))
"""

BUSY = "import time\nend = time.time() + 900\nwhile time.time() < end: pass"

CASES = [  # (name, side, busy processes, the load starts after the thread choice)
    ("quiet_old", "old", 0, False),
    ("quiet_new", "new", 0, False),
    ("one_busy_old", "old", 1, False),
    ("one_busy_new", "new", 1, False),
    ("two_busy_old", "old", 2, False),
    ("two_busy_new", "new", 2, False),
    ("one_busy_later_new", "new", 1, True),
]


def busy_seconds() -> float:
    """CPU seconds all processes have used since boot (every core, from /proc/stat)."""
    ticks = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_case(side: str, busy: int, later: bool, args: list[str], cores: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    if side == "old":
        cmd = [sys.executable, "-m", "lorakit", "train", *args, f"train.threads={cores}"]
        env["GOMP_SPINCOUNT"] = OLD_SPIN
    else:
        cmd = [sys.executable, "-c", NEW_DRIVER, "train", *args]
    start, machine0, children0 = time.perf_counter(), busy_seconds(), children_seconds()
    loads = [] if later else [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
    time.sleep(0.5 if loads else 0)  # the busy loops are running before training starts
    try:
        train = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        choice = json.loads(train.stderr.readline()) if side == "new" else {"threads": cores, "warning": None}
        if later:
            loads = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
        before = children_seconds()
        out, err = train.communicate()
        train_cpu = children_seconds() - before
    finally:
        for p in loads:
            p.kill()
            p.wait()
    wall = time.perf_counter() - start
    if train.returncode != 0:
        sys.exit(f"{side} side failed:\n{err[-3000:]}")
    h = json.loads(out.strip().splitlines()[-1])["history"][0]
    elsewhere = (busy_seconds() - machine0 - (children_seconds() - children0)) / wall
    return {"samples_per_s": round(h["train_samples_per_s"], 2), "threads": choice["threads"],
            "warning": choice["warning"], "process_cpu_s": round(train_cpu, 1),
            "train_s": round(h["train_seconds"], 1), "val_accuracy": h["val_accuracy"],
            "busy_elsewhere_cores": round(max(0.0, elsewhere), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    from lorakit.store.sources import ALIASES, package_dir
    from lorakit.training.threads import SPIN_COUNT, usable_cores

    cores = usable_cores()
    model_dir = str(package_dir(*ALIASES["minilm"]))
    SCRATCH.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {name: [] for name, *_ in CASES}
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        for r in range(a.rounds):
            for name, side, busy, later in CASES:
                args = [str(RECIPE), f"name={name}", f"out_dir={tmp}", f"base={model_dir}",
                        f"data.limit={a.examples}", "data.val_limit=64", "data.test_limit=64",
                        "train.epochs=1", "--overwrite", "--quiet", "--json"]
                res = run_case(side, busy, later, args, cores)
                runs[name].append(res)
                print(f"round {r + 1} {name:20s} {res['samples_per_s']:7.1f} samples/s  threads {res['threads']}  "
                      f"cpu {res['process_cpu_s']:5.1f} s  elsewhere {res['busy_elsewhere_cores']}", flush=True)
    rate = {name: round(statistics.median(x["samples_per_s"] for x in rs), 2) for name, rs in runs.items()}
    import torch

    backend = [line for line in torch.__config__.parallel_info().splitlines() if "parallel backend" in line]
    result = {
        "examples": a.examples, "rounds": a.rounds, "cores": cores,
        "torch_parallel_backend": backend[0].split(":", 1)[1].strip() if backend else None,
        "old": f"train.threads={cores}, GOMP_SPINCOUNT={OLD_SPIN} (libgomp's default)",
        "new": f"GOMP_SPINCOUNT={SPIN_COUNT} set before torch loads, threads from the cores left free",
        "samples_per_s_median": rate,
        "ratios": {k: round(v, 3) for k, v in {
            "quiet_new_over_old": rate["quiet_new"] / rate["quiet_old"],
            "one_busy_old_over_quiet": rate["one_busy_old"] / rate["quiet_old"],
            "one_busy_new_over_old": rate["one_busy_new"] / rate["one_busy_old"],
            "two_busy_old_over_quiet": rate["two_busy_old"] / rate["quiet_old"],
            "two_busy_new_over_old": rate["two_busy_new"] / rate["two_busy_old"],
            "one_busy_later_new_over_old": rate["one_busy_later_new"] / rate["one_busy_old"],
        }.items()},
        "runs": runs,
    }
    print(json.dumps(result["ratios"]))
    print(f"written: {write_result('train_under_load', result)}")


if __name__ == "__main__":
    main()
