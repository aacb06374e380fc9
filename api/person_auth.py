"""Person sign-in: PLACEHOLDER until branch `person-accounts` is merged (the lead replaces
this module with the real one). Until then every person route answers 401; tests sign a
person in with `app.dependency_overrides[current_person]`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request, status


@dataclass(frozen=True)
class PersonPrincipal:
    person_id: str
    account_id: int


async def current_person(request: Request) -> PersonPrincipal:
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "person sign-in is not available yet")
