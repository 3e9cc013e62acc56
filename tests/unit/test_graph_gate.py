"""The Graph backend's per-mailbox pacing, on a fake clock."""

from __future__ import annotations

import pytest

from adapters.graph.gate import MailboxGate
from connector.errors import ThrottledError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_nothing_is_sent_to_a_mailbox_before_its_retry_after() -> None:
    clock = Clock()
    gate = MailboxGate(per_mailbox=4, total=8, max_wait=10, clock=clock, sleep=clock.sleep)
    gate.defer("A@contoso.example", 3.0)
    gate.defer("a@contoso.example", 1.0)  # a shorter answer never shortens an earlier one
    with gate.turn("a@contoso.example"):
        assert clock.now >= 103.0
    assert clock.slept == [3.0]
    with gate.turn("b@contoso.example"):  # other mailboxes are not held up
        assert clock.slept == [3.0]


def test_a_long_retry_after_is_not_slept_but_raised_for_a_later_retry() -> None:
    clock = Clock()
    gate = MailboxGate(per_mailbox=4, total=8, max_wait=10, clock=clock, sleep=clock.sleep)
    gate.defer("a@contoso.example", 120.0)
    turn = gate.turn("a@contoso.example")
    with pytest.raises(ThrottledError) as caught:
        turn.__enter__()  # the wait is too long to sleep: it is raised before any slot is taken
    assert caught.value.retry_after == pytest.approx(120.0)
    assert clock.slept == []


def test_backends_of_one_app_share_one_gate_and_other_apps_do_not() -> None:
    key = ("https://graph.example/v1.0", "tenant", "app-1")
    first = MailboxGate.shared(key, per_mailbox=4, total=8, max_wait=10)
    again = MailboxGate.shared(key, per_mailbox=4, total=8, max_wait=10)
    other = MailboxGate.shared((*key[:2], "app-2"), per_mailbox=4, total=8, max_wait=10)
    assert first is again and first is not other
    first.defer("a@contoso.example", 5.0)
    assert again.wait("a@contoso.example") > 4.0 and other.wait("a@contoso.example") == 0.0
