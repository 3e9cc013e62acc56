"""msgraph-sdk and azure-identity are large: only a process configured for Graph may import them, and
nothing imports the sandbox or exchangelib unless it is used (DESIGN §3, issue 4's memory target)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("msgraph", "msgraph_core", "kiota_http", "azure", "exchangelib", "sandbox", "starlette", "uvicorn")


def loaded_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import sys
        print(",".join(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(filter(None, done.stdout.strip().split(",")))


def test_the_cli_and_the_composition_root_import_no_backend_library() -> None:
    assert loaded_after("import app.cli, app.bootstrap, connector.sync") == set()


def test_a_memory_backend_worker_never_loads_graph(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[source]\npath = "{ROOT / "examples" / "schedule.csv"}"\n'
        f'[targets]\nkind = "file"\npath = "{ROOT / "examples" / "targets.csv"}"\n'
        f'[backend]\nkind = "memory"\n[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n',
        encoding="utf-8",
    )
    loaded = loaded_after(
        f"""
        from pathlib import Path
        from app import bootstrap
        container = bootstrap.build(bootstrap.read_settings(Path({str(settings)!r})))
        container.engine.run(__import__("connector.sync", fromlist=["SyncRequest"]).SyncRequest())
        container.close()
        """
    )
    assert loaded == set()


def test_a_graph_backend_worker_loads_graph_but_not_ews() -> None:
    loaded = loaded_after("import adapters.graph.backend")
    assert {"msgraph", "azure"} <= loaded and "exchangelib" not in loaded and "sandbox" not in loaded
