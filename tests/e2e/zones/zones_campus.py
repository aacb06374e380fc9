"""The zone tests' campus (a module, not conftest, so tests can import it)."""

from __future__ import annotations

CAMPUS = """
org_units:
  - {id: uni, name: University}
  - {id: cs, name: Computer Science, parent: uni}
zones:
  - {id: hall, name: Hall, kind: teaching, capacity: 2, capacity_mode: alert}
  - {id: room, name: Room, kind: other, capacity: 2}
  - {id: yard, name: Yard, kind: other, gathering_threshold: 2, gathering_minutes: 0}
  - {id: lab, name: Lab, kind: lab, capacity: 4}
  - {id: office, name: Office, kind: office, capacity: 10}
doors:
  - {id: hall-door, zone: hall}
  - {id: room-door, zone: room}
  - {id: yard-gate, zone: yard}
  - {id: lab-door, zone: lab}
  - {id: office-door, zone: office}
  - {id: office-side, zone: office}
devices:
  - {id: term-hall, door: hall-door, kind: terminal}
  - {id: term-room, door: room-door, kind: terminal}
  - {id: term-yard, door: yard-gate, kind: terminal}
  - {id: term-lab, door: lab-door, kind: terminal}
  - {id: term-office, door: office-door, kind: terminal}
  - {id: term-office-side, door: office-side, kind: terminal}
people:
  - {id: S1, kind: student, name: Li Hua, org_unit: cs, cards: ["0A000001"]}
  - {id: S2, kind: student, name: Wang Fang, org_unit: cs, cards: ["0A000002"]}
  - {id: S3, kind: student, name: Sun Yu, org_unit: cs, cards: ["0A000003"]}
  - {id: S4, kind: student, name: Ma Li, org_unit: cs, cards: ["0A000004"]}
  - {id: T1, kind: staff, name: Chen Jie, org_unit: cs, cards: ["0B000001"]}
  - {id: V1, kind: visitor, name: Zhao Lei, cards: ["0C000001"]}
grants:
  - {subject: {kind: student}, zone: hall}
  - {subject: {kind: student}, zone: room}
  - {subject: {kind: student}, zone: yard}
  - {subject: {kind: student}, zone: office}
  - {subject: {kind: staff}, zone: office}
  - {subject: {org_unit: cs}, zone: lab}
  - {subject: {person: S1}, zone: lab}
  - {subject: {person: S3}, zone: lab}
  - {subject: {person: T1}, zone: lab}
  - {subject: {person: V1}, zone: office}
"""
CARDS = {
    "S1": "0A000001",
    "S2": "0A000002",
    "S3": "0A000003",
    "S4": "0A000004",
    "T1": "0B000001",
    "V1": "0C000001",
}
DEVICES = ("term-hall", "term-room", "term-yard", "term-lab", "term-office", "term-office-side")
ROLES = ("admin", "guard", "health_officer", "liaison")


def outcome(decision: dict) -> str:
    return f"{decision['decision']}/{decision['reason']}"
