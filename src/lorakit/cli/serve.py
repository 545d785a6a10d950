"""lorakit serve: the HTTP server over one base and many adapters."""

from lorakit.cli.output import err

def cmd_serve(a) -> None:
    from lorakit.serve.run import serve
    from lorakit.serve.settings import Settings

    settings = Settings(max_texts=a.max_texts, max_chars=a.max_chars, max_body_bytes=a.max_body_bytes,
                        max_queue=a.max_queue, max_batch=a.max_batch, max_wait_ms=a.max_wait_ms,
                        request_timeout_s=a.timeout, api_key=a.api_key, mixed=not a.no_mixed_batches,
                        precision=a.precision)
    serve(a.base, a.adapter, a.host, a.port, settings, a.threads, log=lambda m: err.print(m, highlight=False))


def register(sub) -> None:
    s = sub.add_parser("serve", help="HTTP server: many adapters over one base, mixed-adapter batches")
    s.add_argument("--base", help="installed base model (default: the first adapter's base)")
    s.add_argument("--adapter", action="append", default=[], metavar="NAME[=RUN_OR_STORE_NAME]",
                   help="adapter to load at start (repeatable): a run folder or an installed adapter")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind: 127.0.0.1 is this machine only, 0.0.0.0 every interface (default: %(default)s)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one (default: %(default)s)")
    s.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $LORAKIT_API_KEY)")
    s.add_argument("--max-texts", type=int, default=64, help="texts per request (default: %(default)s)")
    s.add_argument("--max-chars", type=int, default=5000, help="characters per text (default: %(default)s)")
    s.add_argument("--max-body-bytes", type=int, default=2 * 1024 * 1024,
                   help="request body size, larger is 413 (default: %(default)s)")
    s.add_argument("--max-queue", type=int, default=1024, help="texts waiting before 503 (default: %(default)s)")
    s.add_argument("--max-batch", type=int, default=64, help="texts per forward pass (default: %(default)s)")
    s.add_argument("--max-wait-ms", type=float, default=5.0, help="how long to gather a batch (default: %(default)s)")
    s.add_argument("--timeout", type=float, default=30.0,
                   help="seconds before a waiting request gets 504 (default: %(default)s)")
    s.add_argument("--threads", type=int, help="torch threads (default: all cores but one, left to HTTP)")
    s.add_argument("--no-mixed-batches", action="store_true",
                   help="one request per forward pass, switching the active adapter (for comparison)")
    s.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 on CPUs with native bf16, close calls decided in fp32 (same labels as fp32) "
                        "(default: %(default)s)")
    s.set_defaults(func=cmd_serve)
