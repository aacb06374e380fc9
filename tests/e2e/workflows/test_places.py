"""Destinations to administrative divisions: the forms people write on travel forms."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.domain.travel import EpidemicArea
from gateway.services.places import resolve, short_name
from gateway.services.travel import AmbiguousPlaceError, area_place

WUHAN = "武汉市 (湖北省) 420100"

# text -> what it resolves to (Resolution.describe())
TABLE = [
    # Chinese forms of one city: with or without province and suffixes, with a district
    ("湖北武汉", WUHAN),
    ("武汉市", WUHAN),
    ("武汉", WUHAN),
    ("湖北省武汉市", WUHAN),
    ("湖北省武汉市洪山区", "洪山区 (湖北省 武汉市) 420111"),
    ("中国湖北省武汉市洪山区珞喻路", "洪山区 (湖北省 武汉市) 420111"),
    ("ＷＵＨＡＮ", WUHAN),  # full-width letters
    # pinyin and English forms
    ("Wuhan", WUHAN),
    ("wuhan city", WUHAN),
    ("Wuhan, Hubei", WUHAN),
    ("Wuhan City, Hubei Province, China", WUHAN),
    ("Hubei", "湖北省 420000"),
    ("湖北", "湖北省 420000"),
    ("Xi'an", "西安市 (陕西省) 610100"),
    ("Shaanxi", "陕西省 610000"),
    ("Shanxi", "山西省 140000"),
    ("Inner Mongolia", "内蒙古自治区 150000"),
    ("Harbin", "哈尔滨市 (黑龙江省) 230100"),
    ("Hong Kong", "香港特别行政区 810000"),
    ("Beijing", "北京市 110000"),
    ("北京市朝阳区", "朝阳区 (北京市) 110105"),
    ("西双版纳", "西双版纳傣族自治州 (云南省) 532800"),
    ("Wuhan 武汉", WUHAN),  # both scripts, one place
    # a name of two levels is the larger; the smaller needs its suffix or its province
    ("吉林", "吉林省 220000"),
    ("吉林市", "吉林市 (吉林省) 220200"),
    ("吉林省吉林市", "吉林市 (吉林省) 220200"),
    # ambiguous names stay ambiguous unless the text decides
    ("Fuzhou", "ambiguous: 福州市 (福建省) 350100 or 抚州市 (江西省) 361000; text match"),
    ("Fuzhou, Fujian", "福州市 (福建省) 350100"),
    ("Fuzhou Jiangxi", "抚州市 (江西省) 361000"),
    ("福州", "福州市 (福建省) 350100"),
    ("朝阳区", "ambiguous: 朝阳区 (北京市) 110105 or 朝阳区 (吉林省 长春市) 220104; text match"),
    # several places in one trip
    ("武汉、长沙", "武汉市 (湖北省) 420100; 长沙市 (湖南省) 430100"),
    # places outside the gazetteer, garbage: a text match
    ("Milan", "text match"),
    ("Tokyo, Japan", "text match"),
    ("洪山", "text match"),  # a bare county short name is not enough
    ("!!!???", "text match"),
    ("\x00\x01\x1b[31m", "text match"),
    ("湖北\x00武汉\t", WUHAN),  # control characters separate, they do not hide a place
    ("x" * 5000, "text match"),
    ("武汉" + "啊" * 5000, WUHAN),
]


@pytest.mark.parametrize(("text", "expected"), TABLE, ids=[t[:20] for t, _ in TABLE])
def test_resolves(text: str, expected: str) -> None:
    assert resolve(text).describe() == expected


def test_short_names() -> None:
    assert [
        short_name(n) for n in ("湖北省", "广西壮族自治区", "恩施土家族苗族自治州", "城区")
    ] == [
        "湖北",
        "广西",
        "恩施",
        "城区",
    ]


def _area(match: str) -> EpidemicArea:
    place = area_place(match)
    return EpidemicArea(
        1,
        match,
        match,
        date(2026, 1, 1),
        division=place["division_code"],
        terms=tuple(place["match_terms"]),
    )


@pytest.mark.parametrize(
    ("area", "destination", "covered"),
    [
        ("Wuhan", "湖北武汉", True),
        ("Wuhan", "湖北省武汉市洪山区", True),
        ("武汉市", "wuhan city", True),
        ("Hubei", "武汉市", True),  # a province covers its cities
        ("湖北", "恩施", True),
        ("Wuhan", "湖北省", False),  # a city does not cover the rest of its province
        ("Wuhan", "恩施", False),
        ("Wuhan", "Wuhan, Hubei", True),
        ("湖北省武汉市洪山区", "武汉市", False),  # a district does not cover its city
        ("Milan", "Milan, Italy", True),  # outside the gazetteer: text
        ("Milan", "武汉", False),
        ("Fuzhou, Fujian", "Fuzhou", True),  # an ambiguous trip falls back to text
        ("Fuzhou, Fujian", "抚州", False),
    ],
)
def test_area_covers(area: str, destination: str, covered: bool) -> None:
    found = resolve(destination)
    assert _area(area).covers(destination, found.codes) is covered


def test_an_area_must_name_one_place() -> None:
    with pytest.raises(AmbiguousPlaceError, match="Fuzhou, Fujian"):
        area_place("Fuzhou")
    with pytest.raises(AmbiguousPlaceError, match="one area at a time"):
        area_place("武汉、长沙")
    assert area_place("Milan")["division_code"] is None
    assert area_place("Wuhan")["place_match"] == WUHAN


def test_the_pinyin_table_matches_the_gazetteer() -> None:
    """English names come from a generated table (pypinyin costs ~50 MB per process):
    after a gazetteer upgrade, `python -m gateway.services.place_pinyin` regenerates it."""
    from gateway.services import place_pinyin

    assert place_pinyin.TABLE.read_text(encoding="utf-8") == place_pinyin.render(
        place_pinyin.generate()
    )
