"""Database URLs: which ones we accept, and how to show them without their password."""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from connector.errors import ConnectorError

_POSTGRES_ALIASES = ("postgres", "postgresql")
_POSTGRES_DRIVER = "postgresql+psycopg"
# For strings SQLAlchemy cannot parse, and for passwords given as query parameters.
_NETLOC_PASSWORD = re.compile(r"(://[^/@:]*:)[^@/]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)

URL_FIX = "use sqlite:///path/to/state.db or postgresql://user:password@host:5432/dbname"


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to log or show."""
    try:
        rendered = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        rendered = _NETLOC_PASSWORD.sub(r"\1***@", url)
    return _QUERY_PASSWORD.sub(r"\1***", rendered)


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL for ``url``; PostgreSQL URLs without a driver get psycopg 3, the one installed."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConnectorError(
            f"the state database URL {mask_url(url)!r} is not a valid URL", fix=URL_FIX
        ) from exc
    if parsed.drivername in _POSTGRES_ALIASES:
        parsed = parsed.set(drivername=_POSTGRES_DRIVER)
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", _POSTGRES_DRIVER):
        raise ConnectorError(
            f"the state database URL {mask_url(url)!r} names an unsupported database driver "
            f"{parsed.drivername!r}",
            fix=URL_FIX,
        )
    return parsed


def password_of(url: str) -> str | None:
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return None
    return str(password) if password else None
