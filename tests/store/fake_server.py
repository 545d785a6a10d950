"""A loopback HTTP server standing in for a file host and for the Hugging Face Hub API.

Files are served with Range support; ``cut`` makes the next response stop after N bytes (a
dropped connection) so resuming can be tested. Every request is logged for assertions.
"""

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}        # URL path -> content
        self.repos: dict[str, dict[str, bytes]] = {}  # hub repo id -> {filename: content}
        self.commit = "0123456789abcdef0123456789abcdef01234567"
        self.cut: int | None = None
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_HEAD(self):
                server._handle(self, head=True)

            def do_GET(self):
                server._handle(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _json(self, h, obj, status=200, headers=None):
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def _handle(self, h, head: bool):
        path = h.path.split("?")[0]
        self.log.append(("HEAD" if head else "GET", path, h.headers.get("Range")))
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path):
            if m[1] not in self.repos:
                return self._json(h, {"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})
            files = self.repos[m[1]]
            return self._json(h, {"id": m[1], "sha": self.commit, "siblings": [{"rfilename": f} for f in files]})
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path):
            files = self.repos.get(m[1], {})
            return self._json(h, [{"type": "file", "path": f, "size": len(c), "oid": hashlib.sha1(c).hexdigest()}
                                  for f, c in files.items()])
        if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            content = self.repos.get(m[1], {}).get(m[3])
            extra = {"X-Repo-Commit": self.commit, "ETag": f'"{hashlib.sha256(content or b"").hexdigest()}"'}
        else:
            content, extra = self.files.get(path), {}
        if content is None:
            return self._json(h, {"error": "not found"}, 404, {"X-Error-Code": "EntryNotFound"})
        start = 0
        if (rng := h.headers.get("Range")) and (m := re.fullmatch(r"bytes=(\d+)-", rng)):
            start = int(m[1])
            if start >= len(content):
                return self._json(h, {"error": "range"}, 416)
        body = content[start:]
        h.send_response(206 if start else 200)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        for k, v in extra.items():
            h.send_header(k, v)
        h.end_headers()
        if head:
            return
        if self.cut is not None:
            body, self.cut = body[: self.cut], None
            h.wfile.write(body)
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return
        h.wfile.write(body)
