"""Install benchmark: `lorakit install minilm` (hash + copy + fsync + atomic rename) against a plain
`cp -r` of the same 90 MB folder, side by side in one run, plus a re-install of identical content.

    python benchmarks/install.py [--trials 5]

Goals: first install <= 1.5x the copy; re-install < 5% of the first install.
Writes benchmarks/results/install.json.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command, write_json  # noqa: E402
from lorakit.store import install_model  # noqa: E402
from lorakit.store.sources import ALIASES, package_dir  # noqa: E402


def machine() -> dict:
    flags = ""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":")[1]
    except (OSError, StopIteration):
        pass
    wanted = ("avx2", "avx512f", "sha_ni", "amx_bf16")
    return {"cores": os.cpu_count(), "cpu_flags": [f for f in wanted if f in flags.split()],
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def durable_copy(src: Path, dst: Path) -> None:
    """cp -r, then fsync every copied file and folder (coreutils sync FILE...): what the store guarantees."""
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    subprocess.run(["sync", str(dst), *map(str, dst.rglob("*"))], check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=7)
    args = ap.parse_args()
    module, subdir, pip_name = ALIASES["minilm"]
    src = package_dir(module, subdir, pip_name)
    size = sum(f.stat().st_size for f in src.rglob("*") if f.is_file())
    # Under the system temp dir (or $BENCH_DIR: put it on the file system you mean to measure).
    work = Path(tempfile.mkdtemp(prefix="lorakit-bench-", dir=os.environ.get("BENCH_DIR")))
    cp, cp_sync, first, again, cli_first = [], [], [], [], []
    try:
        for t in range(args.trials):  # interleaved, so both sides see the same machine state
            cp.append(timed(lambda: subprocess.run(["cp", "-r", str(src), str(work / f"cp{t}")], check=True)))
            cp_sync.append(timed(lambda: durable_copy(src, work / f"cps{t}")))
            os.environ["LORAKIT_HOME"] = str(work / f"home{t}")
            first.append(timed(lambda: install_model("minilm")))
            again.append(timed(lambda: install_model("minilm")))
            env = {**os.environ, "LORAKIT_HOME": str(work / f"cli{t}"),
                   "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
            cli_first.append(timed(lambda: subprocess.run([sys.executable, "-m", "lorakit", "install", "minilm"],
                                                          env=env, check=True, capture_output=True)))
            for d in (f"cp{t}", f"cps{t}", f"home{t}", f"cli{t}"):
                shutil.rmtree(work / d)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    result = {
        "command": command(),
        "machine": machine(),
        "source": f"minilm (pip:{pip_name}/{subdir}), {size / 1e6:.1f} MB",  # the package, not where it lies
        "trials": args.trials,
        "cp_r_s": round(med(cp), 4),
        "cp_r_sync_s": round(med(cp_sync), 4),
        "install_s": round(med(first), 4),
        "reinstall_s": round(med(again), 4),
        "install_cli_s": round(med(cli_first), 4),
        "ratio_install_vs_cp": round(med(first) / med(cp), 3),
        "ratio_reinstall_vs_install": round(med(again) / med(first), 4),
        "ratio_install_cli_vs_cp": round(med(cli_first) / med(cp), 3),
        "ratio_install_vs_cp_sync": round(med(first) / med(cp_sync), 3),
        "goals": {"install_vs_cp_max": 1.5, "reinstall_vs_install_max": 0.05},
        "notes": "medians of interleaved trials; install = lorakit.store.install_model (sha256 of every file, "
                 "copy into blobs, fsync, hard links, atomic rename); cp -r does no hashing and no fsync; cp_r_sync = "
                 "cp -r then sync of every copied file (durable, unhashed); "
                 "install_cli_s adds the Python start-up of the lorakit command.",
        "all_s": {"cp_r": cp, "cp_r_sync": cp_sync, "install": first, "reinstall": again, "install_cli": cli_first},
    }
    print(json.dumps({k: v for k, v in result.items() if k not in ("all_s", "machine")}, indent=2))
    write_json(RESULTS / "install.json", result)


if __name__ == "__main__":
    main()
