// Health page: statuses and history, fever re-measurement (guards enter readings,
// health officers review), caretakers and their cases, travel declarations and areas.
// Each part appears only for operators whose permissions allow it; built with CG.el only.
(() => {
  "use strict";
  const CG = window.CG;
  if (!CG) return;
  const { el, t, may } = CG;
  const STATUSES = ["fever_watch", "home_isolation", "close_contact", "suspected", "confirmed", "recovered", "clear"];

  const I18N = {
    zh: {
      h_tab: "健康", h_measure: "复测体温", h_find: "查找发热观察人员", h_celsius: "体温 (°C)", h_note: "备注",
      h_record: "记录", h_fever: "发热", h_normal: "正常", h_recorded: "已记录", h_review: "复测审核",
      h_clear: "解除", h_escalate: "升级为疑似", h_statuses: "健康状态", h_all: "全部", h_person: "人员",
      h_status: "状态", h_since: "开始", h_until: "截至", h_reason: "原因", h_caretaker: "看护人",
      h_history: "历史", h_readings: "复测记录", h_set: "设置状态", h_changed_by: "操作人", h_load: "查看",
      h_caretakers: "看护人与看护对象", h_day: "隔离第几天", h_phone: "电话", h_cases: "对象数",
      h_unassigned: "未分配", h_travel: "出行申报", h_destination: "目的地", h_departure: "出发日期",
      h_return: "返回日期", h_declare: "申报", h_import: "导入 CSV", h_areas: "疫区列表", h_area_name: "名称",
      h_match: "匹配文字", h_from: "生效日期", h_to: "截止日期", h_add: "添加", h_remove: "移除",
      h_waive: "豁免", h_isolated: "已隔离", h_result: "结果", h_none: "无", h_error: "出错",
      h_search: "搜索", h_select_hint: "选择一个人查看详情", h_readings_n: "复测次数",
      st_clear: "正常", st_fever_watch: "发热观察", st_home_isolation: "居家隔离", st_close_contact: "密切接触",
      st_suspected: "疑似", st_confirmed: "确诊", st_recovered: "康复",
      h_caretaker_hint: "工号，留空自动分配", h_clear_needs: "需先记录一次正常复测", h_declared: "已申报",
      h_ev_isolated: "已隔离", h_ev_extended: "隔离延长", h_ev_lifted: "解除隔离", h_ev_waiting: "待返回后隔离",
      h_confirm_waive: "豁免这次出行？仅由它引起的隔离将解除。", h_confirm_remove: "移除疫区 {0}？仅由它引起的隔离将解除。",
      h_lifted: "解除隔离", h_refreshed: "更新于",
      h_matched: "匹配区划", h_text_match: "文字匹配", h_preview: "预览", h_confirm_area: "确认列为疫区并隔离",
      h_cancel: "取消", h_from_hint: "留空：14 天前", h_would: "将受影响的人员", h_outcome: "处理",
      h_out_isolate: "将隔离", h_out_extend: "将延长隔离", h_out_waiting: "待当前状态结束后隔离",
      h_out_on_return: "返回当日隔离", h_out_unchanged: "不变", h_out_waived: "已豁免",
      h_out_period_over: "隔离期已过，不隔离", h_nobody: "没有人会被隔离", h_truncated: "仅显示前 2000 条",
      h_ev_reassigned: "看护人已更换", h_reassigned: "其看护对象已更换看护人", h_no_caretaker: "无可用看护人，请指定",
    },
    en: {
      h_tab: "Health", h_measure: "Re-measurement", h_find: "Find a person on fever watch", h_celsius: "Reading (°C)",
      h_note: "Note", h_record: "Record", h_fever: "fever", h_normal: "normal", h_recorded: "Recorded",
      h_review: "Re-measurement review", h_clear: "Clear", h_escalate: "Escalate to suspected",
      h_statuses: "Health statuses", h_all: "All", h_person: "Person", h_status: "Status", h_since: "Since",
      h_until: "Until", h_reason: "Reason", h_caretaker: "Caretaker", h_history: "History",
      h_readings: "Readings", h_set: "Set status", h_changed_by: "Changed by", h_load: "Open",
      h_caretakers: "Caretakers and their cases", h_day: "Day of isolation", h_phone: "Phone", h_cases: "Cases",
      h_unassigned: "unassigned", h_travel: "Travel declarations", h_destination: "Destination",
      h_departure: "Departure", h_return: "Return", h_declare: "Declare", h_import: "Import CSV",
      h_areas: "Epidemic areas", h_area_name: "Name", h_match: "Match text", h_from: "Effective from",
      h_to: "Effective until", h_add: "Add", h_remove: "Remove", h_waive: "Waive", h_isolated: "isolated",
      h_result: "Result", h_none: "none", h_error: "Error", h_search: "Search",
      h_select_hint: "Pick a person to see the details", h_readings_n: "Readings",
      st_clear: "clear", st_fever_watch: "fever watch", st_home_isolation: "home isolation",
      st_close_contact: "close contact", st_suspected: "suspected", st_confirmed: "confirmed", st_recovered: "recovered",
      h_caretaker_hint: "staff id; empty: chosen automatically", h_clear_needs: "Record a normal re-measurement first",
      h_declared: "Declared", h_ev_isolated: "isolated", h_ev_extended: "extended", h_ev_lifted: "lifted",
      h_ev_waiting: "waiting", h_confirm_waive: "Waive this trip? An isolation only it caused is lifted.",
      h_confirm_remove: "Remove the area {0}? Isolations only it caused are lifted.", h_lifted: "lifted",
      h_refreshed: "updated",
      h_matched: "Matched", h_text_match: "text match", h_preview: "Preview", h_confirm_area: "Confirm: list and isolate",
      h_cancel: "Cancel", h_from_hint: "empty: 14 days back", h_would: "Who listing this area affects",
      h_outcome: "Outcome", h_out_isolate: "will be isolated", h_out_extend: "isolation lengthened",
      h_out_waiting: "isolated once the current status ends", h_out_on_return: "isolated on return",
      h_out_unchanged: "unchanged", h_out_waived: "waived", h_out_period_over: "period over: not isolated",
      h_nobody: "Nobody would be isolated", h_truncated: "only the first 2000 are shown",
      h_ev_reassigned: "caretaker reassigned", h_reassigned: "People in their care got another caretaker", h_no_caretaker: "no eligible caretaker: name one",
    },
  };

  const st = (s) => (s ? t("st_" + s) : "");
  // What a destination or an area resolved to: "武汉市 (湖北省) 420100", or a text match.
  const matchedText = (m) => (!m ? "" : m.replace(/text match/g, t("h_text_match")));
  const parts = {};

  async function call(path, options, out) {
    const response = await CG.api(path, options);
    if (!response.ok) {
      const msg = await CG.errorText(response);
      if (out) { out.textContent = `${t("h_error")}: ${msg}`; out.classList.add("error"); }
      throw new HandledError(msg);
    }
    if (out) out.classList.remove("error");
    return response.json().catch(() => null);
  }
  // An error already shown next to the form: not an uncaught page error.
  class HandledError extends Error {}
  const guarded = (fn) => (...args) => Promise.resolve(fn(...args)).catch((e) => { if (!(e instanceof HandledError)) console.error(e); });
  // After an action every list on the page may have changed (a cleared person leaves the
  // fever lists, a new isolation joins the statuses and the caretakers' cases).
  const refreshAll = () => Promise.all(Object.values(parts).map((load) => load().catch(() => {})));
  const post = (path, body, out, method = "POST") => call(path, { method, body: JSON.stringify(body) }, out);
  const table = (headers, rows) =>
    el("table", { class: "grid" }, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows));
  const field = (label, input) => el("label", {}, label, " ", input);
  const block = (id, title, ...body) => el("div", { id, class: "health-block" }, el("h3", {}, title), ...body);
  const msg = (id) => el("p", { id, class: "health-msg", role: "status" });
  // A person by name with the id on hover (the id alone when no name is known).
  const who = (name, id) => el("span", { class: "who", title: name && id ? id : null, dataset: id ? { id } : {} }, name || id || "");
  // What a status change did besides the status: the caretaker it got (or that none was
  // free), and the people whose caretaker it put under a hold, with who cares now.
  function changeNotice(personId, r) {
    const lines = [];
    if (r && r.status && !["clear", "recovered", "fever_watch"].includes(r.status) && !r.caretaker_id) {
      lines.push(el("li", { class: "hs-no-caretaker error" }, `${personId}: ${t("h_no_caretaker")}`));
    }
    for (const m of (r && r.reassigned) || []) {
      lines.push(el("li", { class: m.caretaker_id ? "hs-reassigned" : "hs-reassigned error", dataset: { person: m.person_id } },
        who(m.person_name, m.person_id), ": ", who(m.previous_caretaker_name, m.previous_caretaker_id), " → ",
        m.caretaker_id ? who(m.caretaker_name, m.caretaker_id) : t("h_no_caretaker")));
    }
    if (!lines.length) return "";
    const title = (r.reassigned || []).length ? el("strong", {}, `${t("h_reassigned")}:`) : "";
    return el("div", { class: "hs-notice" }, title, el("ul", {}, lines));
  }
  const announce = (out, text, personId, r) => out.replaceChildren(text, changeNotice(personId, r));

  // -- guards: find a fever_watch person and enter a reading ---------------------
  function measureBlock() {
    const q = el("input", { id: "hm-q", placeholder: t("h_find") });
    const list = el("ul", { id: "hm-list" });
    const out = msg("hm-msg");
    async function find(event) {
      if (event) event.preventDefault();
      const people = await call(`/api/health/fever-watch?q=${encodeURIComponent(q.value)}`, {}, out);
      list.replaceChildren(...people.map((p) => el("li", {},
        `${p.name} (${p.person_id}, ${p.org_unit_id || ""}) · ${t("h_readings_n")}: ${p.readings} `,
        readingForm(p.person_id, out, refreshAll))));
      if (!people.length) list.append(el("li", {}, t("h_none")));
    }
    parts.measure = find;
    return block("health-measure", t("h_measure"),
      el("form", { onsubmit: guarded(find) }, q, el("button", {}, t("h_search"))), list, out);
  }

  function readingForm(personId, out, after) {
    const celsius = el("input", { type: "number", step: "0.1", min: "30", max: "45", required: true, class: "hm-celsius" });
    const note = el("input", { class: "hm-note", maxlength: "500" });
    return el("form", { class: "hm-form", dataset: { person: personId }, onsubmit: guarded(async (event) => {
      event.preventDefault();
      const r = await post(`/api/health/${encodeURIComponent(personId)}/readings`,
        { celsius: Number(celsius.value), note: note.value }, out);
      out.textContent = `${t("h_recorded")}: ${personId} ${r.celsius} °C — ${r.fever ? t("h_fever") : t("h_normal")}`;
      out.classList.toggle("fever", r.fever);
      await after();
    }) }, field(t("h_celsius"), celsius), field(t("h_note"), note), el("button", {}, t("h_record")));
  }

  // -- health officers: review readings, clear or escalate -------------------------
  function reviewBlock() {
    const body = el("div", { id: "hr-list" });
    const out = msg("hr-msg");
    async function load() {
      const people = await call("/api/health/fever-review", {}, out);
      body.replaceChildren(table([t("h_person"), t("h_since"), t("h_readings"), ""], people.map((p) =>
        el("tr", { dataset: { person: p.person_id } },
          CG.nameCell(p.name, p.person_id, "hr-person"), el("td", {}, CG.fmtTime(p.since)),
          el("td", {}, p.readings.map((r) => el("span", { class: r.fever ? "fever" : "" },
            `${r.celsius} °C ${CG.fmtTime(r.measured_at)} (${r.recorded_by}) `))),
          el("td", {}, may("write_health") ? decideButtons(p, out, refreshAll) : "")))));
    }
    parts.review = load;
    return block("health-review", t("h_review"), body, out);
  }

  function decideButtons(p, out, after) {
    const personId = p.person_id;
    // Clearing needs a normal re-measurement since the fever (the API refuses it otherwise).
    const normal = p.readings.some((r) => !r.fever);
    const decide = (outcome) => guarded(async () => {
      const reason = prompt(t("h_reason"));
      if (!reason) return;
      const r = await post(`/api/health/${encodeURIComponent(personId)}/fever-review`, { outcome, reason }, out);
      announce(out, `${personId}: ${st(outcome)}`, personId, r);
      await after();
    });
    return [el("button", { class: "hr-clear", onclick: decide("clear"), disabled: !normal,
      title: normal ? null : t("h_clear_needs") }, t("h_clear")), " ",
      el("button", { class: "hr-escalate", onclick: decide("suspected") }, t("h_escalate"))];
  }

  // -- statuses: list by status, one person's status, history and actions ----------
  function statusBlock() {
    const filter = el("select", { id: "hs-filter" }, el("option", { value: "" }, t("h_all")),
      STATUSES.map((s) => el("option", { value: s }, st(s))));
    const list = el("div", { id: "hs-list" });
    const detail = el("div", { id: "hs-detail" }, t("h_select_hint"));
    const out = msg("hs-msg");
    async function load() {
      const rows = await call(`/api/health?limit=500${filter.value ? "&status=" + filter.value : ""}`, {}, out);
      list.replaceChildren(table([t("h_person"), t("h_status"), t("h_since"), t("h_until"), t("h_caretaker"), ""],
        rows.map((r) => el("tr", { dataset: { person: r.person_id } },
          CG.nameCell(r.name, r.person_id, "hs-person"), el("td", {}, st(r.status)),
          el("td", {}, CG.fmtTime(r.since)), el("td", {}, CG.fmtTime(r.until)),
          CG.nameCell(r.caretaker_name, r.caretaker_id, "hs-caretaker-name"),
          el("td", {}, el("button", { class: "hs-open", onclick: guarded(() => openPerson(r.person_id)) }, t("h_load")))))));
    }
    async function openPerson(personId) {
      const info = await call(`/api/health/${encodeURIComponent(personId)}`, {}, out);
      const c = info.current || {};
      detail.replaceChildren(
        el("h4", {}, `${personId}: ${st(c.status) || t("h_none")}`),
        el("p", {}, `${t("h_reason")}: ${c.reason || ""} · ${t("h_until")}: ${CG.fmtTime(c.until)} · ${t("h_caretaker")}: `,
          who(c.caretaker_name, c.caretaker_id)),
        may("write_health") ? setForm(personId, out, async () => { await openPerson(personId); await refreshAll(); }) : "",
        el("h4", {}, t("h_history")),
        table([t("h_status"), t("h_since"), t("h_until"), t("h_reason"), t("h_caretaker"), t("h_changed_by")],
          info.history.slice().reverse().map((h) => el("tr", {}, el("td", {}, st(h.status)),
            el("td", {}, CG.fmtTime(h.since)), el("td", {}, CG.fmtTime(h.until)), el("td", {}, h.reason),
            CG.nameCell(h.caretaker_name, h.caretaker_id, "hs-caretaker-name"),
            el("td", {}, `${h.changed_by} ${CG.fmtTime(h.changed_at)}`)))),
        el("h4", {}, t("h_readings")),
        el("ul", {}, info.readings.map((r) => el("li", { class: r.fever ? "fever" : "" },
          `${r.celsius} °C ${CG.fmtTime(r.measured_at)} (${r.recorded_by}) ${r.note}`))));
    }
    filter.addEventListener("change", guarded(load));
    parts.statuses = load;
    return block("health-statuses", t("h_statuses"), field(t("h_status"), filter), list, out, detail);
  }

  function setForm(personId, out, after) {
    const status = el("select", { class: "hs-status" }, STATUSES.map((s) => el("option", { value: s }, st(s))));
    const reason = el("input", { class: "hs-reason", required: true, maxlength: "2000" });
    const until = el("input", { type: "date", class: "hs-until" });
    const caretaker = el("input", { class: "hs-caretaker", maxlength: "200", placeholder: t("h_caretaker_hint") });
    return el("form", { class: "hs-form", onsubmit: guarded(async (event) => {
      event.preventDefault();
      const r = await post(`/api/health/${encodeURIComponent(personId)}`, { status: status.value, reason: reason.value,
        until_date: until.value || null, caretaker_id: caretaker.value || null }, out, "PUT");
      await after();
      // After the refresh, which may rebuild the lists around this message.
      announce(out, `${personId}: ${st(status.value)}`, personId, r);
    }) }, field(t("h_status"), status), field(t("h_reason"), reason), field(t("h_until"), until),
    field(t("h_caretaker"), caretaker), el("button", {}, t("h_set")));
  }

  // -- caretakers and their cases ---------------------------------------------------
  function caretakerBlock() {
    const body = el("div", { id: "hc-list" });
    const out = msg("hc-msg");
    async function load() {
      const cases = await call("/api/caretakers/cases", {}, out);
      body.replaceChildren(table([t("h_caretaker"), t("h_person"), t("h_status"), t("h_day"), t("h_until"), t("h_phone")],
        cases.map((c) => el("tr", { dataset: { person: c.person_id } },
          c.caretaker_id ? CG.nameCell(c.caretaker_name, c.caretaker_id, "hc-caretaker") : el("td", {}, t("h_unassigned")),
          CG.nameCell(c.name, c.person_id, "hc-person"), el("td", {}, st(c.status)), el("td", { class: "hc-day" }, String(c.day)),
          el("td", {}, CG.fmtTime(c.until)), el("td", {}, c.phone || "")))));
    }
    parts.caretakers = load;
    return block("health-caretakers", t("h_caretakers"), body, out);
  }

  // -- travel declarations and epidemic areas ---------------------------------------
  function travelBlock() {
    const list = el("div", { id: "ht-list" });
    const out = msg("ht-msg");
    const inputs = {
      person_id: el("input", { class: "ht-person", required: true }),
      destination: el("input", { class: "ht-destination", required: true }),
      departure_date: el("input", { type: "date", class: "ht-departure", required: true }),
      return_date: el("input", { type: "date", class: "ht-return", required: true }),
    };
    const file = el("input", { type: "file", accept: ".csv", class: "ht-file" });
    async function load() {
      const rows = await call("/api/travel/declarations?limit=200", {}, out);
      list.replaceChildren(table([t("h_person"), t("h_destination"), t("h_matched"), t("h_departure"), t("h_return"), t("h_result"), ""],
        rows.map((d) => el("tr", { dataset: { id: d.id } }, el("td", {}, `${d.person_name} (${d.person_id})`),
          el("td", {}, d.destination), el("td", { class: "ht-matched" }, matchedText(d.place_match)),
          el("td", {}, d.departure_date), el("td", {}, d.return_date),
          el("td", {}, d.waived_at ? t("h_waive") : d.isolated_at ? t("h_isolated") : (d.matched_areas || []).join(", ")),
          el("td", {}, may("write_health") && !d.waived_at ? el("button", { class: "ht-waive", onclick: guarded(async () => {
            if (!confirm(t("h_confirm_waive"))) return;
            const r = await post(`/api/travel/declarations/${d.id}/waive`, {}, out);
            out.textContent = `#${d.id} ${t("h_waive")} ${summary((r && r.evaluation) || {})}`;
            await refreshAll();
          }) }, t("h_waive")) : "")))));
    }
    const summary = (ev) => Object.entries(ev || {}).filter(([, v]) => Array.isArray(v) && v.length)
      .map(([k, v]) => `${t("h_ev_" + k)}: ${v.join(", ")}`).join("; ");
    const declare = el("form", { id: "ht-form", onsubmit: guarded(async (event) => {
      event.preventDefault();
      const body = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.value]));
      const r = await post("/api/travel/declarations", body, out);
      out.textContent = `${t("h_declared")} #${r.declaration.id} ${r.declaration.person_id} ${r.declaration.destination} `
        + summary(r.evaluation);
      await refreshAll();
    }) }, field(t("h_person"), inputs.person_id), field(t("h_destination"), inputs.destination),
    field(t("h_departure"), inputs.departure_date), field(t("h_return"), inputs.return_date), el("button", {}, t("h_declare")));
    const upload = el("form", { id: "ht-upload", onsubmit: guarded(async (event) => {
      event.preventDefault();
      if (!file.files.length) return;
      const data = new FormData(); data.append("file", file.files[0]);
      const body = await call("/api/travel/declarations/import", { method: "POST", body: data }, out);
      out.textContent = `${body.rows} · ${summary(body.evaluation)}`;
      await refreshAll();
    }) }, file, el("button", {}, t("h_import")));
    parts.travel = load;
    return block("health-travel", t("h_travel"), declare, upload, out, list);
  }

  function areaBlock() {
    const list = el("div", { id: "ha-list" });
    const preview = el("div", { id: "ha-preview" });
    const out = msg("ha-msg");
    const inputs = {
      name: el("input", { class: "ha-name", required: true }),
      match: el("input", { class: "ha-match" }),
      effective_from: el("input", { type: "date", class: "ha-from", title: t("h_from_hint") }),
      effective_until: el("input", { type: "date", class: "ha-until" }),
    };
    async function load() {
      const areas = await call("/api/travel/areas", {}, out);
      list.replaceChildren(table([t("h_area_name"), t("h_match"), t("h_matched"), t("h_from"), t("h_to"), ""],
        areas.map((a) => el("tr", { dataset: { id: a.id } }, el("td", {}, a.name), el("td", {}, a.match),
          el("td", { class: "ha-matched" }, matchedText(a.place_match)),
          el("td", {}, a.effective_from), el("td", {}, a.effective_until || ""),
          el("td", {}, may("manage_areas") ? el("button", { class: "ha-remove", onclick: guarded(async () => {
            if (!confirm(t("h_confirm_remove").replace("{0}", a.name))) return;
            const r = await call(`/api/travel/areas/${a.id}`, { method: "DELETE" }, out);
            out.textContent = `${a.name}: ${t("h_remove")} · ${t("h_lifted")} ${r.evaluation.lifted.length}`;
            await refreshAll();
          }) }, t("h_remove")) : "")))));
    }
    // Listing takes two steps: the preview shows who would be isolated (nothing written),
    // the officer confirms, and only then is the area listed.
    const body = () => ({ name: inputs.name.value, match: inputs.match.value || null,
      effective_from: inputs.effective_from.value || null, effective_until: inputs.effective_until.value || null });
    function showPreview(p, sent) {
      const rows = p.affected.map((r) => el("tr", { class: `ha-row out-${r.outcome}`, dataset: { person: r.person_id } },
        el("td", {}, `${r.person_name} (${r.person_id})`), el("td", {}, r.destination),
        el("td", {}, matchedText(r.matched)), el("td", {}, r.return_date),
        el("td", { title: CG.fmtTime(r.until) }, r.until_date), el("td", { class: "ha-outcome" }, t("h_out_" + r.outcome))));
      const confirmButton = el("button", { id: "ha-confirm", onclick: guarded(async () => {
        const r = await post("/api/travel/areas", sent, out);
        preview.replaceChildren();
        out.textContent = `${r.area.name} (${matchedText(r.area.place_match)}): ${t("h_isolated")} ${r.evaluation.isolated.length}`
          + (r.evaluation.isolated.length ? ` (${r.evaluation.isolated.join(", ")})` : "");
        await refreshAll();
      }) }, t("h_confirm_area"));
      const cancel = el("button", { id: "ha-cancel", onclick: () => preview.replaceChildren() }, t("h_cancel"));
      preview.replaceChildren(
        el("p", { class: "ha-summary" }, `${p.area.name} → ${matchedText(p.area.place_match)} · ${t("h_from")} ${p.area.effective_from}`),
        el("h4", {}, t("h_would")),
        rows.length ? table([t("h_person"), t("h_destination"), t("h_matched"), t("h_return"), t("h_until"), t("h_outcome")], rows)
          : el("p", {}, t("h_nobody")),
        p.truncated ? el("p", {}, t("h_truncated")) : "", confirmButton, " ", cancel);
    }
    const add = el("form", { id: "ha-form", onsubmit: guarded(async (event) => {
      event.preventDefault();
      const sent = body();
      const p = await post("/api/travel/areas/preview", sent, out);
      out.textContent = "";
      showPreview(p, sent);
    }) }, field(t("h_area_name"), inputs.name), field(t("h_match"), inputs.match),
    field(t("h_from"), inputs.effective_from), field(t("h_to"), inputs.effective_until), el("button", {}, t("h_preview")));
    parts.areas = load;
    return block("health-areas", t("h_areas"), may("manage_areas") ? add : "", preview, out, list);
  }

  function render(section) {
    for (const key of Object.keys(parts)) delete parts[key];
    const blocks = [el("h2", {}, t("h_tab"))];
    if (may("record_reading")) blocks.push(measureBlock());
    if (may("read_health")) blocks.push(reviewBlock(), statusBlock());
    if (may("read_caretaking")) blocks.push(caretakerBlock());
    if (may("declare_travel")) blocks.push(travelBlock(), areaBlock());
    section.replaceChildren(...blocks);
  }

  function show() {
    for (const load of Object.values(parts)) load().catch((e) => { if (!(e instanceof HandledError)) console.error(e); });
    clearInterval(timer);
    timer = setInterval(poll, REFRESH_MS);
  }

  // A guard keeps this page open all night: new fever_watch people show up without a click,
  // but a reading being typed is never wiped out (the lists wait until the forms are empty).
  const REFRESH_MS = 30000;
  let timer = null;
  function poll() {
    if (!current || current.hidden || !CG.state.me) return;
    const busy = [...current.querySelectorAll(".hm-form input")].some((i) => i.value || i === document.activeElement);
    if (busy) return;
    for (const key of ["measure", "review"]) if (parts[key]) parts[key]().catch(() => {});
  }

  let current = null;
  CG.registerPage({
    id: "health",
    permission: ["record_reading", "read_health", "read_caretaking", "declare_travel"],
    title: { zh: "健康", en: "Health" },
    i18n: I18N,
    render(section) { current = section; render(section); },
    show,
  });
  // Texts are built in the current language: rebuild on a switch.
  CG.onLanguage(() => { if (current) { render(current); if (!current.hidden) show(); } });
})();
