"""The curl examples of docs/serving.md, run as written against a real server on 127.0.0.1: each answers 2xx.

Each group of curl lines goes to a server started like the doc's ``lorakit serve`` line above them
(the tiny base stands in for its base model): the adapters it names, and those the examples use,
are loaded at start; those the examples load with POST /v1/adapters are installed in the store.
Only the address changes: ``localhost:8000`` becomes the free port the server took.
"""

import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from lorakit.infer.engine import Engine
from lorakit.model.adapters import resolve
from lorakit.serve.app import create_app
from lorakit.serve.run import listen
from lorakit.serve.settings import Settings
from serve_helpers import install_adapter

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
ADDRESS = re.compile(r"(https?://)?(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(:\d+)?")
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"


def examples(markdown: str) -> list[tuple[str, list[str]]]:
    """(the `lorakit serve` line, the curl lines after it) for each server the doc starts, in order."""
    groups: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```bash\n(.*?)^```", markdown, re.M | re.S):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("lorakit serve"):
                groups.append((line, []))
            elif line.startswith("curl "):
                if not groups:
                    groups.append(("", []))
                groups[-1][1].append(line)
    return [g for g in groups if g[1]]


def adapter_names(serve_line: str, curls: list[str]) -> tuple[list[str], list[str]]:
    """Names loaded at start, and names the examples load from the store."""
    text = " ".join(curls)
    posted = re.findall(rf'"name"\s*:\s*"({NAME})"', text)
    used = re.findall(rf'"adapter"\s*:\s*"({NAME})"', text) + re.findall(rf"/v1/adapters/({NAME})", text)
    start = re.findall(rf"--adapter[ =]({NAME})", serve_line)
    start += [n for n in used if n not in posted and n not in start]
    return list(dict.fromkeys(start)) or ["demo"], posted


def argv(line: str, port: int) -> list[str]:
    """The command's words as the shell reads them (comments, quotes, $VARS), up to a pipe."""
    words = shlex.split(line, comments=True)
    if "|" in words:
        words = words[:words.index("|")]
    return [ADDRESS.sub(f"http://127.0.0.1:{port}", os.path.expandvars(w)) for w in words]


def run_curl(words: list[str]) -> tuple[int, str]:
    """(HTTP status, body) from the real curl binary."""
    out = subprocess.run([shutil.which("curl"), "--max-time", "60", "-w", "\n%{http_code}", *words[1:]],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, f"curl exited {out.returncode}: {out.stderr}"
    body, _, status = out.stdout.rpartition("\n")
    return int(status), body


def run_like_curl(words: list[str]) -> tuple[int, str]:
    """The same request through httpx where curl is missing: the options the doc uses, as curl sends them."""
    method, headers, data, url, rest = None, {}, None, None, iter(words[1:])
    for w in rest:
        if w in ("-s", "-S", "-sS", "--silent", "--show-error"):
            continue
        if w in ("-X", "--request"):
            method = next(rest)
        elif w in ("-H", "--header"):
            key, _, value = next(rest).partition(":")
            headers[key.strip().lower()] = value.strip()
        elif w in ("-d", "--data", "--data-raw", "--data-binary"):
            data = next(rest)
            headers.setdefault("content-type", "application/x-www-form-urlencoded")  # as curl does
        elif w == "--json":
            data = next(rest)
            headers.setdefault("content-type", "application/json")
            headers.setdefault("accept", "application/json")
        elif not w.startswith("-"):
            url = w if "://" in w else f"http://{w}"
        else:
            pytest.fail(f"curl option {w!r}: add it to run_like_curl, or install curl")
    r = httpx.request(method or ("POST" if data is not None else "GET"), url, headers=headers,
                      content=data.encode() if data is not None else None, timeout=60)
    return r.status_code, r.text


def serving(engine: Engine):
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(engine, Settings()), log_level="error"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    return server, thread, sock


def test_every_curl_example_of_the_serving_doc_answers_2xx(tiny_adapters, monkeypatch):
    if not DOC.is_file():
        pytest.skip(f"{DOC.relative_to(DOC.parents[1])} does not exist: no curl examples to run")
    groups = examples(DOC.read_text())
    assert groups, f"no curl line in a ```bash block of {DOC.name}"
    monkeypatch.setenv("LORAKIT_API_KEY", "unused")  # a `Bearer $LORAKIT_API_KEY` example expands to something
    send = run_curl if shutil.which("curl") else run_like_curl
    ran = 0
    for serve_line, curls in groups:
        start, posted = adapter_names(serve_line, curls)
        engine = Engine(str(tiny_adapters["base"]))
        for name in start:
            engine.add(name, resolve(tiny_adapters["plain"]))
        for name in posted:
            install_adapter(tiny_adapters["plain"], name)
        server, thread, sock = serving(engine)
        try:
            port = sock.getsockname()[1]
            for line in curls:
                status, body = send(argv(line, port))
                assert 200 <= status < 300, f"{line}\n-> {status} {body}"
                ran += 1
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
    assert ran >= 4
