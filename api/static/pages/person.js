"use strict";
// Person record page: look a person up, see their record with phone and ID number masked,
// show them in full (operators allowed to unmask; every unmasking is audited) and download
// everything held about them (operators allowed to export; audited too).
(() => {
  const CG = window.CG;
  const { el, t, may } = CG;
  let section = null;
  let current = null; // the person shown: {record, unmasked}
  // Labels beside values (console.css is the shell's; this page keeps its one rule here).
  const FIELDS_STYLE = "display:grid;grid-template-columns:max-content 1fr;gap:.25em 1.5em;margin:0";

  const i18n = {
    zh: {
      person_title: "人员档案", person_search: "查找", person_hint: "姓名、学工号或卡号",
      person_none: "没有找到", person_id: "编号", person_name: "姓名", person_kind: "类别",
      person_org: "单位", person_active: "状态", person_active_yes: "有效", person_active_no: "已停用",
      person_cards: "卡号", person_phone: "电话", person_id_number: "证件号", person_hold: "门禁暂停",
      person_hold_yes: "是（请联系值班人员）", person_hold_no: "否", person_health: "健康状态",
      person_reason: "原因", person_until: "截止", person_masked: "已脱敏显示",
      person_unmask: "显示完整号码", person_unmasked: "完整号码已显示，本次查看已记录",
      person_export: "导出全部信息 (JSON)", person_exported: "已导出，本次导出已记录",
      person_failed: "操作失败", person_student: "学生", person_staff: "教职工", person_visitor: "访客",
      person_st_clear: "正常", person_st_fever_watch: "发热观察", person_st_home_isolation: "居家隔离",
      person_st_close_contact: "密切接触", person_st_suspected: "疑似", person_st_confirmed: "确诊",
      person_st_recovered: "已康复",
    },
    en: {
      person_title: "Person record", person_search: "Search", person_hint: "name, id or card",
      person_none: "Nobody found", person_id: "Id", person_name: "Name", person_kind: "Kind",
      person_org: "Org unit", person_active: "Status", person_active_yes: "active", person_active_no: "deactivated",
      person_cards: "Cards", person_phone: "Phone", person_id_number: "ID number", person_hold: "Held at doors",
      person_hold_yes: "yes (see the guard)", person_hold_no: "no", person_health: "Health status",
      person_reason: "Reason", person_until: "Until", person_masked: "masked",
      person_unmask: "Show full numbers", person_unmasked: "Full numbers shown; this view was logged",
      person_export: "Export everything (JSON)", person_exported: "Exported; the export was logged",
      person_failed: "Failed", person_student: "student", person_staff: "staff", person_visitor: "visitor",
      person_st_clear: "clear", person_st_fever_watch: "fever watch", person_st_home_isolation: "home isolation",
      person_st_close_contact: "close contact", person_st_suspected: "suspected", person_st_confirmed: "confirmed",
      person_st_recovered: "recovered",
    },
  };

  const personPath = (id) => `/api/people/${encodeURIComponent(id)}`;

  async function search(event) {
    if (event) event.preventDefault();
    const q = section.querySelector(".person-q").value.trim();
    const list = section.querySelector(".person-results");
    const response = await CG.api(`/api/people?limit=20&q=${encodeURIComponent(q)}`);
    if (!response.ok) { list.replaceChildren(el("li", { class: "error" }, `${t("person_failed")} (${response.status})`)); return; }
    const { items } = await response.json();
    list.replaceChildren(...(items.length ? items.map((p) => el("li", {},
      el("button", { type: "button", class: "person-pick", dataset: { person: p.id }, onclick: () => open(p.id) },
        `${p.name} · ${p.id}${p.org_unit_id ? ` · ${p.org_unit_id}` : ""}`)))
      : [el("li", { class: "muted" }, t("person_none"))]));
  }

  async function open(id, unmask = false) {
    const response = await CG.api(personPath(id) + (unmask ? "?unmask=true" : ""));
    const status = section.querySelector(".person-status");
    if (!response.ok) { status.textContent = `${t("person_failed")} (${response.status})`; return; }
    current = { record: await response.json(), unmasked: unmask };
    status.textContent = unmask ? t("person_unmasked") : "";
    draw();
  }

  function field(key, value, cls) {
    return [el("dt", {}, t(key)), el("dd", { class: cls || "" }, value === null || value === undefined || value === "" ? "—" : value)];
  }

  function draw() {
    const box = section.querySelector(".person-record");
    if (!current) { box.replaceChildren(); return; }
    const p = current.record;
    // "(masked)" only beside a number there is: "— (masked)" reads as if something were hidden.
    const maskNote = (value) => (p.contact_masked && value ? el("small", { class: "muted" }, ` (${t("person_masked")})`) : null);
    const rows = [
      field("person_id", p.id, "person-id"),
      field("person_name", p.name, "person-name"),
      field("person_kind", t(`person_${p.kind}`)),
      field("person_org", p.org_unit_id),
      field("person_active", p.active ? t("person_active_yes") : t("person_active_no")),
      field("person_cards", (p.cards || []).join(", ")),
      [el("dt", {}, t("person_phone")), el("dd", { class: "person-phone" }, p.phone || "—", maskNote(p.phone))],
      [el("dt", {}, t("person_id_number")), el("dd", { class: "person-id-number" }, p.id_number || "—", maskNote(p.id_number))],
      field("person_hold", p.health_hold ? t("person_hold_yes") : t("person_hold_no"), p.health_hold ? "error person-hold" : "person-hold"),
    ];
    if ("health_status" in p) { // only for roles that may read health details
      rows.push(field("person_health", p.health_status ? t(`person_st_${p.health_status}`) : null, "person-health"));
      rows.push(field("person_reason", p.health_reason, "person-reason"));
      rows.push(field("person_until", CG.fmtTime(p.health_until)));
    }
    const actions = el("p", { class: "person-actions" });
    if (may("unmask") && p.contact_masked && (p.phone || p.id_number)) {
      actions.append(el("button", { type: "button", class: "do-unmask", onclick: () => open(p.id, true) }, t("person_unmask")), " ");
    }
    if (may("export_person")) {
      actions.append(el("button", { type: "button", class: "do-export", onclick: () => exportPerson(p.id) }, t("person_export")));
    }
    box.replaceChildren(el("h3", {}, `${p.name} (${p.id})`), el("dl", { class: "person-fields", style: FIELDS_STYLE }, ...rows.flat()), actions);
  }

  async function exportPerson(id) {
    const status = section.querySelector(".person-status");
    const response = await CG.api(`${personPath(id)}/export`);
    if (!response.ok) { status.textContent = `${t("person_failed")} (${response.status})`; return; }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: `person-${id}.json`, class: "person-download", hidden: true });
    section.append(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(url); link.remove(); }, 1000);
    status.textContent = t("person_exported");
  }

  function render(target) {
    section = target;
    section.append(
      el("h2", {}, t("person_title")),
      el("form", { class: "person-search", onsubmit: search },
        el("input", { class: "person-q", type: "search", placeholder: t("person_hint") }),
        el("button", { type: "submit", class: "do-search" }, t("person_search"))),
      el("ul", { class: "person-results" }),
      el("p", { class: "person-status", role: "status" }),
      el("div", { class: "person-record" }));
  }

  function relabel() {
    if (!section) return;
    section.querySelector("h2").textContent = t("person_title");
    section.querySelector(".person-q").placeholder = t("person_hint");
    section.querySelector(".do-search").textContent = t("person_search");
    section.querySelector(".person-status").textContent = "";
    draw();
  }

  CG.registerPage({
    id: "person", permission: "read_people", title: { zh: "人员档案", en: "Person record" }, i18n,
    render, show: () => {},
  });
  CG.onLanguage(relabel);
})();
