"""/docs and /redoc work offline: every script, stylesheet, icon and font they load comes from the server itself."""

import re

import pytest
from fastapi.testclient import TestClient

from lorakit.infer.engine import Engine
from lorakit.model.adapters import resolve
from lorakit.serve.app import create_app
from lorakit.serve.settings import Settings

ASSETS = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)


@pytest.fixture(scope="module")
def docs_client(tiny_adapters):
    engine = Engine(str(tiny_adapters["base"]))
    engine.add("plain", resolve(tiny_adapters["plain"]))
    with TestClient(create_app(engine, Settings(api_key="s3cret"))) as c:  # the docs need no token
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(docs_client, page):
    r = docs_client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), "a URL off this machine"
    assets = ASSETS.findall(html)
    assert any(a.endswith(".js") for a in assets)
    for url in assets:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = docs_client.get(url)
        assert asset.status_code == 200 and asset.content, url


def test_swagger_ui_calls_no_online_validator(docs_client):
    # Swagger UI sends the spec's URL to validator.swagger.io unless validatorUrl is null.
    assert '"validatorUrl": null' in docs_client.get("/docs").text


def test_the_stylesheets_fetch_no_fonts_or_images_from_elsewhere(docs_client):
    for url in ASSETS.findall(docs_client.get("/docs").text):
        if url.endswith(".css"):
            css = docs_client.get(url).text
            assert "@import" not in css
            assert not re.findall(r"url\(\s*(?!['\"]?data:)[^)]*\)", css), url


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_docs_pages_forbid_the_browser_any_other_origin(docs_client, page):
    # ReDoc's bundle loads its logo from cdn.redoc.ly whatever the page says: the policy stops such loads.
    policy = docs_client.get(page).headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["default-src"] == "'self'"
    for name, sources in directives.items():
        assert not re.search(r"https?:|\*|//", sources), (name, sources)
