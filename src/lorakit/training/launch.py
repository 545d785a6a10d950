"""`lorakit train --nproc N`: start N training processes through torchrun (PyTorch's launcher).

The same command line runs in every process; torchrun sets RANK / WORLD_SIZE / MASTER_ADDR and
stops all processes when one fails. Multi-node runs use torchrun's own rendezvous.
"""

import os
import subprocess
import sys

from lorakit.errors import LorakitError


def in_launched_process() -> bool:
    return "LOCAL_RANK" in os.environ


def launch(argv: list[str], nproc: int, nnodes: str | None = None, node_rank: int | None = None,
           rdzv_endpoint: str | None = None, run_hint: str = "RUN") -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes:
        cmd += [f"--nnodes={nnodes}"]
    if rdzv_endpoint:
        cmd += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    elif node_rank is not None:
        cmd += [f"--node-rank={node_rank}"]
    cmd += ["-m", "lorakit", "train", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))}
    try:
        code = subprocess.run(cmd, env=env).returncode
    except KeyboardInterrupt:  # the processes got the same Ctrl-C and save a checkpoint
        code = 130
    if code == 130 or code == -2:
        raise KeyboardInterrupt
    if code != 0:
        raise LorakitError(f"training stopped: a process of the {nproc}-process run failed (exit code {code})",
                           f"see its message above; continue with: lorakit train --resume {run_hint}")
