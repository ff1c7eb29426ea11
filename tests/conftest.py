"""Shared pytest fixtures."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import settings

# CI runs the property tests derandomised (the same examples every run, no example
# database): a red CI then always means a reproducible failure. Locally they explore anew.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of the PostgreSQL test server: env ``QINGSUAN_PG_DSN``, else the local default.

    If the server cannot be reached the tests that need it FAIL when env ``CI`` is set (CI must
    never silently skip them) and are skipped otherwise.
    """
    import psycopg

    dsn = os.environ.get("QINGSUAN_PG_DSN", DEFAULT_PG_DSN)
    try:
        with psycopg.connect(dsn.replace("+psycopg", "", 1), connect_timeout=5):
            pass
    except psycopg.Error as exc:
        shown = re.sub(r":[^:@/]*@", ":***@", dsn)  # never print a password
        message = f"PostgreSQL not reachable at {shown}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI must run the PostgreSQL tests)", pytrace=False)
        pytest.skip(message)
    return dsn


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def log_url(request: pytest.FixtureRequest, tmp_path: object) -> object:
    """A fresh command-log url for each store kind (postgres: a schema dropped afterwards)."""
    import uuid
    from pathlib import Path

    kind = request.param
    if kind == "memory":
        yield f"memory://{uuid.uuid4().hex}"
        return
    if kind == "sqlite":
        assert isinstance(tmp_path, Path)
        yield str(tmp_path / "engine.db")
        return
    import psycopg

    dsn = request.getfixturevalue("pg_dsn")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield f"{dsn}?schema={schema}"
    with psycopg.connect(dsn.replace("+psycopg", "", 1), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
