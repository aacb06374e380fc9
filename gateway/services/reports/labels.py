"""Bilingual labels of the report files (Chinese / English), shared by every renderer."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain.reports import (
    GUARDED_ZONE_KINDS,
    HEALTH_LISTS,
    LIST_NAMES,
    DailyReport,
    plain_lists,
)

AUDIENCE = {
    "student": ("学生日报", "Student daily report"),
    "staff": ("教职工日报", "Staff daily report"),
}

METRICS = {
    "people": ("人数", "People"),
    "present": ("在校 (有通行记录)", "Present on campus"),
    "absent": ("未到校", "Absent"),
    "screenings": ("体温检测次数", "Temperature screenings"),
    "fevers": ("发热人数", "People with a fever"),
    "fever_readings": ("发热记录", "Fever readings"),
    "new_isolations": ("新增隔离", "New isolations"),
    "denied_total": ("拒绝通行", "Denied attempts"),
    "outsiders_blocked": ("拦截外来人员 (全校)", "Outsiders blocked (campus-wide)"),
    "passages": ("放行通行次数 (进、出各计一次)", "Admitted passages (each in and each out)"),
    "passages_in": ("其中进入", "of them in"),
    "passages_out": ("其中离开", "of them out"),
    "never_screened": ("在校但未测体温", "Present, never screened"),
    "visitors_refused": (
        "登记访客被拒 (宿舍、实验室)",
        "Registered visitors refused (dormitories, labs)",
    ),
    "outsiders_and_visitors": ("外来人员与访客被拒合计", "Outsiders and visitors refused, total"),
    "checkins_expected": ("应打卡人数", "Expected to check in"),
    "checkins_made": ("已打卡人数", "Checked in"),
    "checkins_missing": ("未打卡人数", "Not checked in"),
    "checkins_flagged": ("打卡报告发热或症状", "Check-ins with fever or symptoms"),
    "checkins_case_contact": ("打卡报告接触病例", "Check-ins reporting a case contact"),
}

ZONE_KINDS = {
    "dormitory": ("宿舍", "dormitory"),
    "lab": ("实验室", "lab"),
    "office": ("办公", "office"),
    "teaching": ("教学", "teaching"),
    "gate": ("校门", "gate"),
    "other": ("其他", "other"),
}

STATUSES = {
    "clear": ("正常", "clear"),
    "fever_watch": ("发热观察", "fever watch"),
    "home_isolation": ("居家隔离", "home isolation"),
    "close_contact": ("密切接触", "close contact"),
    "suspected": ("疑似", "suspected"),
    "confirmed": ("确诊", "confirmed"),
    "recovered": ("康复", "recovered"),
}

REASONS = {
    "unknown_card": ("未知卡", "unknown card"),
    "card_revoked": ("卡已失效", "card revoked"),
    "health_hold": ("健康管控", "health hold"),
    "checkin_required": ("未打卡", "check-in required"),
    "not_authorized": ("无权限", "not authorized"),
    "temperature_required": ("未测体温", "temperature required"),
    "temperature_invalid": ("体温无效", "temperature invalid"),
    "fever": ("发热", "fever"),
    "zone_full": ("区域满员", "zone full"),
}

LISTS = {
    "fevers": ("发热人员", "Fevers"),
    "health": ("健康状态名单", "Health statuses"),
    "new_isolations": ("新增隔离", "New isolations"),
    "absent": ("未到校名单", "Absent"),
    "never_screened": ("在校未测体温名单", "Present, never screened"),
    "visitors_refused": ("被拒访客名单 (宿舍、实验室)", "Visitors refused at dormitories and labs"),
    "checkin_missing": ("未打卡名单", "Not checked in"),
}

# The columns of each list: (key, zh, en).
COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "fevers": (
        ("person_id", "学号/工号", "ID"),
        ("name", "姓名", "Name"),
        ("org_unit_id", "单位", "Org unit"),
        ("at", "时间", "Time"),
        ("celsius", "体温 °C", "°C"),
        ("door_id", "门", "Door"),
    ),
    "health": (
        ("person_id", "学号/工号", "ID"),
        ("name", "姓名", "Name"),
        ("org_unit_id", "单位", "Org unit"),
        ("status", "状态", "Status"),
        ("since", "开始", "Since"),
        ("until", "结束", "Until"),
        ("reason", "原因", "Reason"),
        ("caretaker_id", "联络人", "Caretaker"),
        ("caretaker_name", "联络人姓名", "Caretaker name"),
    ),
    "new_isolations": (
        ("person_id", "学号/工号", "ID"),
        ("name", "姓名", "Name"),
        ("org_unit_id", "单位", "Org unit"),
        ("status", "状态", "Status"),
        ("previous", "原状态", "Previous"),
        ("since", "开始", "Since"),
        ("until", "结束", "Until"),
        ("reason", "原因", "Reason"),
        ("caretaker_id", "联络人", "Caretaker"),
        ("caretaker_name", "联络人姓名", "Caretaker name"),
        ("changed_at", "变更时间", "Changed at"),
        ("changed_by", "操作人", "Changed by"),
    ),
    "absent": (
        ("person_id", "学号/工号", "ID"),
        ("name", "姓名", "Name"),
        ("org_unit_id", "单位", "Org unit"),
    ),
    "never_screened": (
        ("person_id", "学号/工号", "ID"),
        ("name", "姓名", "Name"),
        ("org_unit_id", "单位", "Org unit"),
        ("first_passage_at", "当日首次通行", "First passage"),
        ("first_passage_door", "首次通行门", "First door"),
    ),
    "checkin_missing": (
        ("person_id", "学号/工号", "ID"),
        ("name", "姓名", "Name"),
        ("org_unit_id", "单位", "Org unit"),
    ),
    "visitors_refused": (
        ("person_id", "访客编号", "Visitor ID"),
        ("name", "姓名", "Name"),
        ("org_unit_id", "接待单位", "Host unit"),
        ("at", "时间", "Time"),
        ("door_id", "门", "Door"),
        ("zone_id", "区域", "Zone"),
        ("zone_kind", "区域类型", "Zone kind"),
        ("reason", "原因", "Reason"),
    ),
}

NOTES = (
    "在校: 当日有放行记录的人; 健康状态截至当日结束 (当天报告截至生成时).",
    "Present: people with an admitted passage that day. Health statuses as of the end of "
    "the day (for today: as of generation).",
    "拦截外来人员为全校数字: 未登记的卡不属于任何单位.",
    "Outsiders blocked is campus-wide in every report: an unknown card belongs to no unit.",
    "放行通行次数: 当日每次放行的刷卡各计一次, 进入和离开分别计数, 按所记录区域的类型分列.",
    "Admitted passages: every admitted card decision of the day counts once, as logged: "
    "each swipe in and each swipe out, by the kind of the zone logged with it.",
    "在校但未测体温: 当日有放行记录 (任一门), 但当日没有任何一次刷卡带有体温读数 "
    "(测温门配对的读数或终端自测) 的人.",
    "Present, never screened: people with an admitted passage that day (any door) and no "
    "card decision that day carrying a temperature reading (paired at a temperature door "
    "or measured by the terminal itself).",
    "登记访客被拒: 登记访客 (visitor) 的卡在宿舍、实验室门被拒; 单位报告计入其接待单位的访客, "
    "全校报告计入全部; 与外来人员分列, 合计另列.",
    "Visitors refused: registered visitors' cards denied at dormitory and lab doors; a "
    "unit's report counts the visitors it hosts (their org unit and below), the campus "
    "report all; shown apart from the outsiders blocked and added to them in the total. "
    "Health reasons read 'withheld' for roles without health access.",
)


def health_counts(summary: dict[str, Any]) -> list[tuple[str, int]]:
    """(status, people) in the contract's order (jsonb does not keep key order)."""
    health = summary["health"]
    return [(status, health.get(status, 0)) for status in STATUSES]


def bilingual(pair: tuple[str, str]) -> str:
    return f"{pair[0]} / {pair[1]}"


def label(table: dict[str, tuple[str, str]], key: str) -> str:
    return bilingual(table[key]) if key in table else key


def unit_label(report: DailyReport) -> str:
    unit = report.summary.get("org_unit")
    return "全校 / Campus" if unit is None else f"{unit['name']} ({unit['id']})"


def title(report: DailyReport) -> str:
    return (
        f"{label(AUDIENCE, report.audience.value)} {report.day.isoformat()} · {unit_label(report)}"
    )


# Lists added after reports were first stored: a stored report without them shows none.
_LATER_LISTS = ("never_screened", "visitors_refused", "checkin_missing")


def visible_lists(report: DailyReport, with_health: bool) -> list[str]:
    """The list names to render: those with health detail only when allowed."""
    return [
        n
        for n in LIST_NAMES
        if (with_health or n not in HEALTH_LISTS) and (n not in _LATER_LISTS or n in report.lists)
    ]


def list_rows(report: DailyReport, with_health: bool) -> dict[str, list[dict[str, Any]]]:
    """The rows of each visible list as this reader may see them (see `plain_lists`)."""
    shown = plain_lists(report.lists, with_health)
    return {n: shown.get(n, []) for n in visible_lists(report, with_health)}


def summary_rows(report: DailyReport) -> list[tuple[str, Any]]:
    """(label, value) rows of the numbers, in reading order."""
    s = report.summary
    generated = report.generated_at.astimezone(ZoneInfo(s["timezone"])).isoformat(
        timespec="seconds"
    )
    rows: list[tuple[str, Any]] = [
        ("日期 / Day", s["day"]),
        ("单位 / Org unit", unit_label(report)),
        ("对象 / Audience", label(AUDIENCE, s["audience"])),
        ("截至 / As of", s["cutoff"]),
        ("生成 / Generated", f"{generated} ({report.generated_by})"),
    ]
    for key in ("people", "present", "absent", "screenings", "fevers", "fever_readings"):
        rows.append((label(METRICS, key), s[key]))
    for status, n in health_counts(s):
        rows.append((f"健康状态 / Health: {label(STATUSES, status)}", n))
    rows.append((label(METRICS, "new_isolations"), s["new_isolations"]))
    rows.append((label(METRICS, "denied_total"), s["denied_total"]))
    for reason, n in sorted(s["denied"].items()):
        rows.append((f"拒绝 / Denied: {label(REASONS, reason)}", n))
    rows.append((label(METRICS, "outsiders_blocked"), s["outsiders_blocked"]["total"]))
    if "passages" not in s:  # stored before these numbers were reported
        return rows
    refused = s["visitors_refused"]
    rows.append((label(METRICS, "visitors_refused"), refused["total"]))
    for kind in GUARDED_ZONE_KINDS:
        n = refused["by_zone_kind"].get(kind, 0)
        rows.append((f"访客被拒 / Visitors refused: {label(ZONE_KINDS, kind)}", n))
    rows.append((label(METRICS, "outsiders_and_visitors"), s["outsiders_and_visitors"]))
    passages = s["passages"]
    rows.append((label(METRICS, "passages"), passages["total"]))
    rows.append((label(METRICS, "passages_in"), passages["in"]))
    rows.append((label(METRICS, "passages_out"), passages["out"]))
    for kind, inward, outward in passage_rows(s):
        rows.append((f"放行 / Passages: {label(ZONE_KINDS, kind)}, 进 / in", inward))
        rows.append((f"放行 / Passages: {label(ZONE_KINDS, kind)}, 出 / out", outward))
    rows.append((label(METRICS, "never_screened"), s["never_screened"]))
    checkins = s.get("checkins")
    if checkins is not None:  # reports stored before issue #15 have none
        for key in ("expected", "made", "missing", "flagged", "case_contact"):
            rows.append((label(METRICS, f"checkins_{key}"), checkins[key]))
    return rows


def passage_rows(summary: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(zone kind, in, out) in the roster's order of kinds (jsonb keeps no key order)."""
    by_kind = summary.get("passages", {}).get("by_zone_kind", {})
    return [(k, by_kind[k]["in"], by_kind[k]["out"]) for k in ZONE_KINDS if k in by_kind]
