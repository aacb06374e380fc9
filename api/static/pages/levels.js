"use strict";
// Response levels: the header banner (every role), and a page to see, set and define levels.
(() => {
  const CG = window.CG;
  const { el, t } = CG;
  const BANNER_MS = 15000;
  let current = null; // the last GET /api/levels
  let section = null;
  let lastUser = null;
  let lastBanner = 0;

  const i18n = {
    zh: {
      lv_title: "防控等级", lv_campus: "全校", lv_scope: "范围", lv_level: "等级", lv_note: "备注",
      lv_set: "设置", lv_zones: "指定区域", lv_clear: "取消区域等级", lv_history: "变更记录",
      lv_when: "时间", lv_who: "操作人", lv_from: "原等级", lv_to: "新等级", lv_none: "（无）",
      lv_definitions: "等级定义", lv_name: "名称", lv_rules: "规则", lv_save: "保存定义",
      lv_bar_visitors: "禁止访客", lv_require_temperature: "所有门测温", lv_capacity_factor: "容量系数",
      lv_labs_named_only: "实验室仅限指名人员", lv_trips_need_approval: "出行须审批", lv_checkin_zones: "需当日打卡的区域 (逗号分隔)", lv_rank: "顺序", lv_title_zh: "中文名", lv_title_en: "英文名",
      lv_description: "说明", lv_saved: "已保存", lv_in_force: "当前生效", lv_since: "设置于",
      lv_pick_zone: "请至少选择一个区域", lv_confirm: "将{0}设为「{1}」？各门禁立即按新等级执行。",
      lv_confirm_clear: "取消 {0} 的区域等级？", lv_failed: "未保存",
    },
    en: {
      lv_title: "Response levels", lv_campus: "campus-wide", lv_scope: "Scope", lv_level: "Level", lv_note: "Note",
      lv_set: "Set", lv_zones: "Chosen zones", lv_clear: "Clear zone level", lv_history: "History",
      lv_when: "When", lv_who: "By", lv_from: "From", lv_to: "To", lv_none: "(none)",
      lv_definitions: "Definitions", lv_name: "Name", lv_rules: "Rules", lv_save: "Save definition",
      lv_bar_visitors: "visitors barred", lv_require_temperature: "temperature at every door",
      lv_capacity_factor: "capacity factor", lv_labs_named_only: "labs only for named people", lv_trips_need_approval: "trips need approval",
      lv_checkin_zones: "zones requiring today's check-in (comma-separated)", lv_rank: "Order",
      lv_title_zh: "Chinese title", lv_title_en: "English title", lv_description: "Description", lv_saved: "Saved",
      lv_in_force: "In force", lv_since: "Set", lv_pick_zone: "Choose at least one zone",
      lv_confirm: "Set {0} to \u201c{1}\u201d? The doors apply it at once.", lv_confirm_clear: "Clear the zone level of {0}?",
      lv_failed: "Not saved",
    },
  };

  const can = CG.may;
  const definition = (name) => ((current && current.definitions) || []).find((d) => d.name === name);
  const title = (name) => {
    if (!name) return t("lv_none");
    const d = definition(name);
    return d ? (CG.state.lang === "zh" ? d.title_zh : d.title_en) : name;
  };
  // The built-in levels' descriptions (migration 0011) in both languages; a description an
  // administrator wrote in one language only is shown as the rules in the console's language,
  // the text itself on hover.
  const STOCK_DESCRIPTIONS = {
    normal: { en: "Everyday rules.", zh: "日常规定。" },
    elevated: { en: "Temperature at every door; capacities at three quarters.", zh: "所有门禁测温；区域容量降至四分之三。" },
    lockdown: {
      en: "Visitors barred; temperature at every door; capacities halved; labs open only to people named in a grant.",
      zh: "禁止访客；所有门禁测温；区域容量减半；实验室仅对授权中指名的人员开放。",
    },
  };
  const hasHan = (text) => /\p{Script=Han}/u.test(text);
  function describe(d) {
    const stock = STOCK_DESCRIPTIONS[d.name];
    const lang = CG.state.lang;
    if (stock && d.description === stock.en) return { text: stock[lang], original: null };
    if (!d.description || hasHan(d.description) === (lang === "zh")) return { text: d.description, original: null };
    return { text: rulesText(d), original: d.description };
  }
  const zoneName = (id) => ((CG.state.zones || []).find((z) => z.id === id) || {}).name || id;

  // -- the banner ---------------------------------------------------------------

  function renderBanner() {
    const banner = document.getElementById("level-banner");
    if (!banner) return;
    if (!CG.state.me || !current || !current.campus) { banner.hidden = true; return; }
    const campus = current.campus.level;
    const zones = current.zones || [];
    if (campus === "normal" && zones.length === 0) { banner.hidden = true; banner.className = ""; return; }
    const parts = [`${title(campus)} · ${t("lv_campus")}`];
    const byLevel = new Map();
    for (const z of zones) byLevel.set(z.level, [...(byLevel.get(z.level) || []), z.zone_name || zoneName(z.zone_id)]);
    for (const [level, names] of byLevel) parts.push(`${title(level)} · ${names.join(", ")}`);
    const strictest = [campus, ...zones.map((z) => z.level)]
      .map((n) => definition(n) || { name: n, rank: 0 })
      .sort((a, b) => b.rank - a.rank)[0];
    banner.textContent = `${t("lv_title")}: ${parts.join(" | ")}`;
    banner.className = `level-${strictest.name}`;
    banner.dataset.level = campus;
    banner.hidden = false;
  }

  async function refresh() {
    if (!CG.state.me) { renderBanner(); return; }
    lastBanner = Date.now();
    try {
      const response = await CG.api("/api/levels");
      if (!response.ok) return;
      current = await response.json();
    } catch (e) { return; }
    renderBanner();
    updateTables();
  }

  // Periodic refreshes replace the tables only: a half-filled form keeps what was typed.
  function updateTables() {
    if (!section || section.hidden || !current) return;
    const inForceTable = section.querySelector("table.in-force");
    if (inForceTable) inForceTable.replaceWith(inForce());
    const definitions = section.querySelector("table.definitions");
    if (definitions) definitions.replaceWith(definitionsTable());
  }

  // A login shows up as a new CG.state.me: refresh at once, then every BANNER_MS.
  setInterval(() => {
    const user = CG.state.me ? CG.state.me.name : null;
    if (user !== lastUser) { lastUser = user; refresh(); return; }
    if (user && Date.now() - lastBanner >= BANNER_MS) refresh();
  }, 1000);

  // -- the page ---------------------------------------------------------------

  function levelSelect(name, withNone) {
    const select = el("select", { name });
    if (withNone) select.add(new Option(t("lv_none"), ""));
    for (const d of current.definitions) select.add(new Option(title(d.name), d.name));
    return select;
  }

  function rulesText(d) {
    const rules = [];
    if (d.bar_visitors) rules.push(t("lv_bar_visitors"));
    if (d.require_temperature) rules.push(t("lv_require_temperature"));
    if (d.capacity_factor < 1) rules.push(`${t("lv_capacity_factor")} ${d.capacity_factor}`);
    if (d.labs_named_only) rules.push(t("lv_labs_named_only"));
    if (d.trips_need_approval) rules.push(t("lv_trips_need_approval"));
    if ((d.checkin_zones || []).length) rules.push(`${t("lv_checkin_zones")}: ${d.checkin_zones.join(", ")}`);
    return rules.join("; ") || "—";
  }

  async function setLevel(level, zones, note, status) {
    const response = await CG.api("/api/levels", { method: "PUT", body: JSON.stringify({ level, zones, note }) });
    if (!response.ok) {
      status.textContent = `${t("lv_failed")}: ${await CG.errorText(response)}`;
      status.className = "status error"; // keeps "status": the clear buttons write here too
      return;
    }
    status.textContent = `${t("lv_saved")} ${CG.fmtTime(new Date())}`; status.className = "status notice";
    await refresh();
    await loadHistory();
  }

  function setForm() {
    const status = el("span", { class: "status" });
    const level = levelSelect("level", false);
    const scope = el("select", { name: "scope" }, new Option(t("lv_campus"), "campus"), new Option(t("lv_zones"), "zones"));
    const zones = el("select", { name: "zones", multiple: true, size: 4, hidden: true });
    for (const z of CG.state.zones || []) zones.add(new Option(z.name || z.id, z.id));
    scope.addEventListener("change", () => { zones.hidden = scope.value !== "zones"; });
    const note = el("input", { name: "note", maxlength: 500 });
    const submit = async (event) => {
      event.preventDefault();
      const chosen = scope.value === "zones" ? [...zones.selectedOptions].map((o) => o.value) : null;
      if (chosen && chosen.length === 0) { status.textContent = t("lv_pick_zone"); status.className = "status error"; return; }
      // Every door follows at once: say what is about to change before doing it.
      const where = chosen ? chosen.map(zoneName).join(", ") : t("lv_campus");
      if (!confirm(t("lv_confirm").replace("{0}", where).replace("{1}", title(level.value)))) return;
      await setLevel(level.value, chosen, note.value, status);
    };
    return el("form", { class: "inline set-level", onsubmit: submit },
      el("label", {}, t("lv_level"), level), el("label", {}, t("lv_scope"), scope, zones),
      el("label", {}, t("lv_note"), note), el("button", { type: "submit" }, t("lv_set")), status);
  }

  function inForce() {
    const rows = [current.campus, ...current.zones].map((s) => el("tr", { dataset: { scope: s.zone_id || "campus" } },
      el("td", {}, s.zone_id ? (s.zone_name || s.zone_id) : t("lv_campus")),
      el("td", { class: "level" }, title(s.level)),
      el("td", {}, s.set_by), el("td", {}, CG.fmtTime(s.set_at)), el("td", {}, s.note || ""),
      el("td", {}, s.zone_id && can("set_response_level")
        ? el("button", { type: "button", class: "do-clear",
          onclick: () => {
            if (!confirm(t("lv_confirm_clear").replace("{0}", s.zone_name || zoneName(s.zone_id)))) return;
            setLevel(null, [s.zone_id], "", section.querySelector(".set-level .status") || el("span"));
          } }, t("lv_clear"))
        : "")));
    return el("table", { class: "in-force" },
      el("thead", {}, el("tr", {}, ...["lv_scope", "lv_level", "lv_who", "lv_since", "lv_note", ""].map((k) => el("th", {}, k ? t(k) : "")))),
      el("tbody", {}, ...rows));
  }

  function definitionForm() {
    const status = el("span", { class: "status" });
    const field = (name, attrs) => el("label", {}, t(`lv_${name}`), el("input", { name, ...attrs }));
    const form = el("form", { class: "inline define-level" },
      field("name", { required: true, pattern: "[a-z0-9_-]{1,40}" }),
      field("title_zh", { required: true }), field("title_en", { required: true }),
      field("rank", { type: "number", value: "0" }),
      field("capacity_factor", { type: "number", step: "0.05", min: "0.05", max: "1", value: "1" }),
      ...["bar_visitors", "require_temperature", "labs_named_only", "trips_need_approval"].map((name) =>
        el("label", {}, el("input", { type: "checkbox", name }), t(`lv_${name}`))),
      field("checkin_zones", {}),
      field("description", {}),
      el("button", { type: "submit" }, t("lv_save")), status);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = form.elements;
      const body = {
        rank: Number(f.rank.value), title_zh: f.title_zh.value, title_en: f.title_en.value,
        description: f.description.value, capacity_factor: Number(f.capacity_factor.value),
        bar_visitors: f.bar_visitors.checked, require_temperature: f.require_temperature.checked,
        labs_named_only: f.labs_named_only.checked, trips_need_approval: f.trips_need_approval.checked,
        checkin_zones: f.checkin_zones.value.split(",").map((z) => z.trim()).filter(Boolean),
      };
      const response = await CG.api(`/api/levels/definitions/${encodeURIComponent(f.name.value)}`, { method: "PUT", body: JSON.stringify(body) });
      status.textContent = response.ok ? t("lv_saved") : `${t("lv_failed")}: ${await CG.errorText(response)}`;
      status.className = response.ok ? "status notice" : "status error";
      if (response.ok) await refresh();
    });
    return form;
  }

  function fillDefinition(d) {
    const form = section.querySelector("form.define-level");
    if (!form) return;
    const f = form.elements;
    for (const key of ["name", "title_zh", "title_en", "rank", "capacity_factor", "description"]) f[key].value = d[key];
    for (const key of ["bar_visitors", "require_temperature", "labs_named_only", "trips_need_approval"]) f[key].checked = d[key];
    f.checkin_zones.value = (d.checkin_zones || []).join(", ");
  }

  function definitionsTable() {
    const admin = can("write_roster");
    return el("table", { class: "definitions" },
      el("thead", {}, el("tr", {}, ...["lv_name", "lv_level", "lv_rules", "lv_description", ""].map((k) => el("th", {}, k ? t(k) : "")))),
      el("tbody", {}, ...current.definitions.map((d) => el("tr", { dataset: { level: d.name } },
        el("td", {}, d.name), el("td", {}, title(d.name)), el("td", {}, rulesText(d)),
        ((desc) => el("td", { class: "description", title: desc.original }, desc.text))(describe(d)),
        el("td", {}, admin ? el("button", { type: "button", onclick: () => fillDefinition(d) }, "✎") : "")))));
  }

  async function loadHistory() {
    const box = section && section.querySelector(".history");
    if (!box) return;
    const response = await CG.api("/api/levels/history?limit=50");
    if (!response.ok) return;
    const rows = (await response.json()).map((h) => el("tr", {},
      el("td", {}, CG.fmtTime(h.changed_at)), el("td", {}, h.zone_id ? zoneName(h.zone_id) : t("lv_campus")),
      el("td", {}, title(h.from_level)), el("td", {}, title(h.to_level)), el("td", {}, h.changed_by), el("td", {}, h.note)));
    box.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, ...["lv_when", "lv_scope", "lv_from", "lv_to", "lv_who", "lv_note"].map((k) => el("th", {}, t(k))))),
      el("tbody", {}, ...rows)));
  }

  function renderPage() {
    if (!section || !current) return;
    section.replaceChildren(
      el("h2", {}, t("lv_title")),
      el("h3", {}, t("lv_in_force")), inForce(),
      can("set_response_level") ? setForm() : null,
      el("h3", {}, t("lv_history")), el("div", { class: "history" }),
      el("h3", {}, t("lv_definitions")), definitionsTable(),
      can("write_roster") ? definitionForm() : null);
    loadHistory();
  }

  CG.registerPage({
    id: "levels", title: { zh: "防控等级", en: "Response levels" }, i18n,
    render(target) { section = target; },
    async show() { await refresh(); renderPage(); },
  });
  CG.onLanguage(() => { renderBanner(); if (section && !section.hidden) renderPage(); });
})();
