"""The HTTP API through FastAPI's test client, on the tiny adapters."""

import json
import threading

import pytest
from fastapi.testclient import TestClient

from lorakit.infer.engine import Engine
from lorakit.infer.predictor import load
from lorakit.model.adapters import resolve
from lorakit.serve.app import create_app
from lorakit.serve.settings import Settings, with_env_key
from serve_helpers import install_adapter

TEXTS = ["love fun", "hate sad", "good great the movie", "bad awful the film"]


def client(ad, names=("plain", "flipped", "binary"), **settings) -> TestClient:
    engine = Engine(str(ad["base"]))
    for n in names:
        engine.add(n, resolve(ad[n]))
    return TestClient(create_app(engine, Settings(**settings)))


def err(r):
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]


def test_concurrent_requests_for_three_adapters_share_a_batch_and_get_their_own_labels(tiny_adapters):
    singles = {n: load(tiny_adapters[n]).predict(TEXTS) for n in ("plain", "flipped", "binary")}
    with client(tiny_adapters, max_wait_ms=300) as c:
        out = {}

        def call(name):
            out[name] = c.post("/v1/classify", json={"adapter": name, "texts": TEXTS})

        threads = [threading.Thread(target=call, args=(n,)) for n in singles]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name, r in out.items():
            assert r.status_code == 200, r.text
            assert r.json()["adapter"] == name
            for got, want in zip(r.json()["results"], singles[name]):
                assert got["label"] == want["label"]
                assert got["probs"] == pytest.approx(want["probs"], abs=1e-5)
        metrics = c.get("/metrics").text
    # all 12 texts of the three requests went through forward passes holding more than one adapter
    assert 'lorakit_batch_adapters_bucket{le="1.0"} 0.0' in metrics
    assert "lorakit_batch_texts_count" in metrics


def test_limits_answer_413_and_422_with_json_errors(tiny_adapters):
    with client(tiny_adapters, ("plain",), max_texts=3, max_chars=20, max_body_bytes=2000) as c:
        r = c.post("/v1/classify", json={"adapter": "plain", "texts": ["a"] * 4})
        assert r.status_code == 422 and "texts" in err(r)["message"]
        r = c.post("/v1/classify", json={"adapter": "plain", "texts": ["a" * 21]})
        assert r.status_code == 422 and "20 characters" in err(r)["message"]
        r = c.post("/v1/classify", json={"adapter": "plain", "texts": []})
        assert r.status_code == 422
        r = c.post("/v1/classify", content=json.dumps({"adapter": "plain", "texts": ["a" * 3000]}),
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and err(r)["code"] == "body_too_large"
        chunks = (b"x" * 500 for _ in range(10))  # no Content-Length: counted while read
        r = c.post("/v1/classify", content=chunks, headers={"content-type": "application/json"})
        assert r.status_code == 413
        r = c.post("/v1/classify", content=b'{"adapter": "plain", "texts": ["ok \\ud800 text"]}',
                   headers={"content-type": "application/json"})
        assert r.status_code in (200, 422), r.text  # a lone surrogate is refused or replaced, never a crash


def test_full_queue_is_503_with_retry_after(tiny_adapters):
    with client(tiny_adapters, ("plain",), max_queue=2) as c:
        r = c.post("/v1/classify", json={"adapter": "plain", "texts": ["a", "b", "c"]})
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and err(r)["code"] == "queue_full"
        assert c.post("/v1/classify", json={"adapter": "plain", "texts": ["a", "b"]}).status_code == 200


def test_malformed_json_and_wrong_shapes_are_422(tiny_adapters):
    with client(tiny_adapters, ("plain",)) as c:
        r = c.post("/v1/classify", content=b'{"adapter": "plain", "texts": [', headers={"content-type": "application/json"})
        assert r.status_code == 422 and err(r)["code"] == "invalid_json"
        for body in ([], {"adapter": "plain"}, {"adapter": "plain", "texts": "one"}, {"adapter": 3, "texts": ["x"]},
                     {"adapter": "plain", "texts": ["x"], "extra": 1}, {"adapter": "plain", "texts": [None]}):
            r = c.post("/v1/classify", json=body)
            assert r.status_code == 422, body
            assert err(r)["code"] == "invalid_request"


def test_unknown_adapter_is_404_listing_the_loaded_ones(tiny_adapters):
    with client(tiny_adapters, ("plain", "binary")) as c:
        r = c.post("/v1/classify", json={"adapter": "nope", "texts": ["x"]})
        assert r.status_code == 404
        assert err(r) == {"code": "unknown_adapter", "message": "adapter 'nope' is not loaded",
                          "loaded": ["binary", "plain"]}
        r = c.delete("/v1/adapters/nope")
        assert r.status_code == 404 and err(r)["loaded"] == ["binary", "plain"]


def test_bearer_token_guards_everything_but_health_and_docs(tiny_adapters, monkeypatch):
    monkeypatch.setenv("LORAKIT_API_KEY", "s3cret")
    settings = with_env_key(Settings())
    assert settings.api_key == "s3cret"
    with client(tiny_adapters, ("plain",), api_key=settings.api_key) as c:
        body = {"adapter": "plain", "texts": ["x"]}
        r = c.post("/v1/classify", json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.post("/v1/classify", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/adapters").status_code == 401
        assert c.get("/metrics").status_code == 401
        assert c.post("/v1/classify", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200
        assert c.get("/docs").status_code == 200
        assert "/v1/classify" in c.get("/openapi.json").json()["paths"]


def test_adapters_load_from_the_store_by_name_only(tiny_adapters):
    with client(tiny_adapters, ("plain",)) as c:
        install_adapter(tiny_adapters["flipped"], "flipped-store")
        r = c.post("/v1/adapters", json={"name": "flipped-store"})
        assert r.status_code == 201, r.text
        assert r.json()["labels"] == ["negative", "neutral", "positive"]
        r = c.post("/v1/classify", json={"adapter": "flipped-store", "texts": TEXTS})
        want = load(tiny_adapters["flipped"]).predict(TEXTS)
        assert [x["label"] for x in r.json()["results"]] == [w["label"] for w in want]
        assert [a["name"] for a in c.get("/v1/adapters").json()["adapters"]] == ["flipped-store", "plain"]

        assert c.post("/v1/adapters", json={"name": "flipped-store"}).status_code == 409
        r = c.post("/v1/adapters", json={"name": "missing"})
        assert r.status_code == 404 and err(r)["code"] == "not_installed"
        for path in ("../plain", "/tmp/x", "a/b", str(tiny_adapters["plain"])):
            assert c.post("/v1/adapters", json={"name": path}).status_code == 422, path

        # a broken installed adapter: the load fails, the running adapters keep serving
        broken = install_adapter(tiny_adapters["plain"], "broken")
        (broken / "adapter_model.safetensors").write_bytes(b"garbage")
        r = c.post("/v1/adapters", json={"name": "broken"})
        assert r.status_code == 422 and "cannot load" in err(r)["message"]
        assert c.post("/v1/classify", json={"adapter": "plain", "texts": ["x"]}).status_code == 200

        r = c.delete("/v1/adapters/flipped-store")
        assert r.status_code == 200 and r.json() == {"deleted": "flipped-store", "loaded": ["plain"]}
        assert c.post("/v1/classify", json={"adapter": "flipped-store", "texts": ["x"]}).status_code == 404


def test_metrics_are_prometheus_text(tiny_adapters):
    with client(tiny_adapters, ("plain",)) as c:
        c.post("/v1/classify", json={"adapter": "plain", "texts": ["x", "y"]})
        c.post("/v1/classify", json={"adapter": "nope", "texts": ["x"]})
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'lorakit_requests_total{method="POST",route="/v1/classify",status="200"} 1.0' in text
    assert 'lorakit_requests_total{method="POST",route="/v1/classify",status="404"} 1.0' in text
    assert 'lorakit_request_seconds_bucket{le="+Inf",route="/v1/classify"} 2.0' in text
    assert "lorakit_batch_texts_sum 2.0" in text
    assert "lorakit_queue_texts 0.0" in text
    assert "lorakit_adapters_loaded 1.0" in text
    assert 'lorakit_texts_classified_total{adapter="plain"} 2.0' in text


FORM = {"content-type": "application/x-www-form-urlencoded"}  # what `curl -d` sends


def test_a_json_body_is_read_whatever_its_content_type(tiny_adapters):
    with client(tiny_adapters, ("plain",)) as c:
        body = json.dumps({"adapter": "plain", "texts": ["love fun"]}).encode()
        for headers in (FORM, {"content-type": "text/plain"}, {}):
            r = c.post("/v1/classify", content=body, headers=headers)
            assert r.status_code == 200, (headers, r.text)
            assert r.json()["results"][0]["label"] in ("positive", "negative", "neutral")
        r = c.post("/v1/classify", content=b"adapter=plain&texts=x", headers=FORM)
        assert r.status_code == 422 and err(r)["code"] == "invalid_json"
        install_adapter(tiny_adapters["flipped"], "flipped-store")
        r = c.post("/v1/adapters", content=b'{"name": "flipped-store"}', headers=FORM)
        assert r.status_code == 201, r.text


def test_a_browser_form_from_another_page_is_still_refused(tiny_adapters):
    # A page on any site can make a browser POST a form to localhost without asking first; it carries
    # an Origin. Only non-browser clients (curl, scripts) get the leniency.
    with client(tiny_adapters, ("plain",)) as c:
        install_adapter(tiny_adapters["flipped"], "flipped-store")
        r = c.post("/v1/adapters", content=b'{"name": "flipped-store"}',
                   headers={**FORM, "origin": "https://example.com"})
        assert r.status_code == 415 and err(r)["code"] == "unsupported_media_type"
        assert [a["name"] for a in c.get("/v1/adapters").json()["adapters"]] == ["plain"]


def test_empty_or_blank_texts_are_422_naming_their_index(tiny_adapters):
    with client(tiny_adapters, ("plain",)) as c:
        for blank in ("", "   ", "\t\n", "\u3000"):
            r = c.post("/v1/classify", json={"adapter": "plain", "texts": ["fine", "also fine", blank]})
            assert r.status_code == 422, repr(blank)
            e = err(r)
            assert e["code"] == "invalid_request" and e["message"].startswith("texts.2: ") and "empty" in e["message"]


def test_adapter_may_be_left_out_when_exactly_one_is_loaded(tiny_adapters):
    with client(tiny_adapters, ("plain",)) as c:
        r = c.post("/v1/classify", json={"texts": TEXTS})
        assert r.status_code == 200, r.text
        assert r.json()["adapter"] == "plain"
    with client(tiny_adapters, ("plain", "binary")) as c:
        r = c.post("/v1/classify", json={"texts": TEXTS})
        assert r.status_code == 422
        assert err(r)["code"] == "adapter_required" and err(r)["loaded"] == ["binary", "plain"]
        assert "binary, plain" in err(r)["message"]
    with client(tiny_adapters, ()) as c:
        r = c.post("/v1/classify", json={"texts": TEXTS})
        assert r.status_code == 422 and err(r)["loaded"] == [] and "POST /v1/adapters" in err(r)["hint"]


def test_each_result_carries_its_text_as_predict_prints_it(tiny_adapters):
    want = load(tiny_adapters["plain"]).predict(TEXTS)
    with client(tiny_adapters, ("plain",)) as c:
        r = c.post("/v1/classify", json={"adapter": "plain", "texts": TEXTS})
    got = r.json()["results"]
    assert [x["text"] for x in got] == TEXTS
    assert list(got[0]) == ["text", "label", "probs"]  # the order of `lorakit predict`'s JSON lines
    assert [x["label"] for x in got] == [w["label"] for w in want]
