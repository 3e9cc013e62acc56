"""``connector scheduler``: cron expressions in the configured zone queue fast and verifying runs.

APScheduler keeps the clock (DESIGN §5: a well-kept scheduling library). Several replicas may run for
availability; each firing is queued once, by whichever replica claims the (job, scheduled time) slot
first in the coordinator. The slot is the *scheduled* time, not the moment the replica woke up, so
replicas whose clocks or wake-ups differ by a few seconds still agree on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from connector.errors import SettingsError
from connector.settings import ScheduleSection
from connector.state import SyncMode
from connector.sync import SyncRequest
from jobs.coordination import Coordinator

log = logging.getLogger(__name__)

#: A firing later than this (a stalled process) is skipped rather than queued late; also how far back
#: a replica looks for the scheduled time it is firing for.
MISFIRE_GRACE_S = 30


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    mode: SyncMode
    trigger: CronTrigger


def schedules(section: ScheduleSection, default_zone: str) -> list[Schedule]:
    zone = ZoneInfo(section.timezone or default_zone)
    found = []
    for name, mode, expression in (
        ("fast", SyncMode.FAST, section.fast),
        ("verify", SyncMode.VERIFY, section.verify),
    ):
        if not expression:
            continue
        try:
            trigger = CronTrigger.from_crontab(expression, timezone=zone)
        except ValueError as exc:
            raise SettingsError(
                [f"schedule.{name}: {exc} — check the cron expression {expression!r}"]
            ) from None
        found.append(Schedule(name, mode, trigger))
    return found


class Scheduler:
    def __init__(
        self, plans: list[Schedule], coordinator: Coordinator, submit: Callable[[SyncRequest], int]
    ) -> None:
        self._plans = plans
        self._coordinator = coordinator
        self._submit = submit
        self._scheduler = BackgroundScheduler()

    def fire(self, plan: Schedule, now: datetime | None = None) -> int | None:
        """Queue the run of ``plan`` for the slot just reached, unless another replica did."""
        zone = plan.trigger.timezone
        now = now or datetime.now(zone)
        # Subtract in UTC: wall-clock arithmetic across a DST change lands on a time that does not
        # exist (or exists twice) and finds no slot due.
        since = (now.astimezone(UTC) - timedelta(seconds=MISFIRE_GRACE_S)).astimezone(zone)
        slot = plan.trigger.get_next_fire_time(None, since)
        if slot is None or slot > now:
            log.warning("schedule %s fired at %s with no slot due; skipped", plan.name, now.isoformat())
            return None
        # Local time with its offset: readable, and the repeated autumn hour still gives two labels.
        stamp = slot.isoformat(timespec="minutes")
        if not self._coordinator.first_to_fire(plan.name, stamp):
            log.info("schedule %s @ %s: already queued by another scheduler", plan.name, stamp)
            return None
        run_id = self._submit(SyncRequest(plan.mode, (), False, trigger=f"schedule:{plan.name}@{stamp}"))
        log.info("schedule %s @ %s: queued run %d", plan.name, stamp, run_id)
        return run_id

    def run(self, stop: threading.Event) -> None:
        for plan in self._plans:
            self._scheduler.add_job(
                self._fire_safely,
                plan.trigger,
                args=(plan,),
                id=plan.name,
                misfire_grace_time=MISFIRE_GRACE_S,
                coalesce=True,
                max_instances=1,
            )
        self._scheduler.start()
        for job in self._scheduler.get_jobs():
            log.info("schedule %s: next run at %s", job.id, job.next_run_time)
        try:
            while not stop.is_set():
                # Short waits keep the main thread responsive to the signal handlers that set ``stop``.
                stop.wait(0.5)
        finally:
            self._scheduler.shutdown(wait=False)

    def _fire_safely(self, plan: Schedule) -> None:
        try:
            self.fire(plan)
        except Exception:
            # Redis or the database may be back by the next firing; the scheduler itself must live on.
            log.exception("schedule %s: could not queue the run", plan.name)
