"""The tenant file (TOML): mailboxes, service accounts and their grants, app registrations, and
Exchange Online's EWS policy. ``sandbox/demo.toml`` is the documented example and the default.

Any problem in the file is reported with the key that has it, all at once, so an admin can fix the
file in one go.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sandbox.conditions import Conditions, Fault
from sandbox.tenant import AppRegistration, EwsPolicy, Mailbox, MailboxKind, ServiceAccount, Tenant

DEMO = Path(__file__).with_name("demo.toml")


class TenantFileError(ValueError):
    def __init__(self, origin: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"tenant file {origin}:\n" + "\n".join(f"  - {p}" for p in problems))


def load_tenant(path: Path = DEMO) -> Tenant:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TenantFileError(str(path), [f"cannot be read: {exc}"]) from None
    return tenant_from_dict(data, origin=str(path), base_dir=path.parent)


def tenant_from_dict(data: dict[str, Any], *, origin: str = "<dict>", base_dir: Path | None = None) -> Tenant:
    problems: list[str] = []
    section = data.get("tenant", {})
    tenant_id = str(section.get("id", "")) or _need(problems, "tenant.id")
    domain = str(section.get("domain", "")) or _need(problems, "tenant.domain")

    mailboxes = []
    for index, entry in enumerate(data.get("mailboxes", [])):
        where = f"mailboxes[{index}]"
        address = str(entry.get("address", "")).lower()
        if "@" not in address:
            problems.append(f"{where}.address: '{address}' is not an address")
            continue
        try:
            kind = MailboxKind(entry.get("kind", "user"))
        except ValueError:
            problems.append(f"{where}.kind: '{entry.get('kind')}' — use user, room or equipment")
            continue
        mailboxes.append(Mailbox(address, kind, str(entry.get("display_name", "")), entry.get("password")))

    known = {m.address for m in mailboxes}

    def grants(where: str, value: Any) -> frozenset[str]:
        values = [value] if isinstance(value, str) else list(value or [])
        out = frozenset(str(v).lower() for v in values)
        for unknown in sorted(out - known - {"*"}):
            problems.append(f"{where}: {unknown} is not a mailbox of this tenant")
        return out

    accounts = []
    for index, entry in enumerate(data.get("service_accounts", [])):
        where = f"service_accounts[{index}]"
        if not entry.get("username") or not entry.get("password"):
            problems.append(f"{where}: username and password are required")
            continue
        accounts.append(
            ServiceAccount(
                str(entry["username"]),
                str(entry["password"]),
                impersonate=grants(f"{where}.impersonate", entry.get("impersonate", [])),
                delegate=grants(f"{where}.delegate", entry.get("delegate", [])),
            )
        )

    apps = []
    for index, entry in enumerate(data.get("apps", [])):
        where = f"apps[{index}]"
        if not entry.get("client_id"):
            problems.append(f"{where}.client_id is required")
            continue
        certificate = None
        if entry.get("certificate"):
            cert_path = Path(str(entry["certificate"]))
            cert_path = cert_path if cert_path.is_absolute() or base_dir is None else base_dir / cert_path
            try:
                certificate = cert_path.read_text(encoding="utf-8")
            except OSError as exc:
                problems.append(f"{where}.certificate: cannot read {cert_path} ({exc.strerror})")
        if not entry.get("secret") and certificate is None:
            problems.append(f"{where}: give a secret or a certificate")
        apps.append(
            AppRegistration(
                client_id=str(entry["client_id"]),
                tenant_id=tenant_id,
                display_name=str(entry.get("display_name", "")),
                secret=entry.get("secret"),
                certificate_pem=certificate,
                mailboxes=grants(f"{where}.mailboxes", entry.get("mailboxes", ["*"])),
                graph=bool(entry.get("graph", True)),
                ews=bool(entry.get("ews", True)),
            )
        )

    policy = data.get("ews_policy", {})
    ews_policy = EwsPolicy(
        allowed=bool(policy.get("allowed", True)), reason=str(policy.get("reason", "EwsDisabledForTenant"))
    )
    if problems:
        raise TenantFileError(origin, problems)
    return Tenant(
        tenant_id=tenant_id,
        domain=domain,
        mailboxes=mailboxes,
        service_accounts=accounts,
        apps=apps,
        ews_policy=ews_policy,
    )


def _need(problems: list[str], key: str) -> str:
    problems.append(f"{key} is required")
    return ""


def conditions_from_dict(data: dict[str, Any], *, origin: str = "<dict>") -> Conditions:
    """The optional ``[conditions]`` table of a tenant file (latency, throttling, faults at start)."""
    section = dict(data.get("conditions", {}))
    faults = section.pop("faults", [])
    known = {"latency_ms", "jitter_ms", "concurrency_limit", "budget", "budget_window_s", "seed"}
    problems = [
        f"conditions.{key}: unknown key — use one of {', '.join(sorted(known))}"
        for key in section
        if key not in known
    ]
    built: list[Fault] = []
    for index, fault in enumerate(faults):
        try:
            built.append(Fault(**fault))
        except (TypeError, ValueError) as exc:
            problems.append(f"conditions.faults[{index}]: {exc}")
    if problems:
        raise TenantFileError(origin, problems)
    return Conditions(faults=built, **section)


def load_conditions(path: Path = DEMO) -> Conditions:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TenantFileError(str(path), [f"cannot be read: {exc}"]) from None
    return conditions_from_dict(data, origin=str(path))
