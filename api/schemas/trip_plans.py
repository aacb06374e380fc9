"""Trips people plan themselves and the answers about them."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.travel import TravelDeclaration

# Some text that is not all whitespace, and no control characters (as api/routers/travel.py).
_PLACE_TEXT = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


class TripPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: str = Field(min_length=1, max_length=200, pattern=_PLACE_TEXT)
    departure_date: date
    return_date: date
    note: str = Field(default="", max_length=500)


class TripReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    return_date: date = Field(description="the day you came back, campus time")


class PlanDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=500)


class MyTrip(BaseModel):
    """A trip as its traveller sees it, with the listed areas it touches."""

    declaration: TravelDeclaration
    matched_areas: list[str] = Field(
        description="listed epidemic areas the destination matches now: on the return "
        "from one, home isolation follows"
    )
    isolated: bool = Field(description="this answer put you in home isolation")


class PlanDecision(BaseModel):
    declaration: TravelDeclaration
    matched_areas: list[str]
    evaluation: dict[str, list[str]]
