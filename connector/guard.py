"""The delete guard (DESIGN §4.5): a source that fails or suddenly returns nothing deletes nothing.

A mailbox whose plan would delete more than ``max_share`` of the events we manage there in the window
(and at least ``min_deletes`` of them) is held back whole — creates and updates too, since a source in
that state is not to be trusted — until someone reruns with ``--force``. A source that returned no items
at all holds back every delete of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from connector.models import MailboxPlan, OpKind


@dataclass(frozen=True, slots=True)
class DeleteGuard:
    max_share: float = 0.5
    min_deletes: int = 5

    def check(
        self, plan: MailboxPlan, *, managed_in_window: int, source_items: int, force: bool
    ) -> MailboxPlan:
        deletes = plan.count(OpKind.DELETE)
        if force or deletes == 0:
            return plan
        if source_items == 0:
            return replace(
                plan,
                blocked_reason=(
                    f"the source returned no entries at all, so {deletes} event(s) would be deleted"
                    " — check the source; if it really is empty, run again with --force"
                ),
            )
        share = deletes / max(managed_in_window, 1)
        if deletes >= self.min_deletes and share > self.max_share:
            return replace(
                plan,
                blocked_reason=(
                    f"{deletes} of {managed_in_window} managed events ({share:.0%}) would be deleted,"
                    f" more than the allowed {self.max_share:.0%} — check the source;"
                    " if this is intended, run again with --force"
                ),
            )
        return plan
