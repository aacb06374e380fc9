"""Bilingual labels of the report files (Chinese / English), shared by every renderer."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain.reports import HEALTH_LISTS, LIST_NAMES, DailyReport

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
}

NOTES = (
    "在校: 当日有放行记录的人; 健康状态截至当日结束 (当天报告截至生成时).",
    "Present: people with an admitted passage that day. Health statuses as of the end of "
    "the day (for today: as of generation).",
    "拦截外来人员为全校数字: 未登记的卡不属于任何单位.",
    "Outsiders blocked is campus-wide in every report: an unknown card belongs to no unit.",
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


def visible_lists(report: DailyReport, with_health: bool) -> list[str]:
    """The list names to render: those with health detail only when allowed."""
    return [n for n in LIST_NAMES if with_health or n not in HEALTH_LISTS]


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
    return rows
