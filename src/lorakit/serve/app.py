"""The HTTP app: classify with any loaded adapter, load and unload adapters, health, metrics, docs."""

import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from lorakit import __version__
from lorakit.errors import LorakitError, NotInstalledError
from lorakit.infer.engine import AlreadyLoaded, Engine, UnknownAdapter
from lorakit.model import adapters as adapter_files
from lorakit.serve.batcher import Batcher, QueueFull
from lorakit.serve.guards import ApiError, BodyLimit, JsonBodies, LocalOnlyPages, bearer_guard, error_response
from lorakit.serve.memory import heap_trimmer
from lorakit.serve.metrics import Metrics
from lorakit.serve.schemas import AdapterOut, AdaptersOut, ClassifyResponse, LoadAdapter, classify_request
from lorakit.serve.settings import Settings


def _adapter_out(engine: Engine, name: str) -> AdapterOut:
    info = engine.adapters[name]
    return AdapterOut(name=name, labels=info.labels, base=info.base, max_length=info.max_length)


def _the_only_adapter(engine: Engine) -> str:
    """The adapter of a request that names none: there must be exactly one."""
    names = engine.names()
    if len(names) == 1:
        return names[0]
    if not names:
        raise ApiError(422, "adapter_required", "no adapter is loaded", loaded=[],
                       hint='POST /v1/adapters {"name": NAME} first')
    raise ApiError(422, "adapter_required", f'{len(names)} adapters are loaded: give "adapter", one of '
                   f'{", ".join(names)}', loaded=names)


def create_app(engine: Engine, settings: Settings = Settings()) -> FastAPI:
    metrics = Metrics()
    batcher = Batcher(engine, settings.max_batch, settings.max_wait_ms / 1000, settings.max_queue,
                      mixed=settings.mixed, on_batch=metrics.observe_batch, after_batch=heap_trimmer())
    metrics.adapters.set_function(lambda: len(engine.adapters))
    metrics.queue.set_function(lambda: batcher.depth)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    # /docs and /redoc with their scripts, styles and icon served from here (FastAPI's own pages load
    # them from CDNs and Google Fonts: a blank page offline); validatorUrl None: Swagger UI would
    # otherwise send the spec's URL to validator.swagger.io.
    app = FastAPIOffline(title="lorakit", version=__version__, lifespan=lifespan,
                         description="Classify texts with many LoRA adapters over one base model.",
                         swagger_ui_parameters={"validatorUrl": None})
    app.state.engine, app.state.batcher, app.state.metrics = engine, batcher, metrics
    auth = [Depends(bearer_guard(settings.api_key))]
    ClassifyRequest = classify_request(settings.max_texts, settings.max_chars)

    # ---- errors: always {"error": {...}} ---------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return error_response(e.status, e.code, e.message, e.headers, **e.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, e: RequestValidationError):
        errors = jsonable_encoder(e.errors(), exclude={"input", "ctx", "url"})
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return error_response(422, "invalid_json", "request body is not valid JSON", details=errors)
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return error_response(422, "invalid_request", f"{where}: {first['msg']}", details=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return error_response(e.status_code, code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(UnknownAdapter)
    async def _unknown(request, e: UnknownAdapter):
        return error_response(404, "unknown_adapter", e.message, loaded=e.loaded)

    # ---- the body limit and JSON bodies, inside the request metrics so that 413s and 415s are counted

    app.add_middleware(JsonBodies)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(LocalOnlyPages, pages=("/docs", "/redoc", app.swagger_ui_oauth2_redirect_url))

    # ---- metrics of every request (route templates only: no unbounded labels) --------------

    @app.middleware("http")
    async def _measure(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    # ---- routes ------------------------------------------------------------------------------

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        return {"status": "ok", "adapters": len(engine.adapters), "queue": batcher.depth}

    @app.get("/metrics", tags=["health"], dependencies=auth, response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.post("/v1/classify", tags=["classify"], dependencies=auth, response_model=ClassifyResponse,
              responses={404: {"description": "unknown adapter"}, 503: {"description": "queue full"}})
    async def classify(body: ClassifyRequest) -> ClassifyResponse:
        adapter = body.adapter or _the_only_adapter(engine)
        if adapter not in engine.adapters:
            raise engine.unknown(adapter)
        try:
            results = await batcher.submit(adapter, body.texts, settings.request_timeout_s)
        except QueueFull:
            raise ApiError(503, "queue_full", f"more than {settings.max_queue} texts are waiting; retry shortly",
                           headers={"Retry-After": "1"}) from None
        except TimeoutError:
            raise ApiError(504, "timeout", f"not classified within {settings.request_timeout_s:g} s") from None
        metrics.texts.labels(adapter).inc(len(results))
        # each result with its text, as `lorakit predict` prints them
        return ClassifyResponse(adapter=adapter, results=[{"text": t, **r} for t, r in zip(body.texts, results)])

    @app.get("/v1/adapters", tags=["adapters"], dependencies=auth)
    async def list_adapters() -> AdaptersOut:
        return AdaptersOut(base=engine.base, adapters=[_adapter_out(engine, n) for n in engine.names()])

    @app.post("/v1/adapters", tags=["adapters"], dependencies=auth, status_code=201,
              responses={404: {"description": "not installed"}, 409: {"description": "already loaded or too many"}})
    async def load_adapter(body: LoadAdapter) -> AdapterOut:
        if body.name in engine.adapters:
            raise ApiError(409, "already_loaded", f"adapter {body.name!r} is already loaded")
        if len(engine.adapters) >= settings.max_adapters:
            raise ApiError(409, "too_many_adapters", f"{settings.max_adapters} adapters are loaded",
                           hint="DELETE /v1/adapters/NAME first")
        try:
            info = adapter_files.from_store(body.name)  # from the store by name: never a path
            await batcher.call(engine.add, body.name, info)
        except NotInstalledError as e:
            raise ApiError(404, "not_installed", e.message, hint=e.hint) from None
        except AlreadyLoaded as e:  # loaded meanwhile by a concurrent request
            raise ApiError(409, "already_loaded", e.message) from None
        except LorakitError as e:  # a bad name, an incompatible or unreadable adapter
            raise ApiError(422, "adapter_error", e.message, hint=e.hint) from None
        return _adapter_out(engine, body.name)

    @app.delete("/v1/adapters/{name}", tags=["adapters"], dependencies=auth,
                responses={404: {"description": "unknown adapter"}})
    async def unload_adapter(name: str) -> dict:
        await batcher.call(engine.remove, name)  # raises UnknownAdapter -> 404 with the loaded list
        return {"deleted": name, "loaded": engine.names()}

    return app
