"""The ``[backend.ews]`` section and its wiring: validated with clear messages, secrets kept secret, the
personal method's passwords file read by the composition root, and exchangelib loaded only for kind ews."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import bootstrap
from connector.errors import SettingsError
from tests.unit.test_lazy_imports import ROOT, loaded_after
from tests.unit.test_settings import load, problems

BASE = '[source]\npath = "schedule.csv"\n[backend]\nkind = "ews"\n'


def test_a_service_account_section_is_read_with_its_secret_from_the_environment() -> None:
    settings = load(
        BASE + '[backend.ews]\nurl = "https://mail.example.com/EWS/Exchange.asmx"\nversion = "se"\n'
        'username = "svc@example.com"\npassword = { env = "EWS_PW" }\n',
        {"EWS_PW": "s3cret-value"},
    )
    ews = settings.backend.ews
    assert ews is not None and ews.method == "impersonation" and ews.auth == "ntlm" and ews.version == "se"
    assert ews.password is not None and ews.password.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(settings)
    assert (ews.batch_size, ews.max_connections, ews.autodiscover) == (25, 10, False)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("", "there is no [backend.ews] section"),
        ('[backend.ews]\nusername = "svc@example.com"\npassword = "x"\n', "needs url"),
        ('[backend.ews]\nurl = "https://m/EWS/Exchange.asmx"\n', "needs username and password"),
        ('[backend.ews]\nurl = "https://m/EWS/Exchange.asmx"\nmethod = "personal"\n', "passwords_file"),
        ('[backend.ews]\nurl = "https://m/EWS/Exchange.asmx"\nauth = "oauth2"\n', "client_secret"),
        ('[backend.ews]\nurl = "https://m/EWS/Exchange.asmx"\nversion = "2003"\n', "2019"),
        ('[backend.ews]\nurl = "https://m/EWS/Exchange.asmx"\nbatch_size = 100\n', "1 to 25"),
        ('[backend.ews]\nurl = "https://m/EWS/Exchange.asmx"\nmax_connections = 30\n', "1 to 10"),
    ],
)
def test_problems_name_the_key_and_the_fix(section: str, expected: str) -> None:
    assert any(expected in p for p in problems(BASE + section)), problems(BASE + section)


def test_the_personal_passwords_file_maps_addresses_to_passwords(tmp_path: Path) -> None:
    good = tmp_path / "users.toml"
    good.write_text('"Asa@Contoso.example" = "pw-1"\n"bob@contoso.example" = "pw-2"\n', encoding="utf-8")
    assert bootstrap.read_passwords(good) == {"asa@contoso.example": "pw-1", "bob@contoso.example": "pw-2"}
    bad = tmp_path / "users.json"
    bad.write_text('{"asa@contoso.example": "secret-in-a-broken-file",', encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        bootstrap.read_passwords(bad)
    assert "passwords_file" in str(caught.value) and "secret-in-a-broken-file" not in str(caught.value)


def test_an_ews_worker_loads_exchangelib_and_a_graph_or_memory_one_never_does(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[source]\npath = "{ROOT / "examples" / "schedule.csv"}"\n'
        f'[targets]\nkind = "file"\npath = "{ROOT / "examples" / "targets.csv"}"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n'
        '[backend]\nkind = "ews"\n[backend.ews]\nurl = "https://mail.example.com/EWS/Exchange.asmx"\n'
        'username = "svc@example.com"\npassword = "x"\n',
        encoding="utf-8",
    )
    loaded = loaded_after(
        f"""
        from pathlib import Path
        from app import bootstrap
        container = bootstrap.build(bootstrap.read_settings(Path({str(settings)!r})))
        print(type(container.backend).__name__, file=__import__("sys").stderr)
        container.close()
        """
    )
    assert "exchangelib" in loaded and "msgraph" not in loaded and "sandbox" not in loaded
    assert "exchangelib" not in loaded_after("import adapters.graph.backend, adapters.memory, app.bootstrap")
