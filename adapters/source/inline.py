"""Targets listed in the settings themselves (``[targets] kind = "inline"``), or none at all when the
source's owners are the mailbox addresses (``kind = "source"``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from connector.models import Rejected, Target


class StaticTargets:
    def __init__(self, targets: Iterable[Target], description: str) -> None:
        self._targets = tuple(targets)
        self._description = description

    def describe(self) -> str:
        return self._description

    def read_targets(self) -> Iterator[Target | Rejected]:
        return iter(self._targets)
