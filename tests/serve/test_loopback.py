import pytest
"""A real uvicorn server on 127.0.0.1 under concurrent clients, malformed requests mixed in: no 5xx."""

import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import uvicorn

from lorakit.infer.engine import Engine
from lorakit.model.adapters import resolve
from lorakit.serve.app import create_app
from lorakit.serve.settings import Settings

REQUESTS, CLIENTS = 1000, 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_1000_requests_from_16_clients_no_5xx(tiny_adapters):
    engine = Engine(str(tiny_adapters["base"]))
    for n in ("plain", "flipped", "binary"):
        engine.add(n, resolve(tiny_adapters[n]))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine, Settings(max_texts=8)), host="127.0.0.1", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started

    def request(i: int, http: httpx.Client) -> tuple[int, int, bool]:
        rng = random.Random(i)
        kind = rng.random()
        if kind < 0.1:  # malformed JSON
            r = http.post("/v1/classify", content=b'{"adapter": ["', headers={"content-type": "application/json"})
            return i, r.status_code, r.status_code == 422
        if kind < 0.15:  # unknown adapter
            r = http.post("/v1/classify", json={"adapter": "nope", "texts": ["x"]})
            return i, r.status_code, r.status_code == 404
        if kind < 0.2:  # too many texts
            r = http.post("/v1/classify", json={"adapter": "plain", "texts": ["x"] * 9})
            return i, r.status_code, r.status_code == 422
        adapter = rng.choice(["plain", "flipped", "binary"])
        texts = [" ".join(rng.choices(["good", "bad", "the", "movie", "fun", "sad"], k=rng.randint(1, 8)))
                 for _ in range(rng.randint(1, 4))]
        r = http.post("/v1/classify", json={"adapter": adapter, "texts": texts})
        ok = r.status_code == 200 and len(r.json()["results"]) == len(texts)
        return i, r.status_code, ok

    try:
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) for _ in range(CLIENTS)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(lambda i: request(i, clients[i % CLIENTS]), range(REQUESTS)))
        metrics = clients[0].get("/metrics").text
        for c in clients:
            c.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    statuses = [s for _, s, _ in results]
    assert not [s for s in statuses if s >= 500]
    assert all(ok for _, _, ok in results)
    assert statuses.count(200) > 0.7 * REQUESTS
    assert "lorakit_queue_texts 0.0" in metrics
