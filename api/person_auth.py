"""Placeholder of the people's sign-in (branch person-accounts provides the real module
with this exact interface; the lead replaces this file at merge)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request, status


@dataclass(frozen=True)
class PersonPrincipal:
    person_id: str
    account_id: int


async def current_person(request: Request) -> PersonPrincipal:
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in first")
