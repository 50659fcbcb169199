"""Several processes starting at once on a fresh database migrate it once, and none fails."""

import multiprocessing

import pytest
from sqlalchemy import inspect, text

from assistant_core.db import make_engine

pytestmark = pytest.mark.unit


def start_up(url: str, start: object) -> str:
    """What a server does first: migrate the database (alembic is per process, not per thread)."""
    import dialog.records  # noqa: F401
    import knowledge.records  # noqa: F401
    from assistant_core.db import migrate

    engine = make_engine(url)
    start.wait()  # type: ignore[attr-defined]
    try:
        migrate(engine)
    except Exception as err:  # noqa: BLE001 - reported to the test
        return f"{type(err).__name__}: {err}"[:500]
    finally:
        engine.dispose()
    return ""


def test_concurrent_first_starts_migrate_once(database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(4)
        with context.Pool(4) as pool:
            errors = pool.starmap(start_up, [(database_url, start)] * 4)
    assert [e for e in errors if e] == []
    engine = make_engine(database_url)
    assert {"events", "conversations", "shop_orders", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )
    with engine.connect() as connection:
        assert len(connection.execute(text("SELECT * FROM alembic_version")).all()) >= 1
    engine.dispose()
