"""`lorakit serve`: take the port, build the engine, load the start-up adapters, run uvicorn."""

import errno
import logging
import os
import socket
import sys

from lorakit.errors import LorakitError
from lorakit.infer.engine import Engine
from lorakit.model import adapters as adapter_files
from lorakit.serve.settings import Settings, with_env_key
from lorakit.store.layout import check_name


def parse_adapter(spec: str) -> tuple[str, str]:
    """``NAME`` (an installed adapter) or ``NAME=RUN_DIR_OR_STORE_NAME``."""
    name, sep, source = spec.partition("=")
    name = name.strip()
    if not name or (sep and not source.strip()):
        raise LorakitError(f"--adapter {spec!r}: expected NAME or NAME=RUN_OR_STORE_NAME",
                           "e.g. --adapter support=runs/support")
    check_name(name)
    return name, (source.strip() if sep else name)


def build_engine(base: str | None, specs: list[str], mixed: bool = True, precision: str = "auto") -> Engine:
    """The engine with its start-up adapters; the base defaults to the first adapter's base."""
    pairs = [parse_adapter(s) for s in specs]
    infos = [(name, adapter_files.resolve(source)) for name, source in pairs]
    if base is None:
        if not infos:
            raise LorakitError("nothing to serve", "give --base NAME and/or --adapter NAME=RUN_DIR")
        base = infos[0][1].base
    engine = Engine(base, mixed=mixed, precision=precision)
    for name, info in infos:
        engine.add(name, info)
    return engine


def default_threads() -> int:
    return max(1, (os.cpu_count() or 1) - 1)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, taken before anything is loaded: a busy port is one error line.

    uvicorn would bind only after the model has loaded and the start-up line has said it serves.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a restart need not wait for TIME_WAIT
    try:
        sock.bind((host, port))
    except OverflowError:
        sock.close()
        raise LorakitError(f"--port {port}: a port is 0-65535", "--port 8000, or --port 0 for any free one") from None
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise LorakitError(f"port {port} on {host} is already in use",
                               f"--port another (--port 0 picks a free one), or stop what listens on {port}") from None
        if e.errno == errno.EACCES:
            raise LorakitError(f"no permission to listen on port {port}", "--port 1024 or above") from None
        raise LorakitError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                           "--host 127.0.0.1 (this machine only) or an address of this machine") from None
    return sock


def startup_line(engine: Engine, host: str, port: int) -> str:
    n = len(engine.adapters)
    what = f"{n} adapter{'' if n == 1 else 's'} over {engine.base} ({', '.join(engine.names())})" if n else \
        f"no adapters yet over {engine.base}"
    url_host = f"[{host}]" if ":" in host else host
    return f"serving {what} on http://{url_host}:{port}  (docs: /docs, metrics: /metrics)"


def serve(base: str | None, adapters: list[str], host: str = "127.0.0.1", port: int = 8000,
          settings: Settings = Settings(), threads: int | None = None, log=print) -> None:
    import torch
    import uvicorn

    from lorakit.serve.app import create_app

    settings = with_env_key(settings)
    sock = listen(host, port)
    try:
        # One core stays with the HTTP event loop: on 2 cores, two torch threads competing with it
        # made every small op wait for a thread wake-up, and forward passes far slower (figures:
        # benchmarks/README.md, Measurements behind the code).
        torch.set_num_threads(threads or default_threads())
        engine = build_engine(base, adapters, mixed=settings.mixed, precision=settings.precision)
        if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
            log(f"warning: listening on {host} without --api-key: anyone who can reach it can use it")
        log(startup_line(engine, host, sock.getsockname()[1]))
        show_server_warnings()
        config = uvicorn.Config(create_app(engine, settings), host=host, port=sock.getsockname()[1],
                                log_config=None, log_level="warning", timeout_keep_alive=5, server_header=False)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a notebook's, a redirected one)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def show_server_warnings() -> None:
    """uvicorn's warnings and errors on stderr, without uvicorn's own logging config: that one runs
    ``logging.config.dictConfig``, which closes every handler already in the process (the embedding
    program's, or a library's such as absl's that holds the stderr of its import time)."""
    logger = logging.getLogger("uvicorn")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


__all__ = ["build_engine", "listen", "parse_adapter", "serve", "show_server_warnings"]
