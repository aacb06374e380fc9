"""Campus response levels and the effective rules of a zone (issue #5).

A level is a named set of tightenings (visitors barred, temperature at every door,
capacities scaled down, labs only for people named in a grant, today's check-in at
chosen zones). One level is active
campus-wide and a zone may have its own as well; the zone then gets the stricter of
the two, rule by rule, so a zone level can tighten a campus level but never loosen it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.domain.roster import CapacityMode, Zone, ZoneKind

# Capacity factors are stored with three decimals; scaling in thousandths keeps
# floor(20 x 0.7) at 14 instead of float's 13.999...
_FACTOR_SCALE = 1000


@dataclass(frozen=True, slots=True)
class LevelRules:
    """What one response level tightens."""

    bar_visitors: bool = False
    require_temperature: bool = False
    capacity_factor: float = 1.0  # 0 < factor <= 1; capacities become floor(capacity x factor)
    labs_named_only: bool = False
    # Campus-wide only: trips people plan need their liaison's approval (issue #15).
    trips_need_approval: bool = False
    # Zones (ids) whose doors admit only people who made today's check-in (issue #15).
    checkin_zones: frozenset[str] = frozenset()

    def stricter(self, other: LevelRules) -> LevelRules:
        """Both levels at once: every rule either one sets, the smaller factor."""
        return LevelRules(
            bar_visitors=self.bar_visitors or other.bar_visitors,
            require_temperature=self.require_temperature or other.require_temperature,
            capacity_factor=min(self.capacity_factor, other.capacity_factor),
            labs_named_only=self.labs_named_only or other.labs_named_only,
            trips_need_approval=self.trips_need_approval or other.trips_need_approval,
            checkin_zones=self.checkin_zones | other.checkin_zones,
        )


NO_RULES = LevelRules()


@dataclass(frozen=True, slots=True)
class ResponseLevel:
    """A stored level definition."""

    name: str
    rules: LevelRules = NO_RULES
    rank: int = 0
    title_zh: str = ""
    title_en: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class ActiveLevels:
    """The campus-wide level and the zones that have a level of their own."""

    campus: str | None = None
    zones: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ZoneRules:
    """What a decision applies in one zone: its own settings under the active levels."""

    capacity: int | None = None  # already scaled by the levels
    capacity_mode: CapacityMode = CapacityMode.ENFORCE
    bar_visitors: bool = False
    require_temperature: bool = False
    labs_named_only: bool = False  # only in lab zones
    levels: tuple[str, ...] = ()  # the level names in force here, campus-wide first
    require_checkin: bool = False  # entering needs today's check-in (checkin_required)


def scaled_capacity(capacity: int | None, factor: float) -> int | None:
    """floor(capacity x factor), exact to the factor's three decimals."""
    if capacity is None:
        return None
    return capacity * round(factor * _FACTOR_SCALE) // _FACTOR_SCALE


def zone_rules(
    zone: Zone, definitions: Mapping[str, ResponseLevel], active: ActiveLevels
) -> ZoneRules:
    """The effective rules of `zone`; level names without a definition are ignored."""
    names = tuple(
        n for n in (active.campus, active.zones.get(zone.id)) if n is not None and n in definitions
    )
    rules = NO_RULES
    for name in names:
        rules = rules.stricter(definitions[name].rules)
    return ZoneRules(
        capacity=scaled_capacity(zone.capacity, rules.capacity_factor),
        capacity_mode=zone.capacity_mode,
        bar_visitors=rules.bar_visitors,
        require_temperature=rules.require_temperature,
        labs_named_only=rules.labs_named_only and zone.kind is ZoneKind.LAB,
        require_checkin=zone.id in rules.checkin_zones,
        levels=tuple(dict.fromkeys(names)),
    )
