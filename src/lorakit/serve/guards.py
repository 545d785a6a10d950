"""What stands in front of the routes: the body-size limit, JSON bodies, the bearer token, the JSON error shape."""

import json
import secrets

from fastapi import Request
from fastapi.responses import JSONResponse


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", ...}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, **extra):
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra


def error_response(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by Content-Length or by counting a chunked body."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await self._reject(send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await self._reject(send)
        done = False

        async def replay():
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send):
        payload = json.dumps({"error": {"code": "body_too_large",
                                        "message": f"request body over {self.limit} bytes"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


def _is_json(content_type: bytes) -> bool:
    mime = content_type.partition(b";")[0].strip().lower()
    return mime == b"application/json" or (mime.startswith(b"application/") and mime.endswith(b"+json"))


class JsonBodies:
    """ASGI middleware: a request body is read as JSON whatever its Content-Type, unless a browser sent it.

    ``curl -d '{...}'`` declares application/x-www-form-urlencoded, which FastAPI does not parse as
    JSON; every route here takes JSON, so the body is parsed as JSON anyway (one that is not JSON
    gets the invalid_json error). Browsers are the exception: a page on any site can make a browser
    POST a form or text/plain body to this server with no CORS preflight, and every such request
    carries an Origin header. Those must declare JSON, which needs a preflight this server never grants.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        if _is_json(dict(scope["headers"]).get(b"content-type", b"")):
            return await self.app(scope, receive, send)
        if any(k == b"origin" for k, _ in headers):
            response = error_response(415, "unsupported_media_type", "send the body with Content-Type: application/json")
            return await response(scope, receive, send)
        await self.app({**scope, "headers": [*headers, (b"content-type", b"application/json")]}, receive, send)


class LocalOnlyPages:
    """ASGI middleware: the docs pages may load nothing from another origin (Content-Security-Policy).

    Their assets are served from here, but a bundle may still reach out by itself (ReDoc fetches its
    logo from cdn.redoc.ly); the browser refuses any such load. Inline scripts and styles stay allowed:
    Swagger UI starts from one and ReDoc styles itself inline.
    """

    POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; object-src 'none'; "
              "base-uri 'none'; frame-ancestors 'self'").encode()

    def __init__(self, app, pages: tuple[str, ...]):
        self.app, self.pages = app, pages

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.pages:
            return await self.app(scope, receive, send)

        async def with_policy(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"content-security-policy", self.POLICY)]}
            await send(message)

        await self.app(scope, receive, with_policy)


def bearer_guard(api_key: str | None):
    """A FastAPI dependency: with a key set, require ``Authorization: Bearer KEY`` (constant-time compare)."""

    async def check(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong bearer token",
                           headers={"WWW-Authenticate": "Bearer"})
    return check
