"""Opening the state store on something unusable: a ConnectorError that says what and how to fix it,
and never shows the password."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from adapters.state import mask_url, open_store
from adapters.state.store import mask_url as mask_url_from_store
from connector.errors import ConnectorError

PASSWORD = "Top$ecret-42"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            f"postgresql+psycopg://user:{PASSWORD}@db.example.com/state",
            "postgresql+psycopg://user:***@db.example.com/state",
        ),
        (f"postgres://user:{PASSWORD}@db:5432/state", "postgres://user:***@db:5432/state"),
        (
            f"postgresql://user@db/state?sslmode=require&password={PASSWORD}",
            "postgresql://user@db/state?password=***&sslmode=require",
        ),
        ("postgresql://user@db/state", "postgresql://user@db/state"),
        ("sqlite:///var/state.db", "sqlite:///var/state.db"),
        (f"not a url://user:{PASSWORD}@host/db", "not a url://user:***@host/db"),
    ],
)
def test_mask_url_hides_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert mask_url_from_store is mask_url


def full_text(exc: BaseException) -> str:
    """The error as a log would show it, chained causes included."""
    return "".join(traceback.format_exception(exc))


def test_an_unreachable_server_is_a_connector_error_without_the_password() -> None:
    url = f"postgresql://connector:{PASSWORD}@127.0.0.1:1/state"

    with pytest.raises(ConnectorError, match="cannot connect") as caught:
        open_store(url)

    message = str(caught.value)
    assert "postgresql://connector:***@127.0.0.1:1/state" in message
    assert "refused" in message.lower()
    assert caught.value.fix is not None
    assert "running" in caught.value.fix
    assert PASSWORD not in full_text(caught.value)


@pytest.mark.postgres
def test_a_missing_database_is_named(postgres_database: object) -> None:
    url = f"postgres://postgres:{PASSWORD}@127.0.0.1:5432/connector_no_such_database"

    with pytest.raises(ConnectorError, match="connector_no_such_database") as caught:
        open_store(url)

    assert PASSWORD not in full_text(caught.value)


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_postgres_urls_with_or_without_driver_are_accepted(postgres_url: str, scheme: str) -> None:
    store = open_store(postgres_url.replace("postgresql+psycopg://", f"{scheme}://", 1))
    try:
        assert store.recent_runs() == []
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"mysql://user:{PASSWORD}@host/db", "unsupported database driver 'mysql'"),
        (f"postgresql+psycopg2://user:{PASSWORD}@host/db", "unsupported database driver"),
        ("just some words", "is not a valid URL"),
    ],
)
def test_an_unusable_url_is_a_connector_error(url: str, expected: str) -> None:
    with pytest.raises(ConnectorError, match=expected) as caught:
        open_store(url)

    assert caught.value.fix is not None
    assert "sqlite:///" in caught.value.fix
    assert PASSWORD not in full_text(caught.value)


def test_a_file_that_is_not_a_database_is_a_connector_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_text("these are notes, not a database\n" * 100, encoding="utf-8")

    with pytest.raises(ConnectorError, match="not a database"):
        open_store(f"sqlite:///{path}")


def test_a_folder_that_cannot_be_created_is_a_connector_error(tmp_path: Path) -> None:
    blocker = tmp_path / "var"
    blocker.write_text("a file where the folder should be", encoding="utf-8")

    with pytest.raises(ConnectorError, match="cannot create the folder"):
        open_store(f"sqlite:///{blocker / 'state.db'}")
