"""Every conversation script under scripts/, run with the fake LM on the demo shop."""

from __future__ import annotations

from typing import Any

import pytest

from assistant_core.db import Database
from tests.dialog.conftest import ShopFactory
from tests.dialog.scripting import load_scripts, run_script
from tests.fakes import FakeChatModel

pytestmark = pytest.mark.unit

SCRIPTS = load_scripts()


@pytest.mark.parametrize("script", SCRIPTS, ids=[s["name"] for s in SCRIPTS])
def test_script(script: dict[str, Any], sqlite_db: Database, shop: ShopFactory) -> None:
    model = FakeChatModel()
    assistant = shop(sqlite_db, model, **script.get("options", {}))
    run_script(assistant, model, script)
    for order_id, fields in script.get("orders", {}).items():
        from assistant.demo.shop import OrderRow

        with sqlite_db.session() as session:
            order = session.get(OrderRow, order_id)
            for key, value in fields.items():
                assert getattr(order, key) == value
