"""The small test campus of the policy tables (a module, not conftest, so tests can import it)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.domain.campus import CampusRoster
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.roster import (
    Card,
    Door,
    DoorDirection,
    Grant,
    GrantSubject,
    OrgUnit,
    Person,
    PersonKind,
    Zone,
    ZoneKind,
)
from gateway.domain.schedule import parse_schedule

CAMPUS_TZ = ZoneInfo("Asia/Shanghai")
FEVER_C = 37.3


def local(text: str) -> datetime:
    """`YYYY-MM-DD HH:MM[:SS]` on the campus clock, returned in UTC so that decide
    must really convert it."""
    return datetime.fromisoformat(text).replace(tzinfo=CAMPUS_TZ).astimezone(UTC)


# The week of Monday 2026-03-02; Friday is 2026-03-06.
MONDAY_NOON = local("2026-03-02 12:00")

S, T, V = PersonKind.STUDENT, PersonKind.STAFF, PersonKind.VISITOR


def campus_roster() -> CampusRoster:
    org_units = (
        OrgUnit("uni", "University"),
        OrgUnit("cs", "School of Computer Science", "uni"),
        OrgUnit("cs-2020", "Grade 2020", "cs"),
        OrgUnit("cs-2020-1", "Class 2020-1", "cs-2020"),
        OrgUnit("math", "School of Mathematics", "uni"),
        OrgUnit("math-2020-1", "Class 2020-1", "math"),
        OrgUnit("loop-a", "Loop A", "loop-b"),  # a cycle: must not hang
        OrgUnit("loop-b", "Loop B", "loop-a"),
    )
    zones = (
        Zone("dorm-10", "Dormitory 10", ZoneKind.DORMITORY, capacity=800),
        Zone("lab-ai", "AI Lab", ZoneKind.LAB, capacity=20),
        Zone("gym", "Gym", ZoneKind.OTHER),
        Zone("office", "Office", ZoneKind.OFFICE),
        Zone("annex", "Annex", ZoneKind.OTHER),
    )
    doors = (
        Door("dorm-10-main", "dorm-10", DoorDirection.IN, requires_temperature=True),
        Door("dorm-10-exit", "dorm-10", DoorDirection.OUT),
        Door("lab-ai-door", "lab-ai", DoorDirection.BOTH),
        Door("gym-door", "gym"),
        Door("office-door", "office"),
        Door("annex-door", "annex"),
    )
    people = (
        Person("S1", S, "Li Hua", "cs-2020-1"),
        Person("S2", S, "Wang Fang", "math-2020-1"),
        Person("S3", S, "Sun Yu", "cs-2020-1"),
        Person("S4", S, "Liu Yang", "cs-2020-1"),
        Person("S5", S, "Ma Li", "cs-2020-1"),
        Person("S6", S, "He Jun", "cs-2020-1", valid_until=local("2026-03-05 00:00")),
        Person("S7", S, "Guo Mei", "cs-2020-1"),
        Person("S8", S, "Lin Tao", "cs-2020-1"),
        Person("S9", S, "Xu Ping", "cs-2020-1"),
        Person("T1", T, "Chen Jie", "cs"),
        Person("U1", T, "Deng Bo", "uni"),
        Person("V1", V, "Zhao Lei", "cs", active=False),
        Person("W1", V, "Hu Min", None),
        Person("L1", S, "Luo Qi", "loop-a"),
        Person("O1", S, "Ye Fan", "gone"),  # org unit not in the roster
    )
    cards = (
        Card("04A1B2C3D4", "S1"),
        Card("0A0B0C0D", "S2"),
        Card("55667788", "S3", revoked=True),
        Card("99AABBCC", "S4"),
        Card("DEADBEEF", "S5", valid_until=local("2026-03-05 00:00")),
        Card("CAFEBABE", "S6"),
        Card("12121212", "S7"),
        Card("13131313", "S8"),
        Card("14141414", "S9"),
        Card("11223344", "T1"),
        Card("21222324", "U1"),
        Card("0A0B0C0E", "V1"),
        Card("31323334", "W1"),
        Card("41424344", "L1"),
        Card("51525354", "O1"),
        Card("0102030405", "ghost"),  # a card whose holder is not in the roster
    )
    weekdays = parse_schedule("Mon-Fri 07:00-23:00")
    friday_night = parse_schedule("Fri 22:00-06:00")
    grants = (
        Grant(GrantSubject(org_unit_id="cs"), "lab-ai", schedule=weekdays),
        Grant(GrantSubject(org_unit_id="loop-b"), "annex"),
        Grant(GrantSubject(kind=T), "dorm-10", valid_until=local("2027-01-31 00:00")),
        Grant(GrantSubject(person_id="S1"), "gym", schedule=friday_night),
        Grant(
            GrantSubject(person_id="W1"),
            "office",
            valid_from=local("2026-03-03 00:00"),
            valid_until=local("2026-03-05 00:00"),
        ),
        *(
            Grant(GrantSubject(person_id=p), "dorm-10")
            for p in ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "V1")
        ),
    )
    since = local("2026-02-20 08:00")
    health = (
        HealthRecord("S3", HealthStatus.HOME_ISOLATION, since),
        HealthRecord("S4", HealthStatus.HOME_ISOLATION, since, until=local("2026-03-10 00:00")),
        HealthRecord("S7", HealthStatus.RECOVERED, since),
        HealthRecord("S8", HealthStatus.CLEAR, since),
    )
    return CampusRoster(
        org_units=org_units,
        zones=zones,
        doors=doors,
        people=people,
        cards=cards,
        grants=grants,
        health=health,
    )
