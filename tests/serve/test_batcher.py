"""The micro-batching queue with a stand-in engine: what gets batched together, limits, timeouts."""

import asyncio
import time

import pytest

from lorakit.infer.engine import UnknownAdapter
from lorakit.serve.batcher import Batcher, QueueFull


class FakeEngine:
    def __init__(self, delay=0.0):
        self.adapters = {"a": None, "b": None, "c": None}
        self.batches = []
        self.delay = delay

    def classify(self, items):
        self.batches.append(list(items))
        time.sleep(self.delay)
        return [{"label": f"{name}:{text}"} for name, text in items]

    def unknown(self, name):
        return UnknownAdapter(name, sorted(self.adapters))


def run(coro):
    return asyncio.run(coro)


async def with_batcher(engine, body, **kw):
    b = Batcher(engine, kw.pop("max_batch", 64), kw.pop("max_wait_s", 0.05), kw.pop("max_queue", 100), **kw)
    b.start()
    try:
        return await body(b)
    finally:
        await b.stop()


def test_concurrent_requests_for_different_adapters_share_one_forward_pass():
    engine = FakeEngine()

    async def body(b):
        return await asyncio.gather(*(b.submit(name, [f"t{i}", f"u{i}"], 5) for i, name in enumerate("abcabc")))

    results = run(with_batcher(engine, body))
    assert len(engine.batches) == 1 and len(engine.batches[0]) == 12
    assert {name for name, _ in engine.batches[0]} == {"a", "b", "c"}
    assert results[4] == [{"label": "b:t4"}, {"label": "b:u4"}]  # each request gets its own rows back


def test_batches_are_capped_and_a_large_request_is_split_in_order():
    engine = FakeEngine()

    async def body(b):
        return await b.submit("a", [str(i) for i in range(10)], 5)

    results = run(with_batcher(engine, body, max_batch=4))
    assert [len(x) for x in engine.batches] == [4, 4, 2]
    assert [r["label"] for r in results] == [f"a:{i}" for i in range(10)]


def test_naive_mode_runs_one_request_per_forward_pass():
    engine = FakeEngine()

    async def body(b):
        return await asyncio.gather(*(b.submit(name, ["x"], 5) for name in "abab"))

    run(with_batcher(engine, body, mixed=False))
    assert [len(x) for x in engine.batches] == [1, 1, 1, 1]


def test_full_queue_refuses_and_timeouts_drop_the_waiting_texts():
    engine = FakeEngine(delay=0.3)

    async def body(b):
        first = asyncio.ensure_future(b.submit("a", ["1"], 5))
        await asyncio.sleep(0.1)  # the first batch is now running for 0.3 s
        with pytest.raises(QueueFull):
            await b.submit("a", ["x"] * 101, 5)
        with pytest.raises(TimeoutError):
            await b.submit("b", ["late"], 0.05)
        assert b.depth == 1  # still queued, but abandoned
        await first
        await asyncio.sleep(0.05)
        assert b.depth == 0
        return await b.submit("c", ["next"], 5)

    assert run(with_batcher(engine, body, max_wait_s=0.0)) == [{"label": "c:next"}]
    assert all(name != "b" for batch in engine.batches for name, _ in batch)  # the timed-out text never ran


def test_a_deleted_adapter_fails_its_request_only():
    engine = FakeEngine()

    async def body(b):
        ok = b.submit("a", ["x"], 5)
        gone = b.submit("b", ["y"], 5)
        del engine.adapters["b"]
        return await asyncio.gather(ok, gone, return_exceptions=True)

    ok, gone = run(with_batcher(engine, body))
    assert ok == [{"label": "a:x"}]
    assert isinstance(gone, UnknownAdapter) and gone.loaded == ["a", "c"]


def test_after_batch_runs_in_the_engine_thread_after_each_forward_pass():
    import threading

    engine, seen = FakeEngine(), []

    async def body(b):
        await b.submit("a", ["x"], 5)
        await b.submit("b", ["y"], 5)

    run(with_batcher(engine, body, max_wait_s=0.0, after_batch=lambda: seen.append(threading.current_thread().name)))
    assert len(seen) == 2 and all(name.startswith("lorakit-engine") for name in seen)


def test_heap_trimmer_gives_freed_heap_pages_back():
    """Freed blocks between live ones stay in the process (glibc cannot shrink the heap past them);
    the trimmer returns their pages: resident memory falls by most of what was freed."""
    import ctypes.util
    import subprocess
    import sys

    if ctypes.util.find_library("c") is None or "glibc" not in " ".join(__import__("platform").libc_ver()):
        pytest.skip("malloc_trim is glibc's")
    code = """
import re
from lorakit.serve.memory import heap_trimmer
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+) kB", open("/proc/self/status").read())[1]) // 1024
blocks = [bytearray(1000) for _ in range(200_000)]
kept = blocks[::50]
del blocks
before = rss()
heap_trimmer()()
print(before, rss())
"""
    before, after = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout.split())
    assert before - after > 100, (before, after)  # MB: most of the ~200 MB freed
