"""Personal identifiers and how they are shown: masking of phone and ID numbers.

Lists, reports and exports to people without the UNMASK permission show only the
masked forms; the full values leave the store only on an explicit, audited request.
All functions here are pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MASK = "*"

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PHONE_OK = re.compile(r"^\+?[0-9]{3,30}$")
_ID_OK = re.compile(r"^[0-9A-Za-z]{4,32}$")


class ContactError(ValueError):
    """A phone or ID number that is not acceptable; the message says why."""


@dataclass(frozen=True, slots=True)
class PersonContact:
    """A person's optional phone and ID number (national ID or passport).

    Kept apart from `roster.Person` on purpose: the door policy's roster never holds them.
    None means "not given" (an import then leaves the stored value alone).
    """

    person_id: str
    phone: str | None = None
    id_number: str | None = None


def normalize_phone(value: str) -> str:
    """Digits with an optional leading '+'; spaces, dashes, dots and brackets dropped."""
    compact = _PHONE_SEPARATORS.sub("", value.strip())
    if not _PHONE_OK.match(compact):
        raise ContactError(f"phone {value!r} must be 3-30 digits, optionally after a '+'")
    return compact


def normalize_id_number(value: str) -> str:
    """Letters and digits, upper-cased (e.g. the check letter X of a Chinese ID)."""
    compact = value.strip().replace(" ", "").upper()
    if not _ID_OK.match(compact):
        raise ContactError(f"id_number {value!r} must be 4-32 letters or digits")
    return compact


def _mask_middle(value: str, keep_start: int, keep_end: int) -> str:
    hidden = len(value) - keep_start - keep_end
    return value[:keep_start] + MASK * hidden + (value[-keep_end:] if keep_end else "")


def mask_phone(value: str | None) -> str | None:
    """`13812345678` -> `138****5678`; short numbers keep at most their last 4 digits.

    Eleven or more characters keep the first 3 and the last 4; 7 to 10 keep the last 4;
    shorter ones are masked entirely (too few digits to hide anything otherwise).
    """
    if value is None or value == "":
        return value
    if len(value) >= 11:
        return _mask_middle(value, 3, 4)
    if len(value) >= 7:
        return _mask_middle(value, 0, 4)
    return MASK * len(value)


def mask_id_number(value: str | None) -> str | None:
    """`110101199003071234` -> `1101**********1234`; passports keep 1 + 3 characters.

    Fifteen or more characters (Chinese national IDs) keep the first 4 and the last 4;
    8 to 14 (passports) keep the first and the last 3; shorter ones are masked entirely.
    """
    if value is None or value == "":
        return value
    if len(value) >= 15:
        return _mask_middle(value, 4, 4)
    if len(value) >= 8:
        return _mask_middle(value, 1, 3)
    return MASK * len(value)


def mask_contact(phone: str | None, id_number: str | None) -> tuple[str | None, str | None]:
    """Both masked: what a list, report or non-UNMASK reader shows."""
    return mask_phone(phone), mask_id_number(id_number)
