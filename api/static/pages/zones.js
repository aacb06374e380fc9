"use strict";
// Zones page: occupancy per zone (capacity bars, mode, levels in force) and muster lists.
(() => {
  const CG = window.CG;
  const { el, t } = CG;
  const REFRESH_MS = 10000;
  let section = null;
  let timer = null;
  let mustered = null; // the zone whose muster list is open

  const i18n = {
    zh: {
      zones_title: "区域在场", zones_zone: "区域", zones_kind: "类型", zones_inside: "在场人数",
      zones_capacity: "容量", zones_mode: "满员处理", zones_levels: "防控等级", zones_gathering: "聚集阈值",
      zones_mode_enforce: "拒绝进入", zones_mode_alert: "仅告警", zones_muster: "在场名单",
      zones_csv: "下载 CSV", zones_person: "人员", zones_name: "姓名", zones_org: "单位",
      zones_since: "进入时间", zones_door: "进入门", zones_none: "无人在场", zones_full: "已满",
      zones_minutes: "分钟", zones_close: "关闭", zones_refresh: "刷新",
      zones_scaled: "（原 {0}）", zones_failed: "无法加载", zones_print: "打印名单", zones_as_of: "截至 {0}",
      zones_total: "合计", zones_people: "{0} 人", zones_unknown: "（已不在名册）",
      zones_k_dormitory: "宿舍", zones_k_lab: "实验室", zones_k_office: "办公室", zones_k_teaching: "教学楼",
      zones_k_gate: "校门", zones_k_other: "其他",
    },
    en: {
      zones_title: "Zone occupancy", zones_zone: "Zone", zones_kind: "Kind", zones_inside: "Inside",
      zones_capacity: "Capacity", zones_mode: "At capacity", zones_levels: "Levels", zones_gathering: "Gathering at",
      zones_mode_enforce: "deny", zones_mode_alert: "alert only", zones_muster: "Muster list",
      zones_csv: "Download CSV", zones_person: "Person", zones_name: "Name", zones_org: "Org unit",
      zones_since: "Since", zones_door: "Entered by", zones_none: "Nobody inside", zones_full: "full",
      zones_minutes: "min", zones_close: "Close", zones_refresh: "Refresh",
      zones_scaled: " (of {0})", zones_failed: "Could not load", zones_print: "Print list", zones_as_of: "as of {0}",
      zones_total: "Total", zones_people: "{0} people", zones_unknown: "(no longer on the roster)",
      zones_k_dormitory: "dormitory", zones_k_lab: "lab", zones_k_office: "office", zones_k_teaching: "teaching",
      zones_k_gate: "gate", zones_k_other: "other",
    },
  };

  const I18N_HAS = (key) => key in i18n.en;
  // Level names as the levels page shows them (title_zh / title_en), the name if unknown.
  let levelTitles = {};
  const levelTitle = (name) => {
    const d = levelTitles[name];
    return d ? (CG.state.lang === "zh" ? d.title_zh : d.title_en) : name;
  };
  async function loadLevelTitles() {
    const response = await CG.api("/api/levels").catch(() => null);
    if (!response || !response.ok) return;
    levelTitles = Object.fromEntries(((await response.json()).definitions || []).map((d) => [d.name, d]));
  }

  function capacityCell(z) {
    if (z.effective_capacity === null || z.effective_capacity === undefined) return el("td", {}, "—");
    const scaled = z.effective_capacity !== z.capacity ? t("zones_scaled").replace("{0}", z.capacity) : "";
    const meter = el("meter", {
      min: 0, max: Math.max(z.effective_capacity, 1), value: Math.min(z.inside, Math.max(z.effective_capacity, 1)),
      low: Math.floor(z.effective_capacity * 0.7), high: Math.floor(z.effective_capacity * 0.9),
      optimum: 0, class: "capacity-bar",
    });
    return el("td", { class: "capacity" }, meter, ` ${z.inside}/${z.effective_capacity}${scaled}`,
      z.full ? el("strong", { class: "error" }, ` ${t("zones_full")}`) : null);
  }

  // Each cell says what it is: on a phone the table is a list of cards (console.css).
  const labelled = (cells, keys) => { cells.forEach((c, i) => { if (keys[i]) c.dataset.label = t(keys[i]); }); return cells; };
  const ZONE_KEYS = ["zones_zone", "zones_kind", "zones_inside", "zones_capacity", "zones_mode", "zones_levels", "zones_gathering", ""];
  const MUSTER_KEYS = ["zones_person", "zones_name", "zones_org", "zones_since", "zones_door"];

  function row(z) {
    const gathering = z.gathering_threshold ? `≥ ${z.gathering_threshold} / ${z.gathering_minutes} ${t("zones_minutes")}` : "—";
    return el("tr", { dataset: { zone: z.zone_id }, class: z.full ? "full" : "" }, ...labelled([
      CG.nameCell(z.name, z.zone_id, "zone"),
      el("td", {}, I18N_HAS(`zones_k_${z.kind}`) ? t(`zones_k_${z.kind}`) : z.kind),
      el("td", { class: "inside" }, String(z.inside)),
      capacityCell(z),
      el("td", { class: "mode" }, t(`zones_mode_${z.capacity_mode}`)),
      el("td", {}, (z.levels || []).map(levelTitle).join(", ") || "—"),
      el("td", { class: z.gathering ? "error" : "" }, gathering),
      el("td", {}, el("button", { type: "button", class: "do-muster", onclick: async () => {
        await openMuster(z);
        section.querySelector(".muster").scrollIntoView({ block: "start" });  // below the zones on a phone
      } }, t("zones_muster")))],
    ZONE_KEYS));
  }

  async function load() {
    if (!section) return;
    if (!Object.keys(levelTitles).length) await loadLevelTitles();
    const response = await CG.api("/api/occupancy");
    if (!response.ok) { section.querySelector("table.occupancy").replaceChildren(
      el("caption", { class: "error" }, `${t("zones_failed")} (${response.status})`)); return; }
    const zones = await response.json();
    const table = section.querySelector("table.occupancy");
    table.classList.add("cards");
    table.replaceChildren(
      el("thead", {}, el("tr", {}, ...["zones_zone", "zones_kind", "zones_inside", "zones_capacity", "zones_mode",
        "zones_levels", "zones_gathering", ""].map((k) => el("th", {}, k ? t(k) : "")))),
      el("tbody", {}, ...zones.map(row)));
    if (mustered) {
      const fresh = zones.find((z) => z.zone_id === mustered.zone_id);
      if (fresh) await openMuster(fresh);
    }
  }

  async function openMuster(zone) {
    mustered = zone;
    const box = section.querySelector(".muster");
    const path = `/api/zones/${encodeURIComponent(zone.zone_id)}/muster`;
    const response = await CG.api(path);
    if (!response.ok) { box.replaceChildren(el("p", { class: "error" }, `${t("zones_failed")} (${response.status})`)); return; }
    const people = await response.json();
    const asOf = new Date();
    const head = el("tr", {}, ...MUSTER_KEYS.map((k) => el("th", {}, t(k))));
    const rows = people.map((p) => el("tr", { dataset: { person: p.person_id } }, ...labelled([
      el("td", { class: "person-id" }, p.person_id), el("td", { class: "person-name" }, p.name || t("zones_unknown")),
      CG.nameCell(p.org_unit_name, p.org_unit_id, "org"),
      el("td", { class: "since", title: p.since || "" }, CG.fmtWhen(p.since)), CG.nameCell(p.door_name, p.door_id, "door")],
    MUSTER_KEYS)));
    // One source for every count shown: the rows of this list.
    const count = people.length;
    section.classList.add("has-muster");
    box.replaceChildren(
      el("h3", { class: "muster-heading", dataset: { count: String(count) } },
        `${t("zones_muster")}: ${zone.name || zone.zone_id} (${count})`),
      el("p", { class: "muster-meta" }, t("zones_as_of").replace("{0}", asOf.toLocaleString(CG.state.lang === "zh" ? "zh-CN" : "en-GB")),
        " · ", t("zones_people").replace("{0}", count)),
      el("p", { class: "no-print" },
        el("a", { href: `${path}?format=csv`, download: "", class: "muster-csv" }, t("zones_csv")), " ",
        el("button", { type: "button", class: "do-print", onclick: () => window.print() }, t("zones_print")), " ",
        el("button", { type: "button", class: "do-close", onclick: () => { mustered = null; section.classList.remove("has-muster"); box.replaceChildren(); } }, t("zones_close"))),
      count ? el("table", { class: "muster-list cards" }, el("thead", {}, head), el("tbody", {}, ...rows),
        el("tfoot", {}, el("tr", { class: "muster-total" }, el("td", { colspan: "5" }, `${t("zones_total")}: ${t("zones_people").replace("{0}", count)}`))))
        : el("p", { class: "muted" }, t("zones_none")));
  }

  function render(target) {
    section = target;
    section.append(
      el("h2", {}, t("zones_title"), " ",
        el("button", { type: "button", class: "do-refresh", onclick: load }, t("zones_refresh"))),
      el("table", { class: "occupancy" }),
      el("div", { class: "muster" }));
  }

  function show() {
    load();
    clearInterval(timer);
    timer = setInterval(() => { if (section && !section.hidden) load(); }, REFRESH_MS);
  }

  CG.registerPage({ id: "zones", permission: "read_muster", title: { zh: "区域在场", en: "Occupancy" }, i18n, render, show });
  CG.onLanguage(() => {
    if (!section) return;
    section.querySelector("h2").firstChild.textContent = t("zones_title");
    section.querySelector(".do-refresh").textContent = t("zones_refresh");
    if (!section.hidden) load();
  });
})();
