"""Browser-facing headers: CORS only on the REST API and only for configured origins, framing
limited to configured origins, no MIME sniffing, no referrer to other sites."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from assistant_core.errors import ConfigError
from assistant_core.settings import Settings, load_settings
from tests.ui.conftest import serving
from ui.security import install_security

pytestmark = pytest.mark.unit
SHOP = "https://shop.example.com"


def small_app(settings: Settings) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse("<html></html>")

    @app.get("/strict")
    async def strict() -> HTMLResponse:
        return HTMLResponse("", headers={"Content-Security-Policy": "default-src 'none'"})

    install_security(app, settings)
    return app


def test_headers_on_every_response_with_nothing_configured(settings: Settings) -> None:
    client = TestClient(small_app(settings))
    for path in ["/", "/api/v1/ping", "/missing"]:
        headers = client.get(path, headers={"Origin": SHOP}).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["content-security-policy"] == "frame-ancestors 'self'"
        assert headers["x-frame-options"] == "SAMEORIGIN"
        assert "access-control-allow-origin" not in headers
    preflight = client.options(
        "/api/v1/ping", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_a_routes_own_policy_keeps_its_directives(settings: Settings) -> None:
    policy = TestClient(small_app(settings)).get("/strict").headers["content-security-policy"]
    assert policy == "default-src 'none'; frame-ancestors 'self'"


def test_configured_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CORS_ORIGINS", f"{SHOP}, https://app.example.com/")
    monkeypatch.setenv("ASSISTANT_FRAME_ANCESTORS", SHOP)
    client = TestClient(small_app(load_settings()))
    api = client.get("/api/v1/ping", headers={"Origin": SHOP}).headers
    assert api["access-control-allow-origin"] == SHOP
    assert "x-conversation-token" in api["access-control-expose-headers"].lower()
    assert "access-control-allow-credentials" not in api
    other = client.get("/api/v1/ping", headers={"Origin": "https://evil.example"}).headers
    assert "access-control-allow-origin" not in other
    page = client.get("/", headers={"Origin": SHOP}).headers
    assert "access-control-allow-origin" not in page  # pages never answer other origins
    assert page["content-security-policy"] == f"frame-ancestors 'self' {SHOP}"
    assert "x-frame-options" not in page
    preflight = client.options(
        "/api/v1/ping",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, x-conversation-token",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"


def test_headers_through_a_real_server(settings: Settings) -> None:
    with serving(small_app(settings)) as base:
        headers = httpx.get(base + "/api/v1/ping").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "frame-ancestors 'self'"


@pytest.mark.parametrize("name", ["ASSISTANT_CORS_ORIGINS", "ASSISTANT_FRAME_ANCESTORS"])
def test_a_wrong_origin_names_its_setting(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "shop.example.com; script-src *")
    with pytest.raises(ConfigError, match=name):
        load_settings()
