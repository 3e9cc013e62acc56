"""The directory of targets: which source owner goes to which mailbox, and who is enabled.

Owners are matched by owner key or by mailbox address, case-insensitively (host applications are not
consistent about case in employee ids or addresses).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from connector.errors import UsageError
from connector.models import Rejected, Target, TargetKind

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def looks_like_address(value: str) -> bool:
    return bool(_ADDRESS.match(value))


class Directory:
    """Read-only after construction.

    With ``owners_are_addresses`` an owner that is itself a mailbox address is a target even if not
    listed (``[targets] kind = "source"``: the source names the mailboxes).
    """

    def __init__(self, targets: Iterable[Target], owners_are_addresses: bool = False) -> None:
        self.targets = tuple(targets)
        self.owners_are_addresses = owners_are_addresses
        self._index: dict[str, Target] = {}
        for target in self.targets:
            self._index[target.owner_key.casefold()] = target
            self._index[target.address] = target

    @classmethod
    def build(
        cls, items: Iterable[Target | Rejected], *, owners_are_addresses: bool = False
    ) -> tuple[Directory, list[Rejected]]:
        """Keep the first target for each address and owner key; later duplicates are rejected."""
        targets: list[Target] = []
        rejected: list[Rejected] = []
        by_address: dict[str, Target] = {}
        by_owner: dict[str, Target] = {}
        for item in items:
            if isinstance(item, Rejected):
                rejected.append(item)
                continue
            target = Target(
                address=item.address.strip().lower(),
                owner_key=item.owner_key.strip() or item.address.strip().lower(),
                kind=item.kind,
                enabled=item.enabled,
                display_name=item.display_name,
            )
            if not looks_like_address(target.address):
                rejected.append(_bad(target, f"'{target.address}' is not a mailbox address"))
            elif target.address in by_address:
                rejected.append(_bad(target, f"address {target.address} is listed twice"))
            elif target.owner_key.casefold() in by_owner:
                first = by_owner[target.owner_key.casefold()]
                rejected.append(
                    _bad(target, f"owner key {target.owner_key} is already used by {first.address}")
                )
            else:
                targets.append(target)
                by_address[target.address] = target
                by_owner[target.owner_key.casefold()] = target
        return cls(tuple(targets), owners_are_addresses), rejected

    def resolve(self, owner: str) -> Target | None:
        key = owner.strip().casefold()
        found = self._index.get(key)
        if found is None and self.owners_are_addresses and looks_like_address(key):
            found = Target(address=key, owner_key=key, kind=TargetKind.USER)
        return found

    def enabled_target(self, user: str) -> Target:
        """The enabled target a user names (address or owner key); ``UsageError`` otherwise."""
        target = self.resolve(user)
        if target is None or not target.enabled:
            state = "is disabled" if target is not None else "is not in the target directory"
            raise UsageError(
                f"{user} {state}", fix="name an enabled user or resource, or enable it in the targets"
            )
        return target

    def enabled(self) -> Iterator[Target]:
        return (t for t in self.targets if t.enabled)

    def by_address(self, address: str) -> Target | None:
        target = self.resolve(address)
        return target if target is not None and target.address == address.strip().lower() else None


def _bad(target: Target, reason: str) -> Rejected:
    return Rejected(source_key="", owner=target.address, reason=f"target {reason} — fix the targets list")
