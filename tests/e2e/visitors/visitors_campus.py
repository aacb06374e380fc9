"""The visitor tests' campus (a module, not conftest, so tests can import it)."""

from __future__ import annotations

CAMPUS = """
org_units:
  - {id: uni, name: University}
  - {id: cs, name: Computer Science, parent: uni}
  - {id: math, name: Mathematics, parent: uni}
zones:
  - {id: office, name: CS Office, kind: office}
  - {id: lab, name: AI Lab, kind: lab}
  - {id: clinic, name: Clinic, kind: other}
doors:
  - {id: office-door, zone: office}
  - {id: lab-door, zone: lab}
  - {id: clinic-door, zone: clinic, requires_temperature: true}
devices:
  - {id: term-office, door: office-door, kind: terminal}
  - {id: term-lab, door: lab-door, kind: terminal}
  - {id: term-clinic, door: clinic-door, kind: terminal}
people:
  - {id: T1, kind: staff, name: Chen Jie, org_unit: cs, cards: ["0B000001"]}
  - {id: S1, kind: student, name: Li Hua, org_unit: cs, cards: ["0A000001"]}
grants:
  - {subject: {person: T1}, zone: office}
  - {subject: {person: T1}, zone: lab}
"""
DEVICES = ("term-office", "term-lab", "term-clinic")
# name -> (role, org unit of a liaison)
OPERATORS = {
    "admin": ("admin", None),
    "guard": ("guard", None),
    "liaison-cs": ("liaison", "cs"),
    "liaison-math": ("liaison", "math"),
    "health_officer": ("health_officer", None),
}


def outcome(decision: dict) -> str:
    return f"{decision['decision']}/{decision['reason']}"
