"""The web chat's server side: which files are served, optional login, the parts that need no
browser."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from assistant.wiring import Components
from assistant_core.errors import ConfigError
from tests.ui.conftest import serving
from ui.server import create_app
from ui.web import parse_auth

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_only_the_upload_folder_is_served(components: Components) -> None:
    upload_dir = Path(components.settings.upload_dir)
    with serving(create_app(components)) as base:
        assert httpx.get(base + "/").status_code == 200
        inside = upload_dir / "documents" / "note.txt"
        inside.parent.mkdir(parents=True, exist_ok=True)
        inside.write_text("uploaded")
        served = httpx.get(f"{base}/gradio_api/file={inside}")
        assert served.status_code == 200 and served.text == "uploaded"
        database = Path(components.settings.data_dir) / "assistant.db"
        assert database.is_file()
        for path in (
            database,
            REPO / "README.md",
            Path("/etc/passwd"),
            upload_dir / ".." / "assistant.db",
        ):
            response = httpx.get(f"{base}/gradio_api/file={path}")
            assert response.status_code in (403, 404), (path, response.status_code)
            assert b"SQLite" not in response.content and b"root:" not in response.content


def test_login_is_required_when_auth_is_set(
    components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(components.settings, "auth", SecretStr("agent:s3cret"))
    with serving(create_app(components)) as base:
        assert httpx.get(f"{base}/config").status_code == 401
        with httpx.Client(base_url=base) as client:
            assert (
                client.post("/login", data={"username": "agent", "password": "nope"}).status_code
                == 400
            )
            assert (
                client.post("/login", data={"username": "agent", "password": "s3cret"}).status_code
                == 200
            )
            assert client.get("/config").status_code == 200


def test_auth_setting_is_parsed_or_refused() -> None:
    assert parse_auth("a:b, c:d:e") == [("a", "b"), ("c", "d:e")]
    with pytest.raises(ConfigError, match="ASSISTANT_AUTH"):
        parse_auth("no-password")
