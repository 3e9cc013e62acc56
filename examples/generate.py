"""Writes the example data: ``targets.csv`` (who gets a calendar) and ``schedule.csv`` (what goes in it).

    python examples/generate.py --start 2026-11-16 --weeks 26 --out examples/

The output depends only on the arguments (``random.Random(seed)``, no clock, no set iteration order), so
the committed files can be checked by regenerating them. The data is meant to exercise what users judge
a calendar push by: shifts, rooms, all-day and multi-day entries, entries across DST changes in Europe
and the US, other time zones, non-ASCII text, cancelled rows and a handful of deliberately invalid rows
(their titles start with ``INVALID:`` and say what is wrong).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from adapters.source.rows import ENTRY_COLUMN_ORDER

DOMAIN = "contoso.example"

SCHEDULE_COLUMNS = (*ENTRY_COLUMN_ORDER, "project")
TARGET_COLUMNS = ("address", "owner_key", "kind", "enabled", "display_name")


@dataclass(frozen=True)
class Person:
    owner_key: str
    local_part: str
    display_name: str
    enabled: bool = True

    @property
    def address(self) -> str:
        return f"{self.local_part}@{DOMAIN}"


PEOPLE = (
    Person("E1001", "asa.lindqvist", "Åsa Lindqvist"),
    Person("E1002", "juergen.weiss", "Jürgen Weiß"),
    Person("E1003", "malgorzata.kowalska", "Małgorzata Kowalska"),
    Person("E1004", "hanako.yamada", "山田 花子"),
    Person("E1005", "bjorn.ostergaard", "Bjørn Østergaard"),
    Person("E1006", "lukasz.wisniewski", "Łukasz Wiśniewski"),
    Person("E1007", "heike.grossmann", "Heike Großmann"),
    Person("E1008", "soren.makinen", "Sören Mäkinen"),
    Person("E1009", "ken.sato", "佐藤 健"),
    Person("E1010", "zofia.krol", "Zofia Król"),
    Person("E1011", "nils.akesson", "Nils Åkesson"),
    Person("E1012", "ingrid.baekkelund", "Ingrid Bækkelund"),
    Person("E1013", "pawel.zielinski", "Paweł Zieliński"),
    Person("E1014", "kaethe.mueller", "Käthe Müller"),
    Person("E1015", "na.li", "李 娜"),
    Person("E1016", "sigridur.jonsdottir", "Sigríður Jónsdóttir"),
    Person("E1017", "olof.oberg", "Olof Öberg"),
    # Admins start with a small group: these two are listed but not switched on yet.
    Person("E1018", "agnieszka.wojcik", "Agnieszka Wójcik", enabled=False),
    Person("E1019", "matthias.voss", "Matthias Voß"),
    Person("E1020", "ichiro.suzuki", "鈴木 一郎", enabled=False),
)
SHIFT_WORKERS = PEOPLE[:10]
OFFICE = PEOPLE[10:]


@dataclass(frozen=True)
class Resource:
    owner_key: str
    local_part: str
    kind: str
    display_name: str

    @property
    def address(self) -> str:
        return f"{self.local_part}@{DOMAIN}"


ROOM_SOUTH = Resource("R01", "konferenzraum.sued", "room", "Konferenzraum Süd")
ROOM_A = Resource("R02", "kaigishitsu.a", "room", "会議室 A")
BEAMER = Resource("R03", "beamer3", "equipment", "Beamer 3")
RESOURCES = (ROOM_SOUTH, ROOM_A, BEAMER)

CANDIDATES = (
    "Anna Kowalczyk",
    "Jörg Baßler",
    "Émilie Dubois",
    "田中 太郎",
    "Frida Nyström",
    "Grzegorz Łęcki",
    "Lars Ødegård",
    "María José Núñez",
    "高橋 美咲",
    "Ole Håkonsen",
)
PROJECTS = ("Projekt Nordlicht", "Łódź-Rollout", "東京プロジェクト 🚀", "Lager Süd", "Øresund Shipping")
MEETINGS = (
    "Teamrunde Logistik",
    "Kundentermin Øresund Shipping",
    "Quartalsplanung 📊",
    "Workshop Łódź-Rollout",
    "打ち合わせ — Tokyo team",
    "Übergabe Frühschicht → Spätschicht",
)
TRAININGS = (
    "Staplerschein — Auffrischung",
    "Erste-Hilfe-Kurs ⛑️",
    "Brandschutzhelfer",
    "Excel für Fortgeschrittene",
)

# Fixed dates the example must cover whatever the seed: year end, the EU and US DST changes.
NEW_YEARS_EVE = date(2026, 12, 31)
EU_DST_NIGHT = date(2027, 3, 27)
US_DST_NIGHT = date(2027, 3, 13)


@dataclass
class Generator:
    start: date
    weeks: int
    rng: random.Random
    rows: list[dict[str, str]] = field(default_factory=list)
    counter: int = 0

    @property
    def end(self) -> date:
        return self.start + timedelta(weeks=self.weeks)

    def in_range(self, day: date) -> bool:
        return self.start <= day < self.end

    def weekdays(self) -> list[date]:
        days = (self.start + timedelta(days=n) for n in range(self.weeks * 7))
        return [day for day in days if day.weekday() < 5]

    def add(self, prefix: str, owner: str, start: str, end: str, title: str, **cells: str) -> dict[str, str]:
        self.counter += 1
        row = dict.fromkeys(SCHEDULE_COLUMNS, "")
        row.update(key=f"{prefix}-{self.counter:06d}", owner=owner, start=start, end=end, title=title)
        row.update(cells)
        self.rows.append(row)
        return row


def _timed(day: date, hour: int, minute: int = 0, *, sep: str = "T") -> str:
    return datetime(day.year, day.month, day.day, hour, minute).isoformat(sep=sep, timespec="minutes")


def generate(start: date, weeks: int, seed: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The target rows and the schedule rows, in file order."""
    gen = Generator(start, weeks, random.Random(seed))
    days = gen.weekdays()
    away = _vacations(gen)
    _shifts(gen, days, away)
    _interviews(gen, days)
    _bookings(gen, days)
    _trainings(gen, days)
    _specials(gen)
    _owners_by_address(gen)
    _cancel_some(gen)
    _invalid_rows(gen)
    # Sorted by start as an export would be; ties by key keep the order stable.
    schedule = sorted(gen.rows, key=lambda row: (row["start"], row["key"]))
    return _targets(), schedule


def _targets() -> list[dict[str, str]]:
    rows = [
        {
            "address": person.address,
            "owner_key": person.owner_key,
            "kind": "user",
            "enabled": "true" if person.enabled else "false",
            "display_name": person.display_name,
        }
        for person in PEOPLE
    ]
    rows += [
        {
            "address": resource.address,
            "owner_key": resource.owner_key,
            "kind": resource.kind,
            "enabled": "true",
            "display_name": resource.display_name,
        }
        for resource in RESOURCES
    ]
    return rows


def _vacations(gen: Generator) -> dict[str, set[date]]:
    """Multi-day all-day vacations (3 to 5 days, end inclusive); returns who is away on which day."""
    away: dict[str, set[date]] = {person.owner_key: set() for person in PEOPLE}
    blocks: list[tuple[Person, date, int]] = []
    year_end = date(2026, 12, 28)
    if gen.in_range(year_end) and gen.in_range(NEW_YEARS_EVE):
        blocks.append((PEOPLE[3], year_end, 5))
    for _ in range(30):
        person = gen.rng.choice(PEOPLE)
        first = gen.start + timedelta(days=gen.rng.randrange(gen.weeks * 7 - 7))
        blocks.append((person, first, gen.rng.randint(3, 5)))
    for person, first, length in blocks:
        last = first + timedelta(days=length - 1)
        gen.add(
            "VAC",
            person.owner_key,
            first.isoformat(),
            last.isoformat(),
            "Urlaub 🏖️" if gen.rng.random() < 0.5 else "Urlaub",
            all_day="true",
            category="Urlaub",
            show_as="oof",
            sensitivity="private",
        )
        away[person.owner_key].update(first + timedelta(days=n) for n in range(length))
    return away


def _shifts(gen: Generator, days: Sequence[date], away: dict[str, set[date]]) -> None:
    for day in days:
        present = [person for person in SHIFT_WORKERS if day not in away[person.owner_key]]
        early, late = gen.rng.sample(present, 2)
        project = gen.rng.choice(PROJECTS) if gen.rng.random() < 0.2 else ""
        gen.add(
            "SHIFT",
            early.owner_key,
            _timed(day, 8),
            _timed(day, 16),
            "Frühschicht",
            location="Lager Süd, Tor 3",
            category="Schicht",
            project=project,
        )
        gen.add(
            "SHIFT",
            late.owner_key,
            _timed(day, 14),
            _timed(day, 22),
            "Spätschicht",
            location="Lager Süd, Tor 3",
            category="Schicht",
            reminder_minutes="30" if gen.rng.random() < 0.1 else "",
            project=project,
        )


def _interviews(gen: Generator, days: Sequence[date]) -> None:
    for day in gen.rng.sample(list(days), min(len(days), 3 * gen.weeks)):
        owner = gen.rng.choice(OFFICE)
        candidate = gen.rng.choice(CANDIDATES)
        hour = gen.rng.randint(9, 15)
        gen.add(
            "INTV",
            owner.owner_key,
            _timed(day, hour),
            _timed(day, hour + 1),
            f"Vorstellungsgespräch: {candidate}",
            # A multi-line body: CSV quoting must carry the line break.
            body=f"Kandidat/in: {candidate}\nBitte den Lebenslauf vorher lesen 📄",
            location=gen.rng.choice((ROOM_SOUTH, ROOM_A)).display_name,
            category="Interview",
            show_as="busy",
            sensitivity="confidential",
            reminder_minutes="15",
            project="Recruiting 2027",
        )


def _bookings(gen: Generator, days: Sequence[date]) -> None:
    for day in gen.rng.sample(list(days), min(len(days), 2 * gen.weeks)):
        room = gen.rng.choice((ROOM_SOUTH, ROOM_A))
        booker = gen.rng.choice(OFFICE)
        hour = gen.rng.randint(8, 16)
        gen.add(
            "ROOM",
            room.owner_key,
            # Written with a space instead of "T", as spreadsheets export it.
            _timed(day, hour, sep=" "),
            _timed(day, hour + gen.rng.randint(1, 2), sep=" "),
            gen.rng.choice(MEETINGS),
            body=f"Gebucht von {booker.display_name}",
            location=room.display_name,
            category="Raumbuchung",
            reminder_minutes="10",
            project=gen.rng.choice(PROJECTS),
        )
    for day in gen.rng.sample(list(days), min(len(days), 3 * gen.weeks // 2)):
        booker = gen.rng.choice(OFFICE)
        hour = gen.rng.randint(8, 15)
        gen.add(
            "EQUIP",
            BEAMER.owner_key,
            _timed(day, hour),
            _timed(day, hour + 2, 30),
            f"Beamer für {booker.display_name}",
            location="Ausgabe: Empfang Süd",
            category="Gerät",
            show_as="busy",
        )


def _trainings(gen: Generator, days: Sequence[date]) -> None:
    for day in gen.rng.sample(list(days), min(len(days), 25)):
        person = gen.rng.choice(PEOPLE)
        gen.add(
            "TRAIN",
            person.owner_key,
            day.isoformat(),
            "",  # one day: an empty end means the start day only
            gen.rng.choice(TRAININGS),
            all_day="yes",
            location="Schulungszentrum Köln",
            category="Schulung",
            show_as="workingElsewhere",
        )


def _specials(gen: Generator) -> None:
    """Rows at fixed dates that exercise calendar edge cases; only those inside the range."""
    if gen.in_range(NEW_YEARS_EVE):
        gen.add(
            "DAY",
            "E1012",
            NEW_YEARS_EVE.isoformat(),
            "",
            "🎆 Silvester — Betriebsruhe",
            all_day="true",
            category="Betrieb",
            show_as="free",
        )
    fair = date(2027, 2, 9)
    if gen.in_range(fair):
        for owner in ("E1011", "E1013"):
            gen.add(
                "FAIR",
                owner,
                _timed(fair, 9),
                _timed(fair + timedelta(days=2), 17),
                "Fachmesse „Logistik Nord“ — Messestand",
                body="Standdienst an allen drei Messetagen.\nAnreise am Vorabend.",
                location="Messe Düsseldorf, Halle 5, Stand B12",
                timezone="Europe/Berlin",
                category="Messe",
                show_as="workingElsewhere",
                project="Projekt Nordlicht",
            )
    if gen.in_range(EU_DST_NIGHT):
        # Night shifts before and across the EU change (02:00 → 03:00 on 2027-03-28): 7 real hours.
        for night in (EU_DST_NIGHT - timedelta(days=1), EU_DST_NIGHT):
            gen.add(
                "NIGHT",
                "E1003",
                _timed(night, 22),
                _timed(night + timedelta(days=1), 6),
                "Nachtschicht 🌙",
                location="Lager Süd, Tor 3",
                category="Schicht",
                show_as="busy",
            )
        gen.add(
            "SHIFT",
            "E1015",
            _timed(EU_DST_NIGHT + timedelta(days=2), 9),
            _timed(EU_DST_NIGHT + timedelta(days=2), 17),
            "Einarbeitung Lager Süd (erster Tag Sommerzeit)",
            location="Lager Süd",
            category="Schicht",
        )
    if gen.in_range(US_DST_NIGHT):
        gen.add(
            "NY",
            "E1016",
            _timed(US_DST_NIGHT, 22),
            _timed(US_DST_NIGHT + timedelta(days=1), 6),
            "On-call New York (US DST change)",
            timezone="America/New_York",
            category="Bereitschaft",
            sensitivity="personal",
        )
        gen.add(
            "NY",
            "E1014",
            _timed(US_DST_NIGHT + timedelta(days=10), 9),
            _timed(US_DST_NIGHT + timedelta(days=10), 10),
            "Call with the New York office",
            body="Between the US and the EU clock change the offset is 4 hours, not 6.",
            timezone="America/New_York",
            category="Meeting",
        )
    review = date(2027, 1, 20)
    if gen.in_range(review):
        gen.add(
            "NY",
            "E1014",
            _timed(review, 10),
            _timed(review, 11, 30),
            "Quarterly review — New York office",
            location="Zoom",
            timezone="America/New_York",
            category="Meeting",
            reminder_minutes="0",
        )
    tokyo_call = date(2027, 1, 12)
    if gen.in_range(tokyo_call):
        # Given as UTC instants: 00:00Z is 09:00 in Tokyo.
        gen.add(
            "TYO",
            "E1004",
            f"{tokyo_call.isoformat()}T00:00:00Z",
            f"{tokyo_call.isoformat()}T01:00:00Z",
            "東京オフィスとの定例会議",
            body="議題: 出荷計画と在庫 📦",
            location="Teams",
            timezone="Asia/Tokyo",
            category="Meeting",
            project="東京プロジェクト 🚀",
        )
    tokyo_trip = date(2027, 4, 6)
    if gen.in_range(tokyo_trip):
        gen.add(
            "TYO",
            "E1009",
            _timed(tokyo_trip, 10),
            _timed(tokyo_trip, 18),
            "出張: 東京本社",
            location="東京都千代田区",
            timezone="Asia/Tokyo",
            category="Reise",
            show_as="workingElsewhere",
        )


def _owners_by_address(gen: Generator) -> None:
    """Some host applications name the mailbox instead of the employee id."""
    by_key = {person.owner_key: person.address for person in PEOPLE}
    by_key.update((resource.owner_key, resource.address) for resource in RESOURCES)
    for row in gen.rng.sample(gen.rows, 10):
        row["owner"] = by_key[row["owner"]]


def _cancel_some(gen: Generator) -> None:
    """Cancelled rows must vanish from the calendars; spelled the ways host applications spell it."""
    candidates = [row for row in gen.rows if row["key"].startswith(("INTV-", "ROOM-"))]
    for row, status in zip(
        gen.rng.sample(candidates, 3), ("cancelled", "Canceled", "CANCELLED"), strict=True
    ):
        row["status"] = status


def _invalid_rows(gen: Generator) -> None:
    gen.add(
        "BAD", "E1011", "2027-01-14T15:00", "2027-01-14T13:00", "INVALID: end before start (15:00 → 13:00)"
    )
    gen.add(
        "BAD",
        "E1012",
        "2027-01-15T10:00",
        "2027-01-15T11:00",
        "INVALID: unknown time zone 'Europe/Pariss'",
        timezone="Europe/Pariss",
    )
    gen.add(
        "BAD",
        "E9999",
        "2027-01-18T10:00",
        "2027-01-18T11:00",
        "INVALID: unknown owner 'E9999' (not in targets)",
    )
    prefix = "INVALID: title of 300 characters (Exchange accepts 255) — "
    # Ends in a non-blank so that trimming the title keeps all 300 characters.
    title = (prefix + "Straßenbahn-Übergabe am Lager Süd, " * 10)[:299] + "."
    gen.add("BAD", "E1013", "2027-01-19T10:00", "2027-01-19T11:00", title)
    gen.add("BAD", "E1014", "2026-13-45", "2026-12-14T10:00", "INVALID: unparseable date '2026-13-45'")
    gen.add(
        "BAD",
        "E1015",
        "2027-03-28T02:30",
        "2027-03-28T04:00",
        "INVALID: 02:30 does not exist in Europe/Paris on 2027-03-28 (DST gap)",
        timezone="Europe/Paris",
    )
    first_shift = next(row for row in gen.rows if row["key"].startswith("SHIFT-"))
    duplicate = gen.add(
        "BAD",
        first_shift["owner"],
        _timed(gen.start + timedelta(days=3), 6),
        _timed(gen.start + timedelta(days=3), 7),
        f"INVALID: duplicate key {first_shift['key']} (same key as an earlier row)",
    )
    duplicate["key"] = first_shift["key"]


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> None:
    # "\n" rather than csv's default "\r\n": the files live in git and are read on every platform.
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--start", type=date.fromisoformat, required=True, help="first day (a Monday)")
    parser.add_argument("--weeks", type=int, required=True, help="number of weeks to fill")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the CSV files into")
    parser.add_argument("--seed", type=int, default=20261116, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.weeks < 2:
        parser.error("--weeks must be at least 2")
    targets, schedule = generate(args.start, args.weeks, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "targets.csv", TARGET_COLUMNS, targets)
    write_csv(args.out / "schedule.csv", SCHEDULE_COLUMNS, schedule)
    print(f"wrote {len(targets)} targets and {len(schedule)} schedule rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
