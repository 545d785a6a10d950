"""Property-based fuzz of the request bodies: whatever a client sends, the answer is never a 5xx."""

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from lorakit.infer.engine import Engine
from lorakit.model.adapters import resolve
from lorakit.serve.app import create_app
from lorakit.serve.settings import Settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
names = st.sampled_from(["plain", "binary", "nope", "", "../x", "a/b"]) | st.text(max_size=120)
texts = st.lists(st.text(max_size=80) | json_values, max_size=12)
classify_bodies = st.fixed_dictionaries({"adapter": names | json_values, "texts": texts | json_values},
                                        optional={"extra": json_values})
adapter_bodies = st.fixed_dictionaries({"name": names | json_values}, optional={"as": json_values})
raw = st.binary(max_size=300) | st.text(max_size=300).map(str.encode)
routes = st.sampled_from([("POST", "/v1/classify"), ("POST", "/v1/adapters"), ("GET", "/v1/adapters"),
                          ("DELETE", "/v1/adapters/plain2"), ("GET", "/healthz")])


@pytest.fixture(scope="module")
def fuzz_client(tiny_adapters):
    engine = Engine(str(tiny_adapters["base"]))
    for n in ("plain", "binary"):
        engine.add(n, resolve(tiny_adapters[n]))
    with TestClient(create_app(engine, Settings(max_texts=8, max_chars=60, max_body_bytes=4096))) as c:
        yield c


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=classify_bodies | json_values)
def test_classify_bodies_never_5xx(fuzz_client, body):
    r = fuzz_client.post("/v1/classify", content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text
    assert r.status_code in (200, 404, 413, 422)
    if r.status_code != 200:
        assert "error" in r.json()


@FUZZ
@given(body=adapter_bodies | json_values)
def test_adapter_bodies_never_5xx(fuzz_client, body):
    r = fuzz_client.post("/v1/adapters", content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert r.status_code in (404, 409, 422), r.text  # nothing is installed in this store: never a load


@FUZZ
@given(route=routes, body=raw, content_type=st.sampled_from(["application/json", "text/plain", "", "application/x"]))
def test_raw_bytes_on_any_route_never_5xx(fuzz_client, route, body, content_type):
    method, path = route
    r = fuzz_client.request(method, path, content=body, headers={"content-type": content_type} if content_type else {})
    assert r.status_code < 500, r.text
