"""Door allowlists (issue 13): compiled by the gateway, verified and applied by the terminal.

The gateway side (gateway.domain.allowlist, gateway.policy.allowlist_compile) and the
terminal side (firmware_sim.offline) are written separately from the contract; these
tests join them on the signed bytes.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.contract_json import sign_command
from firmware_sim.offline import AllowlistHolder, OfflineJournal, decide_offline
from gateway.domain.allowlist import (
    ListHeader,
    card_hash,
    delta,
    device_salt,
    diff,
    full_list,
)
from gateway.domain.campus import CampusRoster
from gateway.domain.decisions import Verdict
from gateway.domain.events import Direction
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.roster import (
    Card,
    Device,
    DeviceKind,
    Door,
    Grant,
    GrantSubject,
    OrgUnit,
    Person,
    PersonKind,
    Zone,
    ZoneKind,
)
from gateway.domain.schedule import parse_schedule
from gateway.pipeline.allowlists import AllowlistConfig, AllowlistPublisher
from gateway.pipeline.signing import Ed25519CommandSigner, PublicKeyInfo
from gateway.pipeline.topics import Topics
from gateway.policy.allowlist_compile import compile_zone, door_rules
from gateway.policy.decide import decide
from gateway.policy.roster_index import RosterIndex

TZ = ZoneInfo("Asia/Shanghai")
# A Monday, 00:00 campus time.
MONDAY = datetime(2026, 11, 30, tzinfo=TZ)
DEVICE = "term-lab-1"


def roster() -> CampusRoster:
    return CampusRoster(
        org_units=(OrgUnit("uni", "U"), OrgUnit("cs", "CS", "uni"), OrgUnit("guards", "G", "uni")),
        zones=(Zone("lab", "Lab", ZoneKind.LAB),),
        doors=(Door("lab-door", "lab"),),
        devices=(Device(DEVICE, "lab-door", DeviceKind.TERMINAL),),
        people=(
            Person("ann", PersonKind.STUDENT, "Ann", "cs"),
            Person("bob", PersonKind.STUDENT, "Bob", "cs"),
            Person("cat", PersonKind.STAFF, "Cat", "guards"),
            Person("dan", PersonKind.STUDENT, "Dan", "cs", active=False),
        ),
        cards=(
            Card("0A000001", "ann"),
            Card("0A000002", "bob"),
            Card("0A000003", "cat"),
            Card("0A000004", "dan"),
        ),
        grants=(
            Grant(GrantSubject(org_unit_id="cs"), "lab", parse_schedule("Mon-Fri 08:00-18:00")),
            Grant(GrantSubject(kind=PersonKind.STAFF), "lab", None),
        ),
        health=(HealthRecord("bob", HealthStatus.HOME_ISOLATION, MONDAY - timedelta(days=1)),),
    )


def signed_list(key: Ed25519PrivateKey, index: RosterIndex, *, start: datetime, days: float = 2):
    end = start + timedelta(days=days)
    entries = compile_zone(index, "lab", start=start, end=end, tz=TZ, emergency_units={"guards"})
    header = ListHeader(
        DEVICE, "lab-door", "lab", "both", TZ.key, start.isoformat(), end.isoformat()
    )
    rules = door_rules(index, index.door("lab-door"), fever_threshold_c=37.3, occupancy=0)
    salt = device_salt(b"secret", DEVICE)
    fields, table = full_list(header, version=1, salt=salt, rules=rules, entries=entries)
    return sign_command(fields, DEVICE, Ed25519CommandSigner(key)), entries, table, header, salt


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def holder(key: Ed25519PrivateKey, tmp_path=None) -> AllowlistHolder:
    return AllowlistHolder(DEVICE, PublicKeyInfo.of(key).public_raw, tmp_path)


def test_schedule_windows_follow_campus_time_and_validity(key):
    index = RosterIndex.build(roster())
    entries = compile_zone(index, "lab", start=MONDAY, end=MONDAY + timedelta(days=7), tz=TZ)
    ann = entries["0A000001"]
    assert len(ann.windows) == 5  # Monday to Friday
    first = ann.windows[0]
    assert first == (
        int((MONDAY + timedelta(hours=8)).timestamp()),
        int((MONDAY + timedelta(hours=18)).timestamp()),
    )
    assert "0A000002" not in entries  # Bob is held: left out, not flagged
    assert "0A000004" not in entries  # an inactive holder's card is not listed
    assert entries["0A000003"].windows == (
        (int(MONDAY.timestamp()), int((MONDAY + timedelta(days=7)).timestamp())),
    )


def test_offline_decisions_agree_with_the_gateway_over_a_week(key):
    """Every card at every half hour of a week: the offline rules decide as `decide`."""
    index = RosterIndex.build(roster())
    payload, *_ = signed_list(key, index, start=MONDAY, days=7)
    terminal = holder(key)
    assert terminal.take_list(payload)
    door = index.door("lab-door")
    disagree = []
    for step in range(7 * 48):
        at = MONDAY + timedelta(minutes=30 * step)
        for uid in ("0A000001", "0A000002", "0A000003", "0A000004", "DEADBEEF"):
            online = decide(
                index,
                door=door,
                card_uid=uid,
                direction=Direction.IN,
                now=at.astimezone(UTC),
                tz=TZ,
                celsius=None,
                fever_threshold_c=37.3,
                occupancy=0,
                temperature_window_open=False,
            )
            offline = decide_offline(terminal.current, uid, direction="in", now=at.timestamp())
            # Documented reason mapping (docs/protocol.md): a card that is revoked, whose
            # holder is held, or that has no window at this zone is simply not listed.
            if offline[1] == "unknown_card":
                agrees = online.reason in UNLISTED_REASONS
            else:
                agrees = offline[1] == online.reason
            if (offline[0] == "admit") != (online.verdict is Verdict.ADMIT) or not agrees:
                disagree.append((uid, at, online.reason, offline))
    assert disagree == []


# The online reasons a terminal gives as `unknown_card` offline (docs/protocol.md).
UNLISTED_REASONS = {"unknown_card", "card_revoked", "health_hold", "not_authorized"}


def test_a_list_holds_only_cards_with_a_window_here_or_the_emergency_group(key):
    """A stolen terminal yields neither the campus's cards nor who is under a hold."""
    base = roster()
    base = dataclasses.replace(
        base,
        people=(*base.people, Person("eve", PersonKind.STUDENT, "Eve", "uni")),
        cards=(*base.cards, Card("0A000005", "eve")),  # no grant at the lab
    )
    index = RosterIndex.build(base)
    payload, entries, *_ = signed_list(key, index, start=MONDAY)
    assert set(entries) == {"0A000001", "0A000003"}
    terminal = holder(key)
    assert terminal.take_list(payload)
    current = terminal.current
    assert current is not None
    assert len(current.cards) == 2
    assert all(flags & 1 == 0 for _, flags in current.cards.values())  # no hold flag
    at = (MONDAY + timedelta(hours=9)).timestamp()
    for uid in ("0A000002", "0A000005"):  # held Bob, Eve without a grant here
        assert decide_offline(current, uid, direction="in", now=at) == ("deny", "unknown_card")
    # The emergency group is listed even without a window at the zone.
    guards_only = dataclasses.replace(
        base, grants=(base.grants[0],), health=()
    )  # Cat (guards, staff) loses the staff grant
    entries = compile_zone(
        RosterIndex.build(guards_only),
        "lab",
        start=MONDAY,
        end=MONDAY + timedelta(days=2),
        tz=TZ,
        emergency_units={"guards"},
    )
    assert entries["0A000003"].windows == () and entries["0A000003"].flags == 2


def test_tampered_foreign_and_replayed_lists_are_refused(key, tmp_path):
    index = RosterIndex.build(roster())
    payload, *_ = signed_list(key, index, start=MONDAY)
    terminal = holder(key)
    tampered = payload.replace(b'"fever_threshold_c":37.3', b'"fever_threshold_c":99.0')
    assert tampered != payload
    assert not terminal.take_list(tampered)
    foreign, *_ = signed_list(Ed25519PrivateKey.generate(), index, start=MONDAY)
    assert not terminal.take_list(foreign)
    other_door = payload.replace(DEVICE.encode(), b"term-lab-2")
    assert not terminal.take_list(other_door)
    assert not terminal.take_list(b'{"type":"allowlist"}')
    assert terminal.current is None
    assert terminal.refused == {"bad_signature": 2, "wrong_key": 1, "unsigned": 1}
    assert terminal.take_list(payload)


def test_an_expired_list_admits_only_the_emergency_group(key):
    index = RosterIndex.build(roster())
    payload, *_ = signed_list(key, index, start=MONDAY, days=1)
    terminal = holder(key)
    assert terminal.take_list(payload)
    later = (MONDAY + timedelta(days=2, hours=10)).timestamp()
    assert decide_offline(terminal.current, "0A000001", direction="in", now=later) == (
        "deny",
        "offline_expired",
    )
    assert decide_offline(terminal.current, "0A000003", direction="in", now=later) == (
        "admit",
        "ok",
    )
    assert decide_offline(None, "0A000003", direction="in", now=later) == (
        "deny",
        "offline_no_list",
    )


def test_a_delta_changes_only_what_changed_and_survives_a_restart(key, tmp_path):
    index = RosterIndex.build(roster())
    payload, entries, table, header, salt = signed_list(key, index, start=MONDAY)
    terminal = holder(key, tmp_path)
    assert terminal.take_list(payload)
    at = (MONDAY + timedelta(hours=9)).timestamp()
    assert decide_offline(terminal.current, "0A000001", direction="in", now=at) == ("admit", "ok")

    changed = index.with_health(HealthRecord("ann", HealthStatus.CLOSE_CONTACT, MONDAY))
    after = compile_zone(
        changed,
        "lab",
        start=MONDAY,
        end=MONDAY + timedelta(days=2),
        tz=TZ,
        emergency_units={"guards"},
    )
    change = diff(entries, after)
    rules = door_rules(changed, changed.door("lab-door"), fever_threshold_c=37.3, occupancy=0)
    fields = delta(
        header, base_version=1, version=2, salt=salt, rules=rules, base_table=table, change=change
    )
    # A person becoming held is a removal from the list, not a flag.
    assert not change.upsert and change.remove == {"0A000001"}
    assert terminal.take_delta(sign_command(fields, DEVICE, Ed25519CommandSigner(key)))
    assert decide_offline(terminal.current, "0A000001", direction="in", now=at) == (
        "deny",
        "unknown_card",
    )

    restarted = holder(key, tmp_path)
    assert restarted.current is not None and restarted.current.delta_version == 2
    assert decide_offline(restarted.current, "0A000001", direction="in", now=at)[1] == (
        "unknown_card"
    )

    # Cleared again: an upsert brings the card back.
    back = diff(after, entries)
    assert set(back.upsert) == {"0A000001"} and not back.remove
    fields = delta(
        header, base_version=1, version=3, salt=salt, rules=rules, base_table=table, change=back
    )
    assert restarted.take_delta(sign_command(fields, DEVICE, Ed25519CommandSigner(key)))
    assert decide_offline(restarted.current, "0A000001", direction="in", now=at) == ("admit", "ok")


def test_the_journal_survives_a_restart_and_stays_bounded(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = OfflineJournal(path, capacity=3)
    for n in range(5):
        journal.append({"event_id": f"e{n}", "decision": "admit"})
    assert list(journal.entries) == ["e2", "e3", "e4"] and journal.dropped == 2
    with open(path, "ab") as torn:  # a power cut in the middle of a line
        torn.write(b'{"event_id":"e5","dec')
    again = OfflineJournal(path, capacity=3)
    assert list(again.entries) == ["e2", "e3", "e4"]
    assert again.drop(["e3", "nope"]) == 1
    assert list(OfflineJournal(path, capacity=3).entries) == ["e2", "e4"]


async def test_deltas_keep_a_terminal_equal_to_a_fresh_compilation(key):
    """Health, grant, card and level changes go out as deltas; applied in turn, the
    terminal holds exactly what a full compilation of the new roster gives."""
    base = roster()
    state = {"index": RosterIndex.build(base)}
    sent: list[tuple[str, bytes]] = []
    publisher = AllowlistPublisher(
        publish=lambda topic, payload: sent.append((topic, payload)),
        topics=Topics("t"),
        index=lambda: state["index"],
        occupancy=lambda zone_id: 0,
        signer=Ed25519CommandSigner(key),
        secret=b"secret",
        config=AllowlistConfig(tz=TZ, fever_threshold_c=37.3, emergency_units={"guards"}),
    )
    terminal = holder(key)

    async def deliver() -> None:
        sent.clear()
        await publisher.refresh()
        for topic, payload in sent:
            if topic.endswith("/allowlist"):
                assert terminal.take_list(payload)
            elif payload:
                assert terminal.take_delta(payload)

    def expected() -> dict[str, tuple[tuple[tuple[int, int], ...], int]]:
        current = terminal.current
        assert current is not None
        start = datetime.fromtimestamp(current.expires, UTC) - timedelta(days=3)
        entries = compile_zone(
            state["index"],
            "lab",
            start=start,
            end=start + timedelta(days=3),
            tz=TZ,
            emergency_units={"guards"},
        )
        salt = device_salt(b"secret", DEVICE)
        return {card_hash(salt, uid): (e.windows, e.flags) for uid, e in entries.items()}

    def held() -> dict[str, tuple[tuple[tuple[int, int], ...], int]]:
        current = terminal.current
        assert current is not None
        return {
            h: (tuple(current.windows[w]) if w >= 0 else (), flags)
            for h, (w, flags) in current.cards.items()
        }

    await deliver()
    assert publisher.fulls == 1 and held() == expected()
    changes = [
        lambda r: dataclasses.replace(
            r, health=(*r.health, HealthRecord("ann", HealthStatus.SUSPECTED, MONDAY))
        ),
        lambda r: dataclasses.replace(
            r, grants=(*r.grants, Grant(GrantSubject(person_id="dan"), "lab", None))
        ),
        lambda r: dataclasses.replace(
            r, people=tuple(dataclasses.replace(p, active=True) for p in r.people)
        ),
        lambda r: dataclasses.replace(
            r, cards=tuple(dataclasses.replace(c, revoked=c.uid == "0A000003") for c in r.cards)
        ),
    ]
    current = base
    for change in changes:
        current = change(current)
        state["index"] = RosterIndex.build(current)
        await deliver()
        assert held() == expected()
    # The grant to Dan while he is inactive changes nothing at the door: no delta for it.
    assert publisher.fulls == 1 and publisher.deltas == len(changes) - 1


async def test_an_exit_door_lets_every_known_card_out_and_learns_roster_changes_by_delta(key):
    """Leaving is free online for any known card: the door's exit set agrees, and a card
    new to the roster or gone from it reaches the terminal as a delta."""
    base = dataclasses.replace(
        roster(),
        people=(*roster().people, Person("eve", PersonKind.STUDENT, "Eve", "uni")),
        cards=(*roster().cards, Card("0A000005", "eve", revoked=True)),  # no grant, revoked
    )
    state = {"index": RosterIndex.build(base)}
    sent: list[tuple[str, bytes]] = []
    publisher = AllowlistPublisher(
        publish=lambda topic, payload: sent.append((topic, payload)),
        topics=Topics("t"),
        index=lambda: state["index"],
        occupancy=lambda zone_id: 0,
        signer=Ed25519CommandSigner(key),
        secret=b"secret",
        config=AllowlistConfig(tz=TZ, fever_threshold_c=37.3),
    )
    terminal = holder(key)

    async def deliver() -> None:
        sent.clear()
        await publisher.refresh()
        for topic, payload in sent:
            if topic.endswith("/allowlist"):
                assert terminal.take_list(payload)
            elif payload:
                assert terminal.take_delta(payload)

    def disagreements(uids: tuple[str, ...]) -> list[tuple[str, str, str]]:
        index, at = state["index"], MONDAY + timedelta(hours=21)  # outside every window
        out = []
        for uid in uids:
            online = decide(
                index,
                door=index.door("lab-door"),
                card_uid=uid,
                direction=Direction.OUT,
                now=at.astimezone(UTC),
                tz=TZ,
                celsius=None,
                fever_threshold_c=37.3,
                occupancy=0,
                temperature_window_open=False,
            )
            offline = decide_offline(terminal.current, uid, direction="out", now=at.timestamp())
            if offline != (online.verdict.value, online.reason.value):
                out.append((uid, online.reason.value, offline[1]))
        return out

    uids = ("0A000001", "0A000002", "0A000003", "0A000004", "0A000005", "0A000006", "DEADBEEF")
    await deliver()
    current = terminal.current
    assert current is not None and current.exits is not None
    # Known: Ann, held Bob, Cat, inactive Dan, Eve's revoked card; not listed for entry.
    assert sum(current.exits.values()) == 5 and len(current.cards) == 2
    assert decide_offline(current, "0A000002", direction="out", now=MONDAY.timestamp()) == (
        "admit",
        "ok",
    )
    assert disagreements(uids) == []

    # A new card, and Ann's card gone from the roster: deltas, no new full list.
    changed = dataclasses.replace(
        base,
        people=(*base.people, Person("fay", PersonKind.VISITOR, "Fay", "uni")),
        cards=(*(c for c in base.cards if c.uid != "0A000001"), Card("0A000006", "fay")),
    )
    state["index"] = RosterIndex.build(changed)
    await deliver()
    assert publisher.fulls == 1 and publisher.deltas == 1
    assert terminal.current is not None and sum(terminal.current.exits.values()) == 5
    assert decide_offline(terminal.current, "0A000006", direction="out", now=0.0)[0] == "admit"
    assert decide_offline(terminal.current, "0A000001", direction="out", now=0.0) == (
        "deny",
        "unknown_card",
    )
    assert disagreements(uids) == []

    # A list without an exit set (an `in` door's, an older gateway's): exits go by `cards`.
    payload, *_ = signed_list(key, state["index"], start=MONDAY)
    assert b'"exits"' not in payload
    older = holder(key)
    assert older.take_list(payload) and older.current is not None
    assert decide_offline(older.current, "0A000006", direction="out", now=0.0) == (
        "deny",
        "unknown_card",
    )
