"""Masking of phone and ID numbers, as tables of cases."""

from __future__ import annotations

import pytest

from gateway.domain.privacy import (
    ContactError,
    mask_contact,
    mask_id_number,
    mask_phone,
    normalize_id_number,
    normalize_phone,
)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+8613812345678", "+86*******5678"),
        ("62751234", "****1234"),
        ("1234567", "***4567"),
        ("123456", "******"),
        ("110", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone(phone: str | None, masked: str | None) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("id_number", "masked"),
    [
        ("110101199003071234", "1101**********1234"),
        ("11010119900307123X", "1101**********123X"),
        ("110101900307123", "1101*******7123"),  # 15-digit first-generation ID
        ("E12345678", "E*****678"),
        ("G1234567", "G****567"),
        ("AB12345", "*******"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_id_number(id_number: str | None, masked: str | None) -> None:
    assert mask_id_number(id_number) == masked


def test_masks_hide_the_middle_and_keep_length() -> None:
    phone, ident = mask_contact("13812345678", "110101199003071234")
    assert phone is not None and ident is not None
    assert len(phone) == 11 and len(ident) == 18
    assert "1234" not in phone[:7] and "19900307" not in ident


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("138 1234 5678", "13812345678"),
        ("+86-138-1234-5678", "+8613812345678"),
        ("(010) 6275.1234", "01062751234"),
    ],
)
def test_normalize_phone(raw: str, normal: str) -> None:
    assert normalize_phone(raw) == normal


@pytest.mark.parametrize("raw", ["", "12", "phone", "+", "138x1234", "1" * 31, "++8613812345678"])
def test_bad_phone(raw: str) -> None:
    with pytest.raises(ContactError, match="phone"):
        normalize_phone(raw)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("11010119900307123x", "11010119900307123X"), (" e 1234 5678 ", "E12345678")],
)
def test_normalize_id_number(raw: str, normal: str) -> None:
    assert normalize_id_number(raw) == normal


@pytest.mark.parametrize("raw", ["", "abc", "1101-0119", "1" * 33, "身份证号码"])
def test_bad_id_number(raw: str) -> None:
    with pytest.raises(ContactError, match="id_number"):
        normalize_id_number(raw)
