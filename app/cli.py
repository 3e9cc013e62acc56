"""The ``connector`` command.

Exit codes: 0 done; 1 the run failed or some mailboxes failed; 2 unusable settings or arguments;
3 the delete guard held changes back (run again with ``--force`` once the source is checked).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app import bootstrap, report
from connector.errors import ConnectorError, SettingsError, UsageError
from connector.state import MailboxResult, RunStatus, SyncMode
from connector.sync import SyncRequest

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BLOCKED = 0, 1, 2, 3

cli = typer.Typer(
    name="connector",
    help="Push schedules from the host application into Exchange / Microsoft 365 calendars.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        "-s",
        help="Settings file (default: $CONNECTOR_SETTINGS, else ./settings.toml).",
        dir_okay=False,
    ),
]
UserOption = Annotated[
    list[str] | None,
    typer.Option("--user", "-u", help="Only this mailbox (address or owner key); repeatable."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
VerifyOption = Annotated[
    bool,
    typer.Option("--verify", help="Also read the calendars: repair edits, adopt and de-duplicate (slower)."),
]


def _console() -> Console:
    # Piped output (CI logs, `| less`) gets room for full addresses instead of rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")


@contextmanager
def _container(settings_file: Path | None, as_json: bool) -> Iterator[bootstrap.Container]:
    try:
        settings = bootstrap.read_settings(bootstrap.settings_path(settings_file))
        container = bootstrap.build(settings)
    except ConnectorError as exc:
        _fail(exc, as_json, EXIT_USAGE if isinstance(exc, SettingsError) else EXIT_FAILED)
    try:
        yield container
    except UsageError as exc:
        _fail(exc, as_json, EXIT_USAGE)
    except ConnectorError as exc:
        _fail(exc, as_json, EXIT_FAILED)
    finally:
        container.close()


def _fail(exc: ConnectorError, as_json: bool, code: int) -> NoReturn:
    if as_json:
        doc: dict[str, Any] = {"error": exc.code, "message": exc.message, "fix": exc.fix}
        if isinstance(exc, SettingsError):
            doc["problems"] = exc.problems
        _emit(doc)
    else:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
    raise typer.Exit(code)


def _request(users: list[str] | None, *, verify: bool, force: bool) -> SyncRequest:
    return SyncRequest(
        mode=SyncMode.VERIFY if verify else SyncMode.FAST,
        users=tuple(users or ()),
        force=force,
        trigger="cli",
    )


@cli.callback()
def main_options(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")
    ] = 0,
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@cli.command()
def sync(
    settings: SettingsOption = None,
    user: UserOption = None,
    verify: VerifyOption = False,
    force: Annotated[
        bool, typer.Option("--force", help="Let the delete guard pass (after checking the source).")
    ] = False,
    as_json: JsonOption = False,
    all_mailboxes: Annotated[
        bool, typer.Option("--all", help="List every mailbox, not only changed ones.")
    ] = False,
) -> None:
    """Sync now: push new, changed and removed entries to the calendars."""
    request = _request(user, verify=verify, force=force)
    with _container(settings, as_json) as container:
        console = _console()
        show_progress = not as_json and sys.stderr.isatty()
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not show_progress,
            transient=True,
        ) as progress:
            task = progress.add_task("Syncing mailboxes", total=None)

            def started(total: int) -> None:
                progress.update(task, total=total)

            def done(result: MailboxResult) -> None:
                progress.update(task, advance=1, description=f"Synced {result.mailbox}")

            outcome = container.engine.run(
                request, on_start=started, on_mailbox=done, threads=container.settings.backend.max_threads
            )
        if as_json:
            _emit(report.sync_json(outcome))
        else:
            report.print_sync(console, outcome, all_mailboxes=all_mailboxes)
    status = outcome.run.status
    if status is RunStatus.BLOCKED:
        raise typer.Exit(EXIT_BLOCKED)
    if status in (RunStatus.FAILED, RunStatus.PARTIAL):
        raise typer.Exit(EXIT_FAILED)


@cli.command()
def plan(
    settings: SettingsOption = None,
    user: UserOption = None,
    verify: VerifyOption = False,
    force: Annotated[
        bool, typer.Option("--force", help="Show the plan as --force would carry it out.")
    ] = False,
    as_json: JsonOption = False,
    details: Annotated[
        bool, typer.Option("--details", help="List every op, not the first ten per mailbox.")
    ] = False,
) -> None:
    """Dry run: show what a sync would create, update and delete. Writes nothing."""
    request = _request(user, verify=verify, force=force)
    with _container(settings, as_json) as container:
        loaded, previews = container.engine.preview(request)
        if as_json:
            _emit(report.plan_json(loaded, previews))
        else:
            report.print_plan(_console(), loaded, previews, details=details)


@cli.command()
def status(
    settings: SettingsOption = None,
    as_json: JsonOption = False,
    runs: Annotated[int, typer.Option("--runs", min=1, max=100, help="How many recent runs to include.")] = 5,
) -> None:
    """Last runs, each mailbox's health, and the quarantined entries with their reasons."""
    with _container(settings, as_json) as container:
        store = container.store
        recent, health, quarantine = store.recent_runs(runs), store.health(), store.quarantine()
        if as_json:
            _emit(report.status_json(recent, health, quarantine))
        else:
            report.print_status(_console(), recent, health, quarantine)
    if any(h.error for h in health):
        raise typer.Exit(EXIT_FAILED)


@cli.command("config")
def show_config(settings: SettingsOption = None, as_json: JsonOption = False) -> None:
    """Check the settings and print them as they take effect (secrets masked)."""
    try:
        loaded = bootstrap.read_settings(bootstrap.settings_path(settings))
    except SettingsError as exc:
        _fail(exc, as_json, EXIT_USAGE)
    doc = loaded.model_dump(mode="json", exclude={"base_dir"})
    doc["state"]["url"] = _mask(loaded.state.url.get_secret_value())
    # A database URL is shown without its password rather than hidden whole, so it can be checked.
    for name in ("source", "targets"):
        url = getattr(getattr(loaded, name), "url", None)
        if isinstance(url, SecretStr):
            doc[name]["url"] = _mask(url.get_secret_value())
    if as_json:
        _emit(doc)
    else:
        Console().print_json(data=doc)
        Console().print(f"Settings in {loaded.origin} are valid.")


@cli.command("sandbox")
def serve_sandbox(
    tenant: Annotated[
        Path | None,
        typer.Option("--tenant", dir_okay=False, help="Tenant file (default: sandbox/demo.toml)."),
    ] = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="HTTP port for EWS and Graph (0: any free).")
    ] = 0,
    tls_port: Annotated[
        int,
        typer.Option("--tls-port", min=0, max=65535, help="HTTPS port of the OAuth authority (0: any free)."),
    ] = 0,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", file_okay=False, help="Where the CA and certificates go.")
    ] = None,
    request_log: Annotated[
        Path | None,
        typer.Option("--log", dir_okay=False, help="Also append the request log here (JSON lines)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", dir_okay=False, help="Keep the calendars in this JSON file between runs."),
    ] = None,
    latency_ms: Annotated[
        float | None, typer.Option("--latency-ms", min=0, help="Delay per request.")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault", help="Inject a fault, e.g. 'kind=429,probability=0.2,face=graph'; repeatable."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Serve the emulated Exchange tenant (EWS + Graph + OAuth) on 127.0.0.1 until interrupted."""
    import signal
    import threading

    from sandbox import persist
    from sandbox.conditions import Fault
    from sandbox.config import DEMO, TenantFileError, load_conditions, load_tenant
    from sandbox.server import Sandbox

    path = tenant or DEMO
    try:
        conditions = load_conditions(path)
        if latency_ms is not None:
            conditions.update(latency_ms=latency_ms)
        for spec in fault or []:
            conditions.add_fault(Fault(**_fault_options(spec)))
        tenant_store = load_tenant(path)
        if data is not None and data.exists():
            persist.load(tenant_store, data)
        server = Sandbox(
            tenant_store,
            conditions=conditions,
            port=port,
            tls_port=tls_port,
            state_dir=state_dir,
            log_path=request_log,
        ).start()
    except (TenantFileError, ValueError, TypeError, OSError) as exc:
        _fail(ConnectorError(str(exc), fix="fix the tenant file or the options"), as_json, EXIT_USAGE)
    info = server.info()
    if as_json:
        sys.stdout.write(json.dumps(info, ensure_ascii=False) + "\n")
    else:
        console = Console()
        console.print(
            f"Sandbox tenant {info['tenant_id']} ({len(info['mailboxes'])} mailboxes) is listening:"
        )
        for key in ("ews_url", "graph_url", "authority", "token_url", "ca_file", "admin_url"):
            console.print(f"  {key:<15} {info[key]}")
        console.print(f"  {'client_id':<15} {info['client_id']}   secret: {info['client_secret']}")
        console.print(f"  {'service_account':<15} {info['service_account']}   password: {info['password']}")
        console.print("Demo credentials only: this tenant exists on this machine alone. Ctrl-C stops it.")
    sys.stdout.flush()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(0.5)  # short waits keep the main thread responsive to the signals above
    server.stop()
    if data is not None:
        persist.save(server.tenant, data)


def _fault_options(spec: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        if not value:
            raise ValueError(f"fault option {part!r} is not key=value")
        key = key.strip()
        options[key] = (
            float(value)
            if key in {"probability", "retry_after", "delay"}
            else (int(value) if key == "times" else value.strip())
        )
    return options


def _mask(url: str) -> str:
    from adapters.state import mask_url

    return mask_url(url)


def main() -> None:
    cli()
