"""The ``connector`` command.

Exit codes: 0 done; 1 the run failed or some mailboxes failed; 2 unusable settings or arguments;
3 the delete guard held changes back (run again with ``--force`` once the source is checked).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol, TypeVar

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app import bootstrap, report
from app.jobs import JobSystem, build_jobs, check_users, in_process_worker
from connector.errors import ConnectorError, SettingsError, UsageError
from connector.settings import Settings
from connector.state import QuarantineEntry, RunRecord, RunStatus, SyncMode
from connector.sync import RunReport, SyncRequest

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


class _Closable(Protocol):
    def close(self) -> None: ...


_Built = TypeVar("_Built", bound=_Closable)


@contextmanager
def _built(
    settings_file: Path | None, as_json: bool, build: Callable[[Settings], _Built]
) -> Iterator[_Built]:
    """Settings read and ``build`` applied; connector errors, then and inside, end the command with
    their exit code (2 for settings and usage, 1 otherwise); what was built is closed."""
    try:
        built = build(bootstrap.read_settings(bootstrap.settings_path(settings_file)))
    except ConnectorError as exc:
        _fail(exc, as_json, EXIT_USAGE if isinstance(exc, SettingsError) else EXIT_FAILED)
    try:
        yield built
    except UsageError as exc:
        _fail(exc, as_json, EXIT_USAGE)
    except ConnectorError as exc:
        _fail(exc, as_json, EXIT_FAILED)
    finally:
        built.close()


def _container(settings_file: Path | None, as_json: bool) -> AbstractContextManager[bootstrap.Container]:
    return _built(settings_file, as_json, bootstrap.build)


def _job_system(settings_file: Path | None, as_json: bool) -> AbstractContextManager[JobSystem]:
    return _built(settings_file, as_json, _jobs_for_command)


def _jobs_for_command(settings: Settings) -> JobSystem:
    system = build_jobs(settings)
    if system.in_process:
        # Built now, not in the first job: a broken backend setting must stop the command with its
        # message instead of becoming a job that fails and retries.
        try:
            system.context.services  # noqa: B018
        except BaseException:
            system.close()
            raise
    return system


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
    no_wait: Annotated[
        bool,
        typer.Option("--no-wait", help="With Redis: queue the run, print its id and return at once."),
    ] = False,
) -> None:
    """Sync now: push new, changed and removed entries to the calendars.

    On the embedded default the run's jobs execute inside this command; with [jobs] redis_url set they
    are queued for the `connector worker` processes and this command follows the run."""
    request = _request(user, verify=verify, force=force)
    with _job_system(settings, as_json) as system:
        if no_wait and system.in_process:
            _fail(
                UsageError(
                    "--no-wait needs a worker to run the jobs",
                    fix="set [jobs] redis_url and start `connector worker`, or leave out --no-wait",
                ),
                as_json,
                EXIT_USAGE,
            )
        check_users(system.settings, request.users)
        with ExitStack() as stack:
            stalled = stack.enter_context(in_process_worker(system)) if system.in_process else None
            run_id = system.runs.submit(request)
            if no_wait:
                _emit({"run_id": run_id}) if as_json else _console().print(f"Run {run_id} queued.")
                return
            record = _follow(system, run_id, stalled, show=not as_json and sys.stderr.isatty())
        quarantine = _run_quarantine(system, record, partial=bool(request.users))
    outcome = RunReport(record, None, tuple(quarantine))
    if as_json:
        _emit(report.sync_json(outcome))
    else:
        report.print_sync(_console(), outcome, all_mailboxes=all_mailboxes)
    status = outcome.run.status
    if status is RunStatus.BLOCKED:
        raise typer.Exit(EXIT_BLOCKED)
    if status in (RunStatus.FAILED, RunStatus.PARTIAL):
        raise typer.Exit(EXIT_FAILED)


def _follow(system: JobSystem, run_id: int, stalled: Callable[[], bool] | None, *, show: bool) -> RunRecord:
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
        transient=True,
    ) as progress:
        task = progress.add_task("Reading the source", total=None)

        def update(record: RunRecord) -> None:
            if record.status is RunStatus.QUEUED:
                progress.update(task, description="Waiting for a worker")
            elif record.status is RunStatus.RUNNING:
                latest = max(record.results, key=lambda r: r.finished_at, default=None)
                progress.update(
                    task,
                    total=record.mailboxes_total,
                    completed=record.mailboxes_done,
                    description=f"Synced {latest.mailbox}" if latest else "Syncing mailboxes",
                )

        return system.runs.wait(run_id, on_progress=update if show else None, stalled=stalled)


def _run_quarantine(system: JobSystem, record: RunRecord, *, partial: bool) -> list[QuarantineEntry]:
    entries = system.store.quarantine()
    if not partial:
        return entries
    mailboxes = {r.mailbox for r in record.results}
    return [q for q in entries if q.mailbox in mailboxes]


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


def _needs_redis(system: JobSystem, command: str, as_json: bool = False) -> None:
    if system.in_process:
        _fail(
            UsageError(
                f"`connector {command}` needs Redis: [jobs] redis_url is not set",
                fix="set [jobs] redis_url (or CONNECTOR__JOBS__REDIS_URL); without it `connector sync`"
                " runs the jobs in-process",
            ),
            as_json,
            EXIT_USAGE,
        )
    try:
        system.coordinator.ping()
    except Exception as exc:
        _fail(
            ConnectorError(
                f"Redis is not reachable ({type(exc).__name__})",
                fix="start Redis or correct [jobs] redis_url",
            ),
            as_json,
            EXIT_FAILED,
        )


@cli.command()
def worker(
    settings: SettingsOption = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads", "-t", min=1, max=64, help="Sync threads per process (default: backend.max_threads)."
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option("--processes", "-p", min=1, max=64, help="Worker processes (default: jobs.processes)."),
    ] = None,
) -> None:
    """Run the Dramatiq worker pool that executes queued runs (needs [jobs] redis_url).

    SIGTERM or Ctrl-C stops it gracefully: running mailbox syncs finish (up to
    jobs.shutdown_timeout_s), prefetched jobs go back to the queue."""
    import os

    path = bootstrap.settings_path(settings).resolve()
    env = dict(os.environ, CONNECTOR_SETTINGS=str(path))
    if threads is not None:
        # The thread count is also the limit the actors check themselves against (JobLimits).
        env["CONNECTOR__BACKEND__MAX_THREADS"] = str(threads)
    with _job_system(path, False) as system:
        _needs_redis(system, "worker")
        loaded = system.settings
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "app.worker_entry:broker",
        "--processes",
        str(processes or loaded.jobs.processes),
        "--threads",
        str(threads or loaded.backend.max_threads),
        "--worker-shutdown-timeout",
        str(loaded.jobs.shutdown_timeout_s * 1000),
    ]
    # Syncs are long: a worker holding more jobs than it has threads keeps them from an idle worker
    # elsewhere (Dramatiq prefetches twice its threads by default).
    env.setdefault("dramatiq_queue_prefetch", argv[argv.index("--threads") + 1])
    sys.stdout.flush()
    sys.stderr.flush()
    # Dramatiq's own CLI manages the processes, their signals and graceful shutdown: exec it so a
    # SIGTERM from a supervisor reaches it directly.
    os.execve(sys.executable, argv, env)


@cli.command()
def scheduler(settings: SettingsOption = None) -> None:
    """Queue runs on the cron schedule of [schedule] (needs [jobs] redis_url). Replicas are safe: each
    firing is queued once."""
    import signal
    import threading

    from jobs.scheduler import Scheduler, schedules

    with _job_system(settings, False) as system:
        _needs_redis(system, "scheduler")
        try:
            plans = schedules(system.settings.schedule, system.settings.connector.timezone)
        except SettingsError as exc:
            _fail(exc, False, EXIT_USAGE)
        if not plans:
            _fail(
                UsageError(
                    "no schedule is set", fix='set [schedule] fast and/or verify, e.g. fast = "*/15 * * * *"'
                ),
                False,
                EXIT_USAGE,
            )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        for plan in plans:
            Console(stderr=True).print(f"schedule {plan.name}: {plan.trigger}", highlight=False)
        Scheduler(plans, system.coordinator, system.runs.submit).run(stop)


@cli.command()
def serve(
    settings: SettingsOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Listen address (default: api.host).")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="TCP port (default: api.port).")
    ] = None,
) -> None:
    """Serve the HTTP API for the host application (needs [jobs] redis_url and [api.tokens]); the
    OpenAPI document is at /openapi.json, interactive docs at /docs."""
    import uvicorn

    from app.api import create_app

    with _job_system(settings, False) as system:
        _needs_redis(system, "serve")
        if not system.settings.api.tokens:
            _fail(
                UsageError(
                    "no API token is configured, so every request would be refused",
                    fix='add [api.tokens] planning = { env = "CONNECTOR_API_TOKEN" }',
                ),
                False,
                EXIT_USAGE,
            )
        uvicorn.run(
            create_app(system),
            host=host or system.settings.api.host,
            port=system.settings.api.port if port is None else port,
            log_level="info",
            access_log=False,
        )


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
