"""Who the person making a request is (the person-facing pages, issue #15).

PLACEHOLDER: the branch `person-accounts` provides the real sign-in (CAS and invitation
links) with exactly this interface; the lead replaces this module by that one at merge.
Until then nobody is signed in: every person route answers 401. Tests sign a person in
with `app.dependency_overrides[current_person]`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request, status


@dataclass(frozen=True)
class PersonPrincipal:
    """A signed-in student or staff member: their person record and their account."""

    person_id: str
    account_id: int


async def current_person(request: Request) -> PersonPrincipal:
    """The signed-in person; 401 when nobody is signed in (always, in this placeholder)."""
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not signed in")
