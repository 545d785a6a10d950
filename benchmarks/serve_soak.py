"""A soak run of the server: concurrent clients, malformed requests mixed in, memory watched.

    python benchmarks/serve_soak.py [--work DIR] [--rounds 16] [--requests 500]

Starts `lorakit serve` with the 8 adapters of serve_throughput.py (built in WORK, default:
lorakit-bench in the system temp dir) and sends rounds of requests
from 32 concurrent clients; about one in six is malformed (broken JSON, wrong types, an unknown
adapter, too many texts, an oversized text, an empty list, invalid UTF-8, a wrong method).
After each round it records the status codes and the server's resident memory. Passes when no
request got a 5xx or no answer, the server is still up, and memory grew by less than 5% over
the second half of the rounds. (It rises over the first ~2,000 requests, as oneDNN caches a
kernel per new batch shape, up to 1,024 of them, and the heap reaches its high-water mark;
``ONEDNN_PRIMITIVE_CACHE_CAPACITY=16`` cut that plateau from ~1,390 to ~970 MB here.)
Writes benchmarks/results/serve_soak.json.
"""

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import RESULTS, SCRATCH, command, relative, write_json  # noqa: E402
from predict_throughput import machine, prepare, test_split  # noqa: E402
from serve_throughput import start_server, variants  # noqa: E402

MALFORMED = [
    ("POST", "/v1/classify", b'{"adapter": "a0", "texts": ['),                   # broken JSON
    ("POST", "/v1/classify", b'{"adapter": "a0", "texts": "not a list"}'),       # wrong type
    ("POST", "/v1/classify", b'{"adapter": "nobody", "texts": ["hi"]}'),         # unknown adapter
    ("POST", "/v1/classify", json.dumps({"adapter": "a0", "texts": ["x"] * 10_000}).encode()),  # too many
    ("POST", "/v1/classify", json.dumps({"adapter": "a0", "texts": ["y" * 200_000]}).encode()),  # too long
    ("POST", "/v1/classify", b'{"adapter": "a0", "texts": []}'),                 # empty
    ("POST", "/v1/classify", b'{"adapter": "a0", "texts": ["\xff\xfe"]}'),       # invalid UTF-8
    ("POST", "/v1/classify", b"[1, 2, 3]"),                                      # not an object
    ("GET", "/v1/classify", b""),                                                # wrong method
    ("POST", "/v1/adapters", b'{"name": "../../etc/passwd"}'),                   # a path, not a store name
]


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def round_of(url: str, texts: list[str], names: list[str], requests: int, clients: int, seed: int) -> Counter:
    rng = random.Random(seed)
    plan = [rng.choice(MALFORMED) if rng.random() < 1 / 6 else
            ("POST", "/v1/classify", json.dumps({"adapter": rng.choice(names),
                                                 "texts": rng.sample(texts, rng.randint(1, 4))}).encode())
            for _ in range(requests)]
    statuses: Counter = Counter()

    async def client(http: httpx.AsyncClient, mine: list):
        for method, path, body in mine:
            try:
                r = await http.request(method, path, content=body, headers={"content-type": "application/json"})
                statuses[r.status_code] += 1
            except httpx.HTTPError:
                statuses[0] += 1  # no answer

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(http, plan[i::clients]) for i in range(clients)))
    return statuses


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", default=str(SCRATCH), help="scratch folder, reused between runs (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=16)
    p.add_argument("--requests", type=int, default=500, help="requests per round")
    p.add_argument("--clients", type=int, default=32)
    a = p.parse_args()

    work = Path(a.work)
    run = prepare(work, 2000)
    texts, _ = test_split(run, 2000)
    adapters = variants(run, work, 8)
    names = [f"a{i}" for i in range(8)]
    proc, url = start_server(adapters, 0, [])
    started_mb = rss_mb(proc.pid)
    rounds = []
    try:
        for i in range(a.rounds):
            started = time.perf_counter()
            statuses = asyncio.run(round_of(url, texts, names, a.requests, a.clients, seed=i))
            rounds.append({"round": i + 1, "seconds": round(time.perf_counter() - started, 2),
                           "statuses": {str(k): v for k, v in sorted(statuses.items())},
                           "rss_mb": round(rss_mb(proc.pid), 1)})
            print(rounds[-1], flush=True)
        alive = proc.poll() is None and httpx.get(url + "/healthz", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    bad = sum(v for r in rounds for k, v in r["statuses"].items() if k == "0" or k.startswith("5"))
    half = rounds[len(rounds) // 2 - 1]["rss_mb"]
    growth = rounds[-1]["rss_mb"] / half - 1
    result = {
        "benchmark": "serve_soak",
        "command": command(),
        "machine": machine(),
        "setup": {"base": "minilm", "adapters": 8, "clients": a.clients, "rounds": a.rounds,
                  "requests_per_round": a.requests, "malformed_share": round(1 / 6, 3),
                  "malformed_kinds": len(MALFORMED)},
        "rss_mb_at_start": round(started_mb, 1),
        "rounds": rounds,
        "requests": sum(sum(r["statuses"].values()) for r in rounds),
        "5xx_or_no_answer": bad,
        "server_alive_after": alive,
        "rss_growth_second_half": round(growth, 4),
        "passed": bad == 0 and alive and growth < 0.05,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = write_json(RESULTS / "serve_soak.json", result)
    print(f"{result['requests']} requests, {bad} 5xx or unanswered, server alive: {alive}, "
          f"memory {started_mb:.0f} MB at start, {half:.0f} -> {rounds[-1]['rss_mb']:.0f} MB over the second half; "
          f"written: {relative(out)}")
    if not result["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
