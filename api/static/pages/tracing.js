"use strict";
// Contact tracing page: find a person, trace their contacts, download CSV, mark close contacts.
(function () {
  const CG = window.CG;
  if (!CG) return;
  const { el, t } = CG;
  const ui = { person: null, result: null, section: null };

  const I18N = {
    zh: {
      tr_title: "密接追踪", tr_find: "查找人员", tr_hint: "姓名、学号/工号或卡号", tr_search: "查找",
      tr_days: "回溯天数", tr_from: "开始", tr_to: "结束", tr_gen: "代数", tr_gen1: "一代密接",
      tr_gen2: "一代 + 二代", tr_run: "追踪", tr_csv: "下载 CSV", tr_none: "未选择人员",
      tr_index: "追踪对象", tr_rank: "排名", tr_person: "人员", tr_generation: "代",
      tr_exposure: "暴露时长(分钟)", tr_encounters: "接触次数", tr_zones: "区域", tr_first: "首次接触",
      tr_last: "末次接触", tr_method: "判定方式", tr_overlap: "同时在场", tr_entry_proximity: "进入时间相近",
      tr_both: "两者", tr_mark: "标记为密切接触者", tr_reason: "原因", tr_confirm_q: "确认将以下人员标记为密切接触者？",
      tr_marked: "已标记", tr_skipped: "未标记", tr_found: "名接触者", tr_truncated: "(已截断)",
      tr_error: "出错", tr_select_all: "全选", tr_loading: "追踪中…", tr_caretaker: "照护人",
      tr_need_reason: "请填写原因并至少选择一人", tr_via: "经由", tr_second_min: "二代起点最短暴露(分钟)",
      tr_second_max: "二代起点人数上限", tr_seeds: "二代追踪起点：暴露不少于 {min} 分钟的一代密接 {n} 人",
      tr_seeds_cut: "另有 {left} 人因人数上限未纳入", tr_min_overlap: "最短同时在场(分钟)",
      tr_limit: "最多显示人数",
      tr_reassigned: "看护人已更换", tr_no_caretaker: "无可用看护人，请指定",
    },
    en: {
      tr_title: "Contact tracing", tr_find: "Find a person", tr_hint: "name, id or card", tr_search: "Find",
      tr_days: "Days back", tr_from: "From", tr_to: "To", tr_gen: "Generations", tr_gen1: "first generation",
      tr_gen2: "first and second", tr_run: "Trace", tr_csv: "Download CSV", tr_none: "no person chosen",
      tr_index: "Index person", tr_rank: "#", tr_person: "Person", tr_generation: "Gen",
      tr_exposure: "Exposure (min)", tr_encounters: "Encounters", tr_zones: "Zones", tr_first: "First",
      tr_last: "Last", tr_method: "Found by", tr_overlap: "overlap", tr_entry_proximity: "entry proximity",
      tr_both: "both", tr_mark: "Mark close contacts", tr_reason: "Reason", tr_confirm_q: "Mark these people close_contact?",
      tr_marked: "Marked", tr_skipped: "Skipped", tr_found: "contacts", tr_truncated: "(truncated)",
      tr_error: "Error", tr_select_all: "All", tr_loading: "Tracing…", tr_caretaker: "caretaker",
      tr_need_reason: "Give a reason and choose at least one contact", tr_via: "Via",
      tr_second_min: "2nd gen from exposure ≥ (min)", tr_second_max: "2nd gen from at most",
      tr_seeds: "Second generation traced from {n} first-generation contacts with at least {min} min exposure",
      tr_seeds_cut: "{left} more left out by the cap", tr_min_overlap: "Min overlap (min)",
      tr_limit: "At most (contacts)",
      tr_reassigned: "Caretaker reassigned", tr_no_caretaker: "no eligible caretaker: name one",
    },
  };

  function query() {
    const q = new URLSearchParams();
    const from = ui.section.querySelector("#tr-from").value;
    const to = ui.section.querySelector("#tr-to").value;
    if (from) q.set("from", new Date(from).toISOString());
    if (to) q.set("to", new Date(to).toISOString());
    if (!from) q.set("days", ui.section.querySelector("#tr-days").value || "14");
    const generations = ui.section.querySelector("#tr-gen").value;
    q.set("generations", generations);
    const overlap = Number(ui.section.querySelector("#tr-min-overlap").value || "1");
    q.set("min_overlap_s", String(Math.max(0, overlap) * 60));
    const limit = ui.section.querySelector("#tr-limit").value;
    if (limit) q.set("limit", limit);
    if (generations === "2") {
      const minutes = Number(ui.section.querySelector("#tr-second-min").value || "15");
      q.set("second_min_exposure_s", String(Math.max(0, minutes) * 60));
      q.set("second_max_seeds", ui.section.querySelector("#tr-second-max").value || "50");
    }
    return q;
  }

  const errorText = async (response) => `${t("tr_error")}: ${await CG.errorText(response)}`;

  // A network failure or a lost session must not end as an uncaught rejection.
  const guarded = (fn, where) => async (...args) => {
    try { await fn(...args); } catch (error) {
      const out = ui.section && ui.section.querySelector(where);
      if (out) out.textContent = `${t("tr_error")}: ${error.message || error}`;
    }
  };

  async function search(event) {
    event.preventDefault();
    const q = ui.section.querySelector("#tr-q").value.trim();
    const list = ui.section.querySelector("#tr-people");
    if (!q) return;
    const response = await CG.api(`/api/people?q=${encodeURIComponent(q)}&limit=20`);
    if (!response.ok) { list.replaceChildren(el("li", { class: "error" }, t("tr_error"))); return; }
    const body = await response.json();
    list.replaceChildren(...body.items.map((p) => el("li", {},
      el("button", { type: "button", class: "link", dataset: { person: p.id }, onclick: () => choose(p) },
        `${p.name} (${p.id})`))));
  }

  function choose(person) {
    ui.person = person;
    ui.section.querySelector("#tr-person").textContent = `${person.name} (${person.id})`;
    ui.section.querySelector("#tr-run").disabled = false;
    ui.section.querySelector("#tr-people").replaceChildren();
  }

  async function run() {
    if (!ui.person) return;
    const status = ui.section.querySelector("#tr-status");
    status.textContent = t("tr_loading");
    const q = query();
    const response = await CG.api(`/api/tracing/${encodeURIComponent(ui.person.id)}?${q}`);
    if (!response.ok) { status.textContent = await errorText(response); return; }
    ui.result = await response.json();
    q.set("format", "csv");
    const csv = ui.section.querySelector("#tr-csv");
    csv.href = `/api/tracing/${encodeURIComponent(ui.person.id)}?${q}`;
    csv.hidden = false;
    status.textContent = `${ui.result.count} ${t("tr_found")} ${ui.result.truncated ? t("tr_truncated") : ""}`;
    renderRows();
  }

  // A link such as the demo prints: ?trace_person=ID&trace_from=ISO&trace_generations=2
  // &trace_min_overlap_s=60&trace_second_min_exposure_s=60#tracing fills the form and traces.
  function localInput(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    const pad = (n) => String(n).padStart(2, "0");
    return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}T`
      + `${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}`;
  }

  async function fromLink() {
    const p = new URLSearchParams(location.search);
    const person = p.get("trace_person");
    if (!person || ui.linked === location.search) return;
    ui.linked = location.search;
    const set = (id, value) => { if (value !== null && value !== "") ui.section.querySelector(id).value = value; };
    const minutes = (name) => (p.has(name) && Number.isFinite(Number(p.get(name))) ? String(Number(p.get(name)) / 60) : null);
    if (p.get("trace_from")) set("#tr-from", localInput(p.get("trace_from")));
    if (p.get("trace_to")) set("#tr-to", localInput(p.get("trace_to")));
    set("#tr-days", p.get("trace_days"));
    if (["1", "2"].includes(p.get("trace_generations"))) set("#tr-gen", p.get("trace_generations"));
    set("#tr-min-overlap", minutes("trace_min_overlap_s"));
    set("#tr-second-min", minutes("trace_second_min_exposure_s"));
    set("#tr-second-max", p.get("trace_second_max_seeds"));
    set("#tr-limit", p.get("trace_limit"));
    const response = await CG.api(`/api/people?q=${encodeURIComponent(person)}&limit=20`);
    if (!response.ok) { ui.section.querySelector("#tr-status").textContent = await errorText(response); return; }
    const body = await response.json();
    const match = body.items.find((item) => item.id === person);
    if (!match) { ui.section.querySelector("#tr-status").textContent = `${t("tr_error")}: ${person}`; return; }
    choose(match);
    await run();
  }

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, (_, key) => String(values[key]));
  }

  function renderSeeds() {
    const out = ui.section.querySelector("#tr-seeds");
    const r = ui.result;
    if (!r || r.generations !== 2) { out.textContent = ""; return; }
    const left = r.second_seeds_eligible - r.second_seeds.length;
    const shown = r.second_seeds.slice(0, 10).join(", ") + (r.second_seeds.length > 10 ? " …" : "");
    out.textContent = fill(t("tr_seeds"), { n: r.second_seeds.length, min: r.second_min_exposure_s / 60 })
      + (shown ? ` (${shown})` : "")
      + (r.second_seeds_truncated ? `; ${fill(t("tr_seeds_cut"), { left })}` : "");
    out.classList.toggle("warning", r.second_seeds_truncated);
  }

  function renderRows() {
    const tbody = ui.section.querySelector("#tr-table tbody");
    const contacts = (ui.result && ui.result.contacts) || [];
    // Names shown, ids on hover: `via` names first-generation contacts of the same answer.
    const personNames = new Map(contacts.map((c) => [c.person_id, c.name]));
    const zoneNames = (ui.result && ui.result.zone_names) || {};
    const names = (ids, byId) => ids.flatMap((id, i) => [i ? ", " : "",
      el("span", { class: "who", title: byId(id) ? id : null, dataset: { id } }, byId(id) || id)]);
    tbody.replaceChildren(...contacts.map((c, i) => el("tr", { dataset: { person: c.person_id, generation: c.generation } },
      el("td", {}, el("input", { type: "checkbox", class: "tr-pick", value: c.person_id })),
      el("td", {}, String(i + 1)),
      CG.nameCell(c.name, c.person_id, "tr-person"),
      el("td", {}, String(c.generation)),
      el("td", {}, (c.exposure_s / 60).toFixed(1)),
      el("td", {}, String(c.encounters)),
      el("td", { class: "tr-zones" }, names(c.zones, (id) => zoneNames[id])),
      el("td", {}, CG.fmtTime(c.first_encounter)),
      el("td", {}, CG.fmtTime(c.last_encounter)),
      el("td", {}, t(`tr_${c.method}`)),
      el("td", { class: "tr-via" }, names(c.via || [], (id) => personNames.get(id))))));
    ui.section.querySelector("#tr-mark-form").hidden = contacts.length === 0;
    renderSeeds();
  }

  function picked() {
    return [...ui.section.querySelectorAll(".tr-pick:checked")].map((box) => box.value);
  }

  function askMark(event) {
    event.preventDefault();
    const chosen = picked();
    const reason = ui.section.querySelector("#tr-reason").value.trim();
    const out = ui.section.querySelector("#tr-mark-result");
    if (!chosen.length || !reason) { out.textContent = t("tr_need_reason"); return; }
    const dialog = ui.section.querySelector("#tr-confirm");
    dialog.querySelector("#tr-confirm-list").textContent = chosen.join(", ");
    dialog.showModal();
  }

  async function mark() {
    const out = ui.section.querySelector("#tr-mark-result");
    const body = JSON.stringify({ contacts: picked(), reason: ui.section.querySelector("#tr-reason").value.trim() });
    const response = await CG.api(`/api/tracing/${encodeURIComponent(ui.person.id)}/mark`, { method: "POST", body });
    if (!response.ok) { out.textContent = await errorText(response); return; }
    const result = await response.json();
    // Names shown, ids on hover.
    const who = (name, id) => el("span", { class: "who", title: name && id ? id : null, dataset: { id } }, name || id);
    const list = (items, sep) => items.flatMap((item, i) => (i ? [sep, ...item] : item));
    const marked = result.marked.map((m) => [who(m.person_name, m.person_id),
      ...(m.caretaker_id ? [` (${t("tr_caretaker")} `, who(m.caretaker_name, m.caretaker_id), ")"] : [])]);
    const skipped = result.skipped.map((s) => `${s.person_id}: ${s.why}`);
    // People cared for by someone just marked: they got another caretaker (or none was free).
    const moved = (result.reassigned || []).map((r) => [who(r.person_name, r.person_id), ": ",
      who(r.previous_caretaker_name, r.previous_caretaker_id), " → ",
      r.caretaker_id ? who(r.caretaker_name, r.caretaker_id) : t("tr_no_caretaker")]);
    out.replaceChildren(...[
      el("p", { class: "tr-marked" }, `${t("tr_marked")}: `, ...(marked.length ? list(marked, ", ") : ["-"])),
      skipped.length ? el("p", { class: "tr-skipped" }, `${t("tr_skipped")}: ${skipped.join("; ")}`) : null,
      moved.length ? el("p", { class: "tr-reassigned" }, `${t("tr_reassigned")}: `, ...list(moved, "; ")) : null,
    ].filter(Boolean));
  }

  function render(section) {
    ui.section = section;
    const label = (key, input) => el("label", {}, el("span", { "data-tr": key }, t(key)), " ", input);
    const confirm = el("dialog", { id: "tr-confirm" },
      el("form", { method: "dialog" },
        el("p", { "data-tr": "tr_confirm_q" }, t("tr_confirm_q")),
        el("p", { id: "tr-confirm-list" }),
        el("menu", {},
          el("button", { value: "cancel", "data-i18n": "cancel" }, t("cancel")),
          el("button", { value: "ok", id: "tr-confirm-ok", onclick: () => { guarded(mark, "#tr-mark-result")(); } }, t("confirm")))));
    section.append(
      el("h2", { "data-tr": "tr_title" }, t("tr_title")),
      el("form", { id: "tr-find", onsubmit: guarded(search, "#tr-status") },
        label("tr_find", el("input", { id: "tr-q", placeholder: t("tr_hint") })),
        el("button", { id: "tr-search", "data-tr": "tr_search" }, t("tr_search"))),
      el("ul", { id: "tr-people" }),
      el("p", {}, el("span", { "data-tr": "tr_index" }, t("tr_index")), ": ",
        el("strong", { id: "tr-person" }, t("tr_none"))),
      el("div", { class: "filters" },
        label("tr_days", el("input", { id: "tr-days", type: "number", min: "1", max: "60", value: "14" })),
        label("tr_from", el("input", { id: "tr-from", type: "datetime-local", step: "1" })),
        label("tr_to", el("input", { id: "tr-to", type: "datetime-local", step: "1" })),
        label("tr_gen", el("select", { id: "tr-gen" },
          el("option", { value: "1", "data-tr": "tr_gen1" }, t("tr_gen1")),
          el("option", { value: "2", "data-tr": "tr_gen2" }, t("tr_gen2")))),
        label("tr_min_overlap", el("input", { id: "tr-min-overlap", type: "number", min: "0", max: "1440", step: "any", value: "1" })),
        label("tr_limit", el("input", { id: "tr-limit", type: "number", min: "1", max: "100000", placeholder: "∞" })),
        label("tr_second_min", el("input", { id: "tr-second-min", type: "number", min: "0", step: "1", value: "15" })),
        label("tr_second_max", el("input", { id: "tr-second-max", type: "number", min: "1", max: "500", value: "50" })),
        el("button", { id: "tr-run", type: "button", disabled: true, onclick: guarded(run, "#tr-status"), "data-tr": "tr_run" }, t("tr_run")),
        el("a", { id: "tr-csv", hidden: true, download: "contacts.csv", "data-tr": "tr_csv" }, t("tr_csv"))),
      el("p", { id: "tr-status" }),
      el("p", { id: "tr-seeds" }),
      el("table", { id: "tr-table" },
        el("thead", {}, el("tr", {}, el("th", {}),
          ...["tr_rank", "tr_person", "tr_generation", "tr_exposure", "tr_encounters", "tr_zones",
            "tr_first", "tr_last", "tr_method", "tr_via"].map((key) => el("th", { "data-tr": key }, t(key))))),
        el("tbody", {})),
      el("form", { id: "tr-mark-form", hidden: true, onsubmit: askMark },
        label("tr_reason", el("input", { id: "tr-reason", maxlength: "2000" })),
        el("button", { id: "tr-mark", "data-tr": "tr_mark" }, t("tr_mark")),
        el("div", { id: "tr-mark-result" })),
      confirm);
  }

  CG.onLanguage(() => {
    if (!ui.section) return;
    for (const node of ui.section.querySelectorAll("[data-tr]")) node.textContent = t(node.dataset.tr);
    ui.section.querySelector("#tr-q").placeholder = t("tr_hint");
    renderRows();
  });

  CG.registerPage({
    id: "tracing",
    permission: "trace_contacts",
    title: { zh: "密接追踪", en: "Contact tracing" },
    i18n: I18N,
    render,
    show() { guarded(fromLink, "#tr-status")(); },
  });
})();
