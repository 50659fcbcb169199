"""`assistant keys`, `assistant audit` and `assistant serve`'s loopback rule, run as the user runs
them: separate processes on one database, SQLite or PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from assistant.cli import App, main
from assistant_core.db import Database
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import serving
from ui.access import Principal, Role
from ui.access_http import caller_of, install_access
from ui.access_keys import KeyStore

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def assistant(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m assistant ...` in its own process, on the test's database."""
    env = {**os.environ, "ASSISTANT_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def create(url: str, role: str, name: str, *more: str) -> dict[str, str]:
    """`assistant keys create --json` in its own process: id, role, key, expires_at."""
    done = assistant(url, "keys", "create", "--role", role, "--name", name, "--json", *more)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def dump(database_url: str) -> str:
    """Every value in the key table, as someone who copies the database sees it."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM ui_api_keys")).all()
    finally:
        engine.dispose()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def test_keys_create_list_revoke_and_audit(database_url: str) -> None:
    created = assistant(database_url, "keys", "create", "--role", "agent", "--name", "desk")
    secret = created.stdout.strip()
    assert secret.startswith("ask_") and "cannot be shown again" in created.stderr
    other = create(database_url, "admin", "ops")
    stored = dump(database_url)
    assert secret not in stored and other["key"] not in stored and "desk" in stored
    listing = assistant(database_url, "keys", "list", "--json").stdout
    listed = [json.loads(line) for line in listing.splitlines()]
    assert [(k["role"], k["name"], k["revoked_at"]) for k in listed] == [
        ("agent", "desk", None),
        ("admin", "ops", None),
    ]
    assert secret not in assistant(database_url, "keys", "list").stdout
    key_id = listed[0]["id"]
    assert secret.startswith(f"ask_{key_id}_")
    assistant(database_url, "keys", "revoke", key_id)
    again = assistant(database_url, "keys", "revoke", key_id, check=False)
    assert again.returncode != 0 and "no active key" in again.stderr
    active = assistant(database_url, "keys", "list", "--active").stdout
    assert key_id not in active and other["id"] in active
    entries = [
        json.loads(line)
        for line in assistant(database_url, "audit", "--json", "--limit", "5").stdout.splitlines()
    ]
    assert [(e["action"], e["target"]) for e in entries] == [
        ("keys.revoke", f"key:{key_id}"),
        ("keys.create", f"key:{other['id']}"),
        ("keys.create", f"key:{key_id}"),
    ]
    assert all(e["actor"].startswith("cli:") for e in entries)
    assert secret not in json.dumps(entries)
    text_listing = assistant(database_url, "audit", "--limit", "1")
    assert "keys.revoke" in text_listing.stdout and "1 entry" in text_listing.stderr


def test_create_needs_a_role_keys_can_carry(database_url: str) -> None:
    for role in ["root", "webhook"]:  # webhooks prove themselves by their signatures
        done = assistant(database_url, "keys", "create", "--role", role, "--name", "x", check=False)
        assert done.returncode == 2 and "customer" in done.stderr


def who_app(url: str) -> tuple[FastAPI, Database]:
    """A server on its own engine: answers with the caller a bearer key makes."""
    import ui.access_records  # noqa: F401

    database = Database(url)
    app = FastAPI()
    install_access(app, database.session)

    @app.get("/api/v1/me")
    async def me(caller: Annotated[Principal, Depends(caller_of)]) -> dict[str, Any]:
        return {"role": caller.role, "subject": caller.subject}

    return app, database


@pytest.fixture
def two_servers(database_url: str) -> Iterator[tuple[str, TestClient]]:
    """One real server and one in-process app, each with its own engine and pool."""
    first_app, first_db = who_app(database_url)
    second_app, second_db = who_app(database_url)
    with serving(first_app) as base, TestClient(second_app) as client:
        yield base, client
    first_db.close()
    second_db.close()


def test_a_revoked_key_fails_at_once_everywhere(
    database_url: str, two_servers: tuple[str, TestClient]
) -> None:
    base, client = two_servers
    created = create(database_url, "customer", "a")
    auth = {"Authorization": f"Bearer {created['key']}"}
    assert httpx.get(base + "/api/v1/me", headers=auth).json()["role"] == "customer"
    assert client.get("/api/v1/me", headers=auth).json()["subject"] == f"key:{created['id']}"
    assistant(database_url, "keys", "revoke", created["id"])
    assert httpx.get(base + "/api/v1/me", headers=auth).status_code == 401
    assert client.get("/api/v1/me", headers=auth).status_code == 401


def test_an_expired_key_is_refused_over_http_and_listed(
    database_url: str, two_servers: tuple[str, TestClient]
) -> None:
    import ui.access_records  # noqa: F401

    base, client = two_servers
    database = Database(database_url)
    try:
        keys = KeyStore(database.session)
        expired = keys.create(Role.CUSTOMER, "old", expires_at=datetime(2001, 1, 1, tzinfo=UTC))
        until = keys.create(Role.CUSTOMER, "till", expires_at=datetime(2999, 1, 1, tzinfo=UTC))
    finally:
        database.close()
    timed = assistant(
        database_url, "keys", "create", "--role", "agent", "--name", "q", "--expires", "90d"
    )
    assert "expires 20" in timed.stderr
    dated = create(database_url, "admin", "ops", "--expires", "2999-12-31")
    assert dated["expires_at"] == "2999-12-31T00:00:00+00:00"
    for secret, status in [
        (expired.secret, 401),
        (until.secret, 200),
        (timed.stdout.strip(), 200),
        (dated["key"], 200),
    ]:
        auth = {"Authorization": f"Bearer {secret}"}
        answered = httpx.get(base + "/api/v1/me", headers=auth)
        assert answered.status_code == client.get("/api/v1/me", headers=auth).status_code == status
    refused = httpx.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {expired.secret}"})
    assert refused.json()["detail"].startswith("the API key is unknown, revoked or expired")
    listing = assistant(database_url, "keys", "list", "--json").stdout
    listed = {row["name"]: row for row in map(json.loads, listing.splitlines())}
    assert (listed["old"]["expires_at"], listed["old"]["expired"]) == (
        "2001-01-01T00:00:00+00:00",
        True,
    )
    assert (listed["till"]["expires_at"], listed["till"]["expired"]) == (
        "2999-01-01T00:00:00+00:00",
        False,
    )
    ninety = datetime.fromisoformat(listed["q"]["expires_at"]) - datetime.fromisoformat(
        listed["q"]["created_at"]
    )
    assert abs(ninety - timedelta(days=90)) < timedelta(minutes=5) and not listed["q"]["expired"]
    assert listed["ops"]["expired"] is False and listed["old"]["revoked_at"] is None
    table = {
        line.split()[-1]: line
        for line in assistant(database_url, "keys", "list").stdout.splitlines()
    }
    assert "expired" in table["old"] and "2001-01-01T00:00:00" in table["old"]
    assert "active" in table["till"] and "2999-01-01T00:00:00" in table["till"]
    active = assistant(database_url, "keys", "list", "--active", "--json").stdout
    assert expired.key.id not in active and until.key.id in active


def test_create_rejects_a_bad_expiry(database_url: str) -> None:
    for bad, why in [
        ("soon", "neither a duration"),
        ("90", "needs a unit"),
        ("0d", "not a positive duration"),
        ("2001-01-01", "not in the future"),
    ]:
        done = assistant(
            database_url,
            "keys",
            "create",
            "--role",
            "agent",
            "--name",
            "x",
            "--expires",
            bad,
            check=False,
        )
        assert done.returncode == 2 and "Invalid value for '--expires'" in done.stderr, bad
        assert why in done.stderr
    assert "0 key(s)" in assistant(database_url, "keys", "list").stderr


def fake_app() -> App:
    return App(overrides={"chat_model": FakeChatModel(), "embedder": HashingEmbedder()})


def test_serve_beyond_loopback_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(options))
    refused = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--no-web"], obj=fake_app())
    assert refused.exit_code != 0 and not started
    assert "ASSISTANT_INSECURE_SERVE_WITHOUT_KEYS" in refused.output
    assert "assistant keys create" in refused.output
    loopback = CliRunner().invoke(main, ["serve", "--no-web"], obj=fake_app())
    assert loopback.exit_code == 0, loopback.output
    assert started["host"] == "127.0.0.1"


def test_serve_beyond_loopback_with_a_key_or_the_opt_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    hosts: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: hosts.append(options["host"]))
    monkeypatch.setenv("ASSISTANT_INSECURE_SERVE_WITHOUT_KEYS", "true")
    opted = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--no-web"], obj=fake_app())
    assert opted.exit_code == 0, opted.output
    assert "WITHOUT API KEYS (ASSISTANT_INSECURE_SERVE_WITHOUT_KEYS=true)" in caplog.text
    monkeypatch.delenv("ASSISTANT_INSECURE_SERVE_WITHOUT_KEYS")
    created = CliRunner().invoke(main, ["keys", "create", "--role", "admin", "--name", "ops"])
    assert created.exit_code == 0, created.output
    keyed = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--no-web"], obj=fake_app())
    assert keyed.exit_code == 0, keyed.output
    assert hosts == ["0.0.0.0", "0.0.0.0"]


def test_serve_refusal_as_a_process(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "serve", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO,
        env={**os.environ, "ASSISTANT_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "ASSISTANT_INSECURE_SERVE_WITHOUT_KEYS" in done.stderr
