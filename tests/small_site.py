"""A three-person site for the job and API tests: Alice (E1) and Bob (E2) are enabled, Carol (E3) is
not; the memory calendar backend, SQLite state, a CSV source each test writes itself."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

ALICE, BOB, CAROL = "alice@contoso.example", "bob@contoso.example", "carol@contoso.example"

#: (key, owner, start, end, title) rows start from here: inside the window of ``settings_text``.
FIRST_DAY = date.today() + timedelta(days=2)


def write_targets(folder: Path) -> None:
    (folder / "targets.csv").write_text(
        "address,owner_key,kind,enabled,display_name\n"
        f"{ALICE},E1,user,true,Alice\n{BOB},E2,user,true,Bob\n{CAROL},E3,user,false,Carol\n",
        encoding="utf-8",
    )


def settings_text(jobs: str, *, extra: str = "", memory_path: str | None = None) -> str:
    """The site's settings; ``jobs`` is the body of the [jobs] section, ``extra`` more sections."""
    memory = f'[backend.memory]\npath = "{memory_path}"\n' if memory_path else ""
    return f"""
[connector]
timezone = "Europe/Paris"
[window]
days_before = 7
days_after = 30
[source]
path = "schedule.csv"
[targets]
kind = "file"
path = "targets.csv"
[backend]
kind = "memory"
max_threads = 2
{memory}[state]
url = "sqlite:///state.db"
[jobs]
{jobs}
{extra}"""
