"""`lorakit serve`: build the engine, load the start-up adapters, run uvicorn."""

import os

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


def serve(base: str | None, adapters: list[str], host: str = "127.0.0.1", port: int = 8000,
          settings: Settings = Settings(), threads: int | None = None, log=print) -> None:
    import torch
    import uvicorn

    from lorakit.serve.app import create_app

    # One core stays with the HTTP event loop: on 2 cores, two torch threads competing with it
    # made every small op wait for a thread wake-up (measured 4x slower forward passes).
    torch.set_num_threads(threads or default_threads())
    settings = with_env_key(settings)
    engine = build_engine(base, adapters, mixed=settings.mixed, precision=settings.precision)
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        log(f"warning: listening on {host} without --api-key: anyone who can reach it can use it")
    log(f"serving {len(engine.adapters)} adapter(s) over {engine.base} ({', '.join(engine.names()) or 'none yet'}) "
        f"on http://{host}:{port}  (docs: /docs, metrics: /metrics)")
    uvicorn.run(create_app(engine, settings), host=host, port=port, log_level="warning",
                timeout_keep_alive=5, server_header=False)


__all__ = ["build_engine", "parse_adapter", "serve"]
