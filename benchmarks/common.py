"""Shared by the benchmarks: the machine description and result writing."""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    import torch

    flags = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = line.split(":", 1)[1]
                break
    except OSError:
        pass
    interesting = ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma"]
    return {
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_flags": [f for f in interesting if f in flags.split()],
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def matmul_gflops(threads: int, n: int = 1024, seconds: float = 2.0, dtype: str = "float32") -> float:
    """n×n matmul throughput sustained over ``seconds``: the machine's practical peak for dense work
    (fp32 unless told). Sustained, like the training it is compared with: a burst of a few
    milliseconds catches a quiet moment of a shared machine that a whole epoch does not get."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n).to(getattr(torch, dtype)), torch.randn(n, n).to(getattr(torch, dtype))
    for _ in range(3):
        a @ b
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        a @ b
        done += 1
    return 2 * n**3 * done / elapsed / 1e9


def run_json(cmd: list[str], env: dict | None = None) -> dict:
    """Run a side in its own process (own peak RSS) and read the JSON line it prints last."""
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {"benchmark": name, "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "date": time.strftime("%Y-%m-%d"), "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
