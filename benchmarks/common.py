"""Shared by the benchmarks: the machine description, scratch space and result writing.

Results are published (README, benchmarks/results/*.json), so they record nothing of the machine's
file system: commands are written as run from the repository root, scratch locations are left out,
and ``write_json`` refuses a result that still holds an absolute path of this machine.
"""

import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCRATCH = Path(tempfile.gettempdir()) / "lorakit-bench"
"""Default home of what benchmarks build and reuse between runs (a store, trained runs, adapter
copies): under the system temp dir, never inside the repository."""
SCRATCH_OPTIONS = ("--work", "--runs", "--before")
"""Options that only say where files go (scratch, another checkout): left out of a recorded command."""


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


def relative(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies inside it; otherwise unchanged."""
    p = Path(path)
    if p.is_absolute() and p.resolve().is_relative_to(ROOT):
        return str(p.resolve().relative_to(ROOT))
    return str(path)


def command(argv: list[str] | None = None) -> str:
    """The command line a result records, as typed at the repository root: ``python``, the script
    relative to the root, arguments shell-quoted, scratch locations (``--work DIR``, ``--runs DIR``,
    ``out_dir=DIR``) left out: they change where files go, not what is measured."""
    argv = list(sys.argv if argv is None else argv)
    args, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg in SCRATCH_OPTIONS:
            skip = True
        elif arg.split("=", 1)[0] not in (*SCRATCH_OPTIONS, "out_dir"):
            args.append(relative(arg) if os.path.isabs(arg) else arg)
    return shlex.join(["python", relative(Path(argv[0]).resolve()), *args])


def machine_paths() -> list[str]:
    """Absolute paths of this machine that must not appear in a published result."""
    paths = {str(ROOT), sys.prefix, tempfile.gettempdir().rstrip("/") + "/", str(Path.home()).rstrip("/") + "/"}
    return sorted(p for p in paths if p not in ("", "/")) + ["site-packages"]


def write_json(path: Path, result: dict) -> Path:
    """Write a result file; if it records an absolute path of this machine, say so and exit with 1
    (after writing: a long measurement is not lost, but the field must be fixed before publishing)."""
    text = json.dumps(result, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    found = [p for p in machine_paths() if p in text]
    if found:
        sys.exit(f"{relative(path)} records {found[0]!r}, a path of this machine: make that field relative to "
                 "the repository root or leave it out (benchmarks/common.py: relative, command)")
    return path


def write_result(name: str, result: dict) -> Path:
    result = {"benchmark": name, "command": command(), "date": time.strftime("%Y-%m-%d"), "machine": machine(),
              **result}
    return write_json(RESULTS / f"{name}.json", result)
