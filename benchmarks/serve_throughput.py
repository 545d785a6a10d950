"""Server throughput with many adapters: one merged adapter vs 8 adapters in mixed batches vs switching per request.

    python benchmarks/serve_throughput.py [--work DIR] [--requests 800] [--clients 32]

Starts `lorakit serve` on 127.0.0.1 three times and drives it with a bounded load generator
(a fixed request count and a time limit, one tweet per request, 32 concurrent clients):
  (a) one adapter, merged into the base, all traffic on it;
  (b) 8 adapters, traffic spread evenly, mixed-adapter batches;
  (c) 8 adapters, the naive way: one request per forward pass, switching the active adapter.
Each scenario is measured after a 320-request warm-up (the bf16 calibration happens there).
The 8 adapters are the benchmark's trained adapter plus 7 copies with seeded noise on their
LoRA and head weights: same shapes and cost as separately trained ones, different outputs.
The store, the trained run and the copies live in WORK (default: lorakit-bench in the system
temp dir, shared with predict_throughput.py and serve_soak.py). Writes benchmarks/results/serve_throughput.json.
"""

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import RESULTS, SCRATCH, command, relative, write_json  # noqa: E402
from predict_throughput import machine, prepare, test_split  # noqa: E402

from lorakit.serve.run import default_threads  # noqa: E402


def variants(run: Path, work: Path, k: int) -> list[Path]:
    import torch
    from safetensors.torch import load_file, save_file

    out = [run / "adapter"]
    for i in range(1, k):
        d = work / "variants" / f"a{i}"
        if not (d / "adapter_model.safetensors").is_file():
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(run / "adapter", d)
            g = torch.Generator().manual_seed(i)
            weights = load_file(d / "adapter_model.safetensors")
            weights = {n: w + 0.5 * w.std() * torch.randn(w.shape, generator=g) for n, w in weights.items()}
            save_file(weights, d / "adapter_model.safetensors")
        out.append(d)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(adapters: list[Path], threads: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "lorakit", "serve", "--base", "minilm", "--port", str(port), *extra]
    if threads:
        cmd += ["--threads", str(threads)]
    for i, d in enumerate(adapters):
        cmd += ["--adapter", f"a{i}={d}"]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


async def drive(url: str, texts: list[str], names: list[str], requests: int, clients: int, limit_s: float) -> dict:
    """Fixed number of requests, bounded by time; returns throughput and latency percentiles."""
    latencies, statuses = [], []
    next_i = 0
    rng = random.Random(0)
    picks = [(names[i % len(names)], rng.choice(texts)) for i in range(requests)]
    stop_at = time.monotonic() + limit_s

    async def client(http: httpx.AsyncClient):
        nonlocal next_i
        while next_i < requests and time.monotonic() < stop_at:
            name, text = picks[next_i]
            next_i += 1
            t = time.perf_counter()
            try:
                r = await http.post("/v1/classify", json={"adapter": name, "texts": [text]})
                statuses.append(r.status_code)
            except httpx.HTTPError:
                statuses.append(0)
            latencies.append(time.perf_counter() - t)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - started
    latencies.sort()
    ok = statuses.count(200)

    def pct(q):
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {"requests": len(statuses), "ok": ok, "errors": len(statuses) - ok, "seconds": seconds,
            "texts_per_s": ok / seconds, "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def scenario(label, adapters, traffic_names, extra, texts, a) -> dict:
    proc, url = start_server(adapters, a.threads, extra)
    try:
        # Warm-up: 320 requests, so that the steady state is measured: each pool's first 256 texts
        # also run in fp32 to calibrate bf16 (lorakit.infer.precision).
        asyncio.run(drive(url, texts, traffic_names, 320, a.clients, 60))
        r = asyncio.run(drive(url, texts, traffic_names, a.requests, a.clients, a.limit_s))
        r["metrics_batches"] = batch_summary(httpx.get(url + "/metrics").text)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"{label}: {r['texts_per_s']:.1f} texts/s, p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms "
          f"({r['ok']}/{r['requests']} ok)", flush=True)
    return r


def batch_summary(metrics: str) -> dict:
    vals = {}
    for line in metrics.splitlines():
        for key in ("lorakit_batch_texts_sum", "lorakit_batch_texts_count", "lorakit_batch_adapters_sum"):
            if line.startswith(key + " "):
                vals[key] = float(line.split()[1])
    count = vals.get("lorakit_batch_texts_count") or 1
    return {"forward_passes": int(count), "mean_texts_per_pass": vals.get("lorakit_batch_texts_sum", 0) / count,
            "mean_adapters_per_pass": vals.get("lorakit_batch_adapters_sum", 0) / count}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", default=str(SCRATCH), help="scratch folder, reused between runs (default: %(default)s)")
    p.add_argument("--requests", type=int, default=800)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--adapters", type=int, default=8)
    p.add_argument("--threads", type=int, help="server torch threads (default: the server's own default)")
    p.add_argument("--limit-s", type=float, default=60, help="time limit per scenario")
    a = p.parse_args()

    work = Path(a.work)
    run = prepare(work, 2000)
    texts, _ = test_split(run, 2000)
    adapters = variants(run, work, a.adapters)
    names = [f"a{i}" for i in range(a.adapters)]

    res = {
        "a_one_merged": scenario("(a) one merged adapter", adapters[:1], ["a0"], [], texts, a),
        "b_mixed": scenario(f"(b) {a.adapters} adapters, mixed batches", adapters, names, [], texts, a),
        "c_switch": scenario(f"(c) {a.adapters} adapters, switch per request", adapters, names,
                             ["--no-mixed-batches"], texts, a),
    }
    result = {
        "benchmark": "serve_throughput",
        "command": command(),
        "machine": machine(),
        "setup": {"base": "minilm", "adapters": a.adapters, "clients": a.clients, "requests": a.requests,
                  "texts_per_request": 1, "time_limit_s": a.limit_s, "server_threads": a.threads or default_threads(),
                  "max_batch": 64, "max_wait_ms": 5, "host": "127.0.0.1"},
        "results": res,
        "ratio_b_over_a": res["b_mixed"]["texts_per_s"] / res["a_one_merged"]["texts_per_s"],
        "ratio_b_over_c": res["b_mixed"]["texts_per_s"] / res["c_switch"]["texts_per_s"],
        "goal": "(b) >= 0.8x (a) and (b) >= 3x (c)",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = write_json(RESULTS / "serve_throughput.json", result)
    print(f"b/a = {result['ratio_b_over_a']:.2f}, b/c = {result['ratio_b_over_c']:.2f}; written: {relative(out)}")


if __name__ == "__main__":
    main()
