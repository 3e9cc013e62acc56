from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import SettingsError
from connector.settings import FileSourceSection, InlineTargetsSection, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[source]
path = "schedule.csv"
"""


def load(text: str, env: dict[str, str] | None = None, files: dict[str, str] | None = None) -> Settings:
    def read_file(path: Path) -> str:
        if files is None or str(path) not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[str(path)]

    return load_settings(text, environ=env or {}, base_dir=Path("/etc/connector"), read_file=read_file)


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load(text, env)
    return caught.value.problems


def test_the_shipped_settings_file_is_valid_and_is_the_embedded_default() -> None:
    settings = load_settings((ROOT / "settings.toml").read_text(encoding="utf-8"), environ={}, base_dir=ROOT)
    assert settings.backend.kind == "graph"
    assert settings.backend.graph is not None
    assert settings.resolve(settings.backend.graph.sandbox or Path()) == ROOT / "sandbox" / "demo.toml"
    assert settings.state.url.get_secret_value().startswith("sqlite:///")
    assert isinstance(settings.source, FileSourceSection)
    assert settings.resolve(settings.source.path) == ROOT / "examples" / "schedule.csv"
    assert settings.targets.kind == "file"
    assert settings.connector.timezone == "Europe/Paris"


def test_defaults_fill_every_section_but_the_source() -> None:
    settings = load(MINIMAL)
    assert settings.window.days_before == 0 and settings.window.days_after == 90
    assert settings.event.reminder_minutes is None  # reminders off unless configured
    assert settings.targets.kind == "source"
    assert isinstance(settings.source, FileSourceSection)  # a [source] without kind is a file
    assert settings.resolve(settings.source.path) == Path("/etc/connector/schedule.csv")


def test_every_problem_is_reported_together_with_key_and_fix() -> None:
    found = problems(
        """
        [connector]
        timezone = "Europe/Pariss"
        host_ap = "x"
        [window]
        days_after = "soon"
        [targets]
        kind = "file"
        [event]
        title = "{title.upper}"
        """
    )
    text = "\n".join(found)
    assert len(found) == 6, found
    assert "connector.timezone: unknown time zone 'Europe/Pariss'" in text and "IANA" in text
    assert "connector.host_ap: unknown key — did you mean 'host_app'?" in text
    assert "window.days_after" in text and "whole number of days" in text
    assert "source: required but not set" in text
    assert "targets.path is not set" in text
    assert "event.title: bad template" in text


def test_environment_overrides_any_key_with_nested_sections_and_json_lists() -> None:
    settings = load(
        MINIMAL,
        {
            "CONNECTOR__WINDOW__DAYS_AFTER": "30",
            "CONNECTOR__BACKEND__MEMORY__PATH": "/tmp/cal.json",
            "CONNECTOR__EVENT__CATEGORIES": '["Shifts", "Ops"]',
            "CONNECTOR__EVENT__REMINDER_MINUTES": "15",
            "UNRELATED": "x",
        },
    )
    assert settings.window.days_after == 30
    assert settings.backend.memory.path == Path("/tmp/cal.json")
    assert settings.event.categories == ("Shifts", "Ops")
    assert settings.event.reminder_minutes == 15


def test_a_bad_environment_override_names_the_variable_or_key() -> None:
    found = problems(MINIMAL, {"CONNECTOR__WINDOW__DAYS_AFTR": "30", "CONNECTOR__EVENT__CATEGORIES": "[oops"})
    assert any("window.days_aftr: unknown key — did you mean 'days_after'" in p for p in found)
    assert any(p.startswith("CONNECTOR__EVENT__CATEGORIES: not valid JSON") for p in found)


@pytest.mark.parametrize(
    ("snippet", "env", "files"),
    [
        ('url = { env = "DB_URL" }', {"DB_URL": "postgresql+psycopg://u:s3cret@db/x"}, None),
        (
            'url = { file = "/run/secrets/db" }',
            {},
            {"/run/secrets/db": "postgresql+psycopg://u:s3cret@db/x\n"},
        ),
        ('url_file = "secrets/db"', {}, {"/etc/connector/secrets/db": "postgresql+psycopg://u:s3cret@db/x"}),
        ("", {"CONNECTOR__STATE__URL": "postgresql+psycopg://u:s3cret@db/x"}, None),
    ],
)
def test_secrets_come_from_env_files_or_overrides_and_are_never_shown(snippet, env, files) -> None:
    settings = load(MINIMAL + "[state]\n" + snippet + "\n", env, files)
    assert settings.state.url.get_secret_value() == "postgresql+psycopg://u:s3cret@db/x"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())


def test_a_missing_secret_is_one_clear_problem_and_a_bad_secret_is_not_echoed() -> None:
    found = problems(MINIMAL + '[state]\nurl = { env = "NOT_SET_ANYWHERE" }\n')
    assert found == [
        'state.url: environment variable NOT_SET_ANYWHERE is not set — export it, or use { file = "/run/secrets/..." }'
    ]
    found = problems(MINIMAL, {"CONNECTOR__STATE__URL": "mysql://root:hunter2@db/x"})
    assert len(found) == 1 and "hunter2" not in found[0] and "state.url" in found[0]


def test_unreadable_secret_file_and_both_forms_are_problems() -> None:
    found = problems(MINIMAL + '[state]\nurl = { file = "/nope" }\n')
    assert found[0].startswith("state.url: cannot read secret file /nope")
    found = problems(MINIMAL + '[state]\nurl = "sqlite:///x.db"\nurl_file = "/x"\n')
    assert found == ["state.url_file: both url and url_file are set — keep one"]


def test_invalid_toml_points_at_the_line() -> None:
    found = problems("[window]\ndays_after = \n")
    assert len(found) == 1 and "not valid TOML" in found[0] and "line 2" in found[0]


def test_settings_are_frozen() -> None:
    settings = load(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        settings.window.days_after = 3  # type: ignore[misc]


def test_inline_targets_are_validated() -> None:
    settings = load(
        MINIMAL
        + """
[targets]
kind = "inline"
[[targets.list]]
address = "room1@contoso.example"
kind = "room"
"""
    )
    assert isinstance(settings.targets, InlineTargetsSection)
    assert settings.targets.list[0].kind == "room"
    found = problems(MINIMAL + '[targets]\nkind = "inline"\n')
    assert any("no [[targets.list]] entry" in p for p in found)
