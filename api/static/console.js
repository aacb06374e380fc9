"use strict";
// CampusGate guard console: plain JavaScript, no build step.

const I18N = {
  zh: {
    title: "CampusGate 门禁值班台", login: "登录", logout: "退出", name: "用户名", password: "密码",
    alerts: "告警", all_zones: "全部区域", all_kinds: "全部类型", unresolved_only: "仅未处理",
    time: "时间", severity: "级别", kind: "类型", zone: "区域", door: "门", person: "人员",
    status: "状态", today: "今日统计", devices: "门禁设备", lookup: "人员查询",
    lookup_hint: "姓名、学号/工号或卡号", search: "查询", note: "备注", cancel: "取消", confirm: "确定",
    acknowledge: "确认", resolve: "处理完毕", admitted: "放行", denied: "拒绝", fevers: "发热",
    online: "在线", offline: "离线", health_hold: "健康管控", login_failed: "用户名或密码错误",
    too_many: "失败次数过多，请稍后再试", live: "实时连接", tab_alerts: "告警值班", action_failed: "未保存",
    sound_on: "声音：开", sound_off: "声音已关闭，点击开启", sound_on_hint: "点击关闭告警声音",
    sound_off_hint: "浏览器刷新后需点击一次才能播放声音", theme: "主题", theme_auto: "跟随系统", theme_light: "浅色",
    theme_dark: "深色", select: "选择", select_all: "全选", expand: "展开", collapse: "收起",
    selected: "已选 {0} 条", ack_selected: "确认所选", resolve_selected: "处理所选", clear_selection: "取消选择",
    bulk_done: "已保存 {0}/{1} 条", bulk_title: "{0} {1} 条告警",
    sev: { critical: "紧急", high: "高", medium: "中", low: "低" },
    st: { open: "未处理", acknowledged: "已确认", resolved: "已处理" },
    kinds: { outsider: "外来人员", unauthorized: "无权限", isolation_breach: "隔离人员外出", fever: "发热",
      temperature_invalid: "体温异常读数", zone_full: "区域满员", tailgating: "尾随", door_forced: "强行开门",
      door_held_open: "门长时间未关", device_offline: "设备离线", unknown_device: "未知设备", card_revoked: "卡已注销",
      gathering: "人员聚集", database_stall: "数据库无响应", clock_skew: "设备时钟偏差", offline_mismatch: "离线放行不一致", visitor_overstay: "访客逾时未离开" },
    reasons: { ok: "放行", unknown_card: "未知卡", card_revoked: "卡已注销", health_hold: "健康管控", checkin_required: "未打卡", not_authorized: "无权限",
      temperature_required: "需测体温", temperature_invalid: "体温读数无效", fever: "发热", zone_full: "满员" },
  },
  en: {
    title: "CampusGate guard console", login: "Log in", logout: "Log out", name: "Name", password: "Password",
    alerts: "Alerts", all_zones: "All zones", all_kinds: "All kinds", unresolved_only: "Unresolved only",
    time: "Time", severity: "Severity", kind: "Kind", zone: "Zone", door: "Door", person: "Person",
    status: "Status", today: "Today", devices: "Door devices", lookup: "Person lookup",
    lookup_hint: "name, id or card", search: "Search", note: "Note", cancel: "Cancel", confirm: "OK",
    acknowledge: "Acknowledge", resolve: "Resolve", admitted: "Admitted", denied: "Denied", fevers: "Fevers",
    online: "online", offline: "offline", health_hold: "health hold", login_failed: "Wrong name or password",
    too_many: "Too many failed logins; try again later", live: "live", tab_alerts: "Alerts",
    sound_on: "Sound: on", sound_off: "Sound off: click to enable", sound_on_hint: "Click to mute alert sounds",
    sound_off_hint: "After a reload the browser needs one click before it plays sound", theme: "Theme",
    theme_auto: "System", theme_light: "Light", theme_dark: "Dark", select: "Select", select_all: "Select all",
    expand: "Show all", collapse: "Hide", selected: "{0} selected", ack_selected: "Acknowledge selected",
    resolve_selected: "Resolve selected", clear_selection: "Clear selection", bulk_done: "Saved {0} of {1}",
    bulk_title: "{0} {1} alerts",
    sev: { critical: "critical", high: "high", medium: "medium", low: "low" },
    st: { open: "open", acknowledged: "acknowledged", resolved: "resolved" },
    kinds: { outsider: "outsider", unauthorized: "unauthorized", isolation_breach: "isolation breach", fever: "fever",
      temperature_invalid: "invalid temperature reading", zone_full: "zone full", tailgating: "tailgating",
      door_forced: "door forced", door_held_open: "door held open", device_offline: "device offline",
      unknown_device: "unknown device", card_revoked: "card revoked", gathering: "gathering",
      database_stall: "database not answering", clock_skew: "device clock skew", offline_mismatch: "offline admit mismatch", visitor_overstay: "visitor overstayed pass" },
    reasons: { ok: "admitted", unknown_card: "unknown card", card_revoked: "card revoked", health_hold: "health hold",
      checkin_required: "check-in required", not_authorized: "not authorized", temperature_required: "temperature required",
      temperature_invalid: "invalid temperature reading", fever: "fever", zone_full: "zone full" },
    action_failed: "Not saved",
  },
};

const state = { lang: localStorage.getItem("cg-lang") || "zh", me: null, csrf: null, alerts: new Map(),
  cursor: null, ws: null, zones: [], audio: null, expanded: new Set(), selected: new Set() };

// Theme before the first paint: "auto" follows the system setting (prefers-color-scheme in CSS).
const THEMES = ["auto", "light", "dark"];
function applyTheme(choice) {
  const theme = THEMES.includes(choice) ? choice : "auto";
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  return theme;
}
applyTheme(localStorage.getItem("cg-theme"));

const $ = (sel) => document.querySelector(sel);
// Pages beyond the alerts view, registered by /static/pages/*.js through CG.registerPage.
const pages = new Map();
const languageListeners = [];
const t = (key) => I18N[state.lang][key] ?? I18N.en[key] ?? key;
const tk = (group, key) => (I18N[state.lang][group] || {})[key] || key;

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  $("#lang").textContent = state.lang === "zh" ? "English" : "中文";
  for (const option of $("#theme").options) option.textContent = t(`theme_${option.value}`);
  renderSound();
  fillKindFilter();
  renderAlerts();
  if (state.me) { loadCounts(); loadDevices(); renderTabs(); }
  for (const fn of languageListeners) { try { fn(state.lang); } catch (e) { console.error(e); } }
}

async function api(path, options = {}) {
  // JSON unless the body is a form (a file upload): the browser then sets the multipart type.
  const json = !(options.body instanceof FormData);
  const headers = { ...(json ? { "Content-Type": "application/json" } : {}), ...(options.headers || {}) };
  if (options.method && options.method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (response.status === 401 && !path.startsWith("/api/auth/login")) { showLogin(); throw new Error("401"); }
  return response;
}

// The server's words for a refused request: a 4xx detail string, or the messages of a 422
// list; the status code when the body says nothing.
async function errorText(response) {
  const body = await response.json().catch(() => null);
  const detail = body && body.detail;
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length) return detail.map((d) => (d && d.msg) || JSON.stringify(d)).join("; ");
  return String(response.status);
}

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : null;
}

function showLogin() {
  $("#login-view").hidden = false; $("#console-view").hidden = true; $("#logout").hidden = true;
  $("#tabs").hidden = true;
  for (const page of pages.values()) if (page.section) page.section.hidden = true;
  $("#who").textContent = "";
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
}

async function showConsole(me) {
  state.me = me; state.csrf = me.csrf_token || cookie("cg_csrf");
  $("#login-view").hidden = true; $("#console-view").hidden = false; $("#logout").hidden = false;
  $("#who").textContent = `${me.name} (${me.role})`;
  renderTabs();
  showPage(location.hash.slice(1));
  await Promise.allSettled([loadZones(), loadAlerts(), loadCounts(), loadDevices()]);
  connectStream();
}

// -- pages ------------------------------------------------------------------

function mayOpen(def) {
  if (!def.permission) return true;
  const need = Array.isArray(def.permission) ? def.permission : [def.permission];
  const have = (state.me && state.me.permissions) || [];
  return need.some((p) => have.includes(p));
}
const may = (permission) => mayOpen({ permission });

function registerPage(def) {
  if (!def || !def.id || typeof def.render !== "function") throw new Error("registerPage needs id and render");
  for (const lang of ["zh", "en"]) Object.assign(I18N[lang], (def.i18n || {})[lang] || {});
  pages.set(def.id, { def, section: null });
  if (state.me) { renderTabs(); if (location.hash.slice(1) === def.id) showPage(def.id); }
}

function renderTabs() {
  const nav = $("#tabs"); if (!nav || !state.me) return;
  const current = state.page || "alerts";
  const link = (id, title) => el("a", { href: `#${id}`, id: `tab-${id}`, class: id === current ? "active" : "" }, title);
  const tabs = [link("alerts", t("tab_alerts"))];
  for (const { def } of pages.values()) if (mayOpen(def)) tabs.push(link(def.id, (def.title || {})[state.lang] || def.id));
  nav.replaceChildren(...tabs);
  nav.hidden = false;
}

function showPage(id) {
  if (!state.me) return;
  const entry = pages.get(id);
  const target = entry && mayOpen(entry.def) ? id : "alerts";
  state.page = target;
  $("#console-view").hidden = target !== "alerts";
  for (const [pid, page] of pages) {
    if (pid !== target) { if (page.section) page.section.hidden = true; continue; }
    if (!page.section) {
      page.section = el("section", { id: `page-${pid}`, class: "page" });
      $("#pages").append(page.section);
      try { page.def.render(page.section); } catch (e) { console.error(e); }
    }
    page.section.hidden = false;
    if (page.def.show) { try { page.def.show(page.section); } catch (e) { console.error(e); } }
  }
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.id === `tab-${target}`);
}

// el("button", {class: "x", onclick: fn, dataset: {id: 1}}, "text", child): DOM without innerHTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const locale = () => (state.lang === "zh" ? "zh-CN" : "en-GB");
const fmtDate = (ts) => (ts ? new Date(ts).toLocaleDateString(locale()) : "");
// A night shift crosses midnight: the time alone for today, the date with it for any other day
// (every page's times, through CG.fmtTime).
function fmtWhen(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString(locale()) : d.toLocaleString(locale());
}
const fmtTime = fmtWhen;
// A cell that shows a name and keeps the id on hover (the id alone when no name is known).
function nameCell(name, id, cls) {
  return el("td", { class: cls, title: name && id ? id : null, dataset: id ? { id } : {} }, name || id || "");
}

window.CG = {
  api, errorText, may, t, tk, state, el, fmtTime, fmtDate, fmtWhen, nameCell, registerPage,
  onLanguage: (fn) => languageListeners.push(fn),
  showPage: (id) => { location.hash = id; },
};

async function login(event) {
  event.preventDefault();
  const body = JSON.stringify({ name: $("#login-name").value, password: $("#login-password").value });
  const response = await api("/api/auth/login", { method: "POST", body });
  if (!response.ok) { $("#login-error").textContent = response.status === 429 ? t("too_many") : t("login_failed"); return; }
  $("#login-error").textContent = ""; $("#login-password").value = "";
  ensureAudio();
  await showConsole(await response.json());
}

async function logout() {
  await api("/api/auth/logout", { method: "POST" }).catch(() => {});
  state.alerts.clear(); state.selected.clear(); state.cursor = null; showLogin();
}

async function loadZones() {
  const response = await api("/api/zones");
  if (!response.ok) return;
  state.zones = await response.json();
  const select = $("#filter-zone");
  select.length = 1;
  for (const z of state.zones) select.add(new Option(z.name || z.id, z.id));
}

function fillKindFilter() {
  const select = $("#filter-kind"); const chosen = select.value;
  select.length = 1;
  for (const k of Object.keys(I18N.zh.kinds)) select.add(new Option(tk("kinds", k), k));
  select.value = chosen;
}

async function loadAlerts() {
  const response = await api("/api/alerts?limit=200");
  if (!response.ok) return;
  // The stream resumes from the cursor taken before this list, so nothing falls between them.
  const cursor = response.headers.get("X-Alert-Cursor");
  if (cursor !== null && state.cursor === null) state.cursor = Number(cursor);
  for (const a of await response.json()) state.alerts.set(a.id, a);
  renderAlerts();
}

// Alerts of one kind about the same person (or door, device, zone when no person) in one
// status, each within GROUP_MINUTES of the next, are one row with a count.
const GROUP_MINUTES = 10;
const subjectOf = (a) => (a.person ? `p:${a.person}` : a.door ? `d:${a.door}` : a.device ? `v:${a.device}` : `z:${a.zone || ""}`);

function groupAlerts(newestFirst) {
  const groups = []; const latest = new Map();
  for (const a of newestFirst) {
    const key = `${a.kind}|${a.status}|${subjectOf(a)}`;
    const g = latest.get(key);
    if (g && Date.parse(g.alerts[g.alerts.length - 1].ts) - Date.parse(a.ts) <= GROUP_MINUTES * 60000) { g.alerts.push(a); continue; }
    const fresh = { key, alerts: [a] }; groups.push(fresh); latest.set(key, fresh);
  }
  // Named by the oldest member: stable while newer alerts join the group.
  for (const g of groups) g.id = `${g.key}|${g.alerts[g.alerts.length - 1].id}`;
  return groups;
}

function visibleAlerts() {
  const zone = $("#filter-zone").value, kind = $("#filter-kind").value, openOnly = $("#filter-open").checked;
  return [...state.alerts.values()]
    .filter((a) => (!zone || a.zone === zone) && (!kind || a.kind === kind) && (!openOnly || a.status !== "resolved"))
    .sort((a, b) => (a.ts < b.ts ? 1 : -1)).slice(0, 300);
}

function renderAlerts() {
  const body = $("#alerts tbody"); if (!body) return;
  const rows = visibleAlerts();
  const shown = new Set(rows.map((a) => a.id));
  for (const id of [...state.selected]) if (!shown.has(id)) state.selected.delete(id);
  const groups = groupAlerts(rows);
  const trs = [];
  for (const g of groups) {
    trs.push(alertRow(g.alerts[0], g));
    if (g.alerts.length > 1 && state.expanded.has(g.id)) for (const a of g.alerts) trs.push(alertRow(a, null));
  }
  body.replaceChildren(...trs);
  // Flash a new alert once: later re-renders (every new alert) must not flash it again.
  for (const a of rows) a.fresh = false;
  const all = $("#select-all");
  all.checked = rows.length > 0 && rows.every((a) => state.selected.has(a.id));
  all.indeterminate = !all.checked && rows.some((a) => state.selected.has(a.id));
  renderBulk();
}

// A group's row (group given: its newest alert, a count, acting on all) or a member's row.
function alertRow(a, group) {
  const ids = group ? group.alerts.map((m) => m.id) : [a.id];
  const count = ids.length;
  const fresh = group ? group.alerts.some((m) => m.fresh) : a.fresh;
  const tr = el("tr", {
    class: `sev-${a.severity} status-${a.status}` + (fresh ? " fresh" : "") + (group ? "" : " member"),
    dataset: group ? { alertId: a.id, status: a.status, count: String(count) } : { memberId: a.id, status: a.status },
  });
  const box = el("input", { type: "checkbox", class: "pick", "aria-label": t("select") });
  box.checked = ids.every((id) => state.selected.has(id));
  box.indeterminate = !box.checked && ids.some((id) => state.selected.has(id));
  box.addEventListener("change", () => {
    for (const id of ids) { if (box.checked) state.selected.add(id); else state.selected.delete(id); }
    renderAlerts();
  });
  const kind = el("td", { class: "kind", "data-label": t("kind") }, tk("kinds", a.kind));
  if (group && count > 1) {
    const open = state.expanded.has(group.id);
    kind.append(" ", el("span", { class: "count", title: `${count}` }, `×${count}`), " ",
      el("button", { type: "button", class: "expand link", "aria-expanded": String(open), onclick: () => {
        if (open) state.expanded.delete(group.id); else state.expanded.add(group.id);
        renderAlerts();
      } }, open ? t("collapse") : t("expand")));
  }
  const oldest = group ? group.alerts[count - 1] : a;
  const when = count > 1 ? `${fmtWhen(oldest.ts)} – ${fmtWhen(a.ts)}` : fmtWhen(a.ts);
  const door = a.door ? [a.door_name, a.door] : [null, a.device];
  tr.append(
    el("td", { class: "select" }, box),
    el("td", { class: "time", title: new Date(a.ts).toISOString(), "data-label": t("time") }, when),
    el("td", { class: "sev", "data-label": t("severity") }, tk("sev", a.severity)),
    kind,
    nameCell(a.zone_name, a.zone, "zone"),
    nameCell(door[0], door[1], "door"),
    nameCell(a.person_name, a.person, "person"),
    el("td", { class: "status", "data-label": t("status") }, tk("st", a.status)));
  for (const [i, key] of [[4, "zone"], [5, "door"], [6, "person"]]) tr.children[i].dataset.label = t(key);
  const actions = el("td", { class: "actions" });
  const canAct = may("act_on_alerts");
  if (canAct && a.status === "open") actions.append(actionButton(ids, a, "acknowledge"));
  if (canAct && a.status !== "resolved") actions.append(actionButton(ids, a, "resolve"));
  tr.append(actions);
  return tr;
}

function actionButton(ids, a, action) {
  return el("button", { type: "button", class: `do-${action}`, onclick: () => {
    const subject = a.person_name || a.door_name || a.door || a.device || "";
    const title = ids.length > 1 ? t("bulk_title").replace("{0}", t(action)).replace("{1}", ids.length)
      : `${t(action)}: ${tk("kinds", a.kind)} ${subject}`;
    askNote(ids, action, title);
  } }, t(action));
}

function renderBulk() {
  const bar = $("#bulk"); if (!bar) return;
  const canAct = may("act_on_alerts");
  const chosen = [...state.selected].map((id) => state.alerts.get(id)).filter(Boolean);
  bar.hidden = !chosen.length;
  $("#bulk-count").textContent = t("selected").replace("{0}", chosen.length);
  $("#bulk-acknowledge").hidden = !canAct || !chosen.some((a) => a.status === "open");
  $("#bulk-resolve").hidden = !canAct || !chosen.some((a) => a.status !== "resolved");
}

function bulkAct(action) {
  const ids = [...state.selected].filter((id) => {
    const a = state.alerts.get(id);
    return a && (action === "acknowledge" ? a.status === "open" : a.status !== "resolved");
  });
  if (ids.length) askNote(ids, action, t("bulk_title").replace("{0}", t(action)).replace("{1}", ids.length));
}

// One note for every alert chosen; each goes through its own (audited) endpoint.
function askNote(ids, action, title) {
  const dialog = $("#note-dialog");
  $("#note-title").textContent = title;
  $("#note-text").value = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok") return;
    const note = $("#note-text").value;
    const failures = [];
    for (const id of ids) {
      const response = await api(`/api/alerts/${encodeURIComponent(id)}/${action}`,
        { method: "POST", body: JSON.stringify({ note }) });
      if (response.ok) { const updated = await response.json(); state.alerts.set(updated.id, updated); state.selected.delete(id); }
      else failures.push(`${id}: ${await errorText(response)}`);
    }
    renderAlerts();
    if (!failures.length) { alertsMessage(""); return; }
    // Someone else may have acted on some first: say so and show the alerts as they are now.
    const done = t("bulk_done").replace("{0}", ids.length - failures.length).replace("{1}", ids.length);
    alertsMessage(`${t("action_failed")}: ${ids.length > 1 ? done + "; " : ""}${failures.join("; ")}`);
    await loadAlerts();
  };
  dialog.showModal();
}

function alertsMessage(text) {
  let box = $("#alerts-msg");
  if (!box) {
    box = document.createElement("p"); box.id = "alerts-msg"; box.className = "error"; box.setAttribute("role", "alert");
    $("#alerts-panel .filters").after(box);
  }
  box.textContent = text; box.hidden = !text;
}

// A console left open all night: keep the newest alerts, forget the oldest resolved ones first.
const MAX_ALERTS = 2000;
function pruneAlerts() {
  if (state.alerts.size <= MAX_ALERTS) return;
  const oldest = [...state.alerts.values()].sort((a, b) =>
    (a.status === "resolved") === (b.status === "resolved") ? (a.ts < b.ts ? -1 : 1) : a.status === "resolved" ? -1 : 1);
  for (const a of oldest.slice(0, state.alerts.size - MAX_ALERTS)) state.alerts.delete(a.id);
}

async function loadCounts() {
  const response = await api("/api/reports/today"); if (!response.ok) return;
  const c = await response.json();
  // fevers is null for a role that may not see health reasons (liaisons): not shown.
  const entries = [[t("admitted"), c.admitted], [t("denied"), c.denied],
    ...(c.fevers === null ? [] : [[t("fevers"), c.fevers]]),
    ...Object.entries(c.denied_by_reason).map(([r, n]) => ["· " + tk("reasons", r), n])];
  $("#counts").replaceChildren(...entries.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v; return [dt, dd];
  }));
}

async function loadDevices() {
  // Only roles that may read doors: no 403 every ten seconds for the others.
  if (!may("read_doors")) { $("#devices-panel").hidden = true; return; }
  const response = await api("/api/devices"); if (!response.ok) { $("#devices-panel").hidden = true; return; }
  $("#devices-panel").hidden = false;
  const devices = (await response.json()).sort((a, b) => (a.online === b.online ? a.id.localeCompare(b.id) : a.online ? 1 : -1));
  $("#devices").replaceChildren(...devices.map((d) => {
    const li = document.createElement("li"); li.className = d.online ? "online" : "offline";
    li.append(el("span", { class: "device-door", title: `${d.id} · ${d.door_id}` }, d.door_name || d.door_id,
      el("small", { class: "muted" }, ` ${d.id}`)));
    const s = document.createElement("span");
    s.textContent = d.online ? t("online") : `${t("offline")}${d.last_seen ? " " + fmtWhen(d.last_seen) : ""}`;
    li.append(s); return li;
  }));
}

async function lookup(event) {
  event.preventDefault();
  const q = $("#lookup-q").value.trim(); if (!q) return;
  const response = await api(`/api/people?limit=20&q=${encodeURIComponent(q)}`); if (!response.ok) return;
  const found = await response.json();
  $("#lookup-results").replaceChildren(...found.items.map((p) => {
    const li = document.createElement("li");
    li.textContent = `${p.name} · ${p.id} · ${p.kind} · ${p.org_unit_id || ""} · ${p.cards.join(", ")} `;
    if (p.health_hold) { const s = document.createElement("span"); s.className = "hold"; s.textContent = t("health_hold"); li.append(s); }
    return li;
  }));
}

// Sound: wanted unless the guard muted it (kept across reloads); playing needs a running
// AudioContext, which a browser starts only from a click after each reload.
const soundWanted = () => localStorage.getItem("cg-sound") !== "off";
const soundOn = () => soundWanted() && !!state.audio && state.audio.state === "running";

function renderSound() {
  const button = $("#sound"); if (!button) return;
  const on = soundOn();
  button.className = on ? "sound-on" : "sound-off";
  button.textContent = on ? t("sound_on") : t("sound_off");
  button.title = on ? t("sound_on_hint") : t("sound_off_hint");
  button.setAttribute("aria-pressed", String(on));
}

async function ensureAudio() {
  if (!soundWanted()) return;
  if (!state.audio && window.AudioContext) {
    state.audio = new AudioContext();
    state.audio.addEventListener("statechange", renderSound);
  }
  if (state.audio && state.audio.state === "suspended") await state.audio.resume().catch(() => {});
  renderSound();
}

async function toggleSound(event) {
  event.stopPropagation();  // not also the page-wide click that resumes sound
  if (soundOn()) { localStorage.setItem("cg-sound", "off"); renderSound(); return; }
  localStorage.setItem("cg-sound", "on");
  await ensureAudio();
  beep("test");
}

function beep(severity) {
  if (!soundOn()) return;
  const ctx = state.audio, osc = ctx.createOscillator(), gain = ctx.createGain();
  osc.frequency.value = severity === "critical" ? 1046 : severity === "test" ? 660 : 784; osc.type = "square";
  const length = severity === "test" ? 0.15 : 0.4;
  gain.gain.setValueAtTime(0.15, ctx.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + length);
  osc.connect(gain).connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + length);
}

function connectStream() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const since = state.cursor !== null ? `?since=${state.cursor}` : "";
  const ws = new WebSocket(`${scheme}://${location.host}/api/alerts/stream${since}`);
  state.ws = ws;
  ws.onopen = () => $("#live").classList.add("on");
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") { state.cursor = Math.max(state.cursor ?? 0, message.cursor); return; }
    if (message.type !== "alert") return;
    if (state.cursor !== null && message.cursor <= state.cursor && state.alerts.has(message.alert.id)) return;
    state.cursor = Math.max(state.cursor ?? 0, message.cursor);
    const a = message.alert; const isNew = !state.alerts.has(a.id);
    a.fresh = isNew; state.alerts.set(a.id, a); pruneAlerts();
    if (isNew && (a.severity === "critical" || a.severity === "high")) beep(a.severity);
    if (isNew && (a.kind === "device_offline" || a.kind === "unknown_device")) loadDevices();
    renderAlerts();
  };
  ws.onclose = () => {
    $("#live").classList.remove("on");
    if (state.me && state.ws === ws) setTimeout(connectStream, 2000);  // resumes from state.cursor
  };
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#lookup-form").addEventListener("submit", lookup);
  window.addEventListener("hashchange", () => showPage(location.hash.slice(1)));
  $("#lang").addEventListener("click", () => { state.lang = state.lang === "zh" ? "en" : "zh"; localStorage.setItem("cg-lang", state.lang); applyLanguage(); });
  for (const id of ["#filter-zone", "#filter-kind", "#filter-open"]) $(id).addEventListener("change", renderAlerts);
  document.addEventListener("click", ensureAudio);
  $("#sound").addEventListener("click", toggleSound);
  const theme = $("#theme");
  theme.value = applyTheme(localStorage.getItem("cg-theme"));
  theme.addEventListener("change", () => { localStorage.setItem("cg-theme", applyTheme(theme.value)); });
  $("#select-all").addEventListener("change", (event) => {
    for (const a of visibleAlerts()) { if (event.target.checked) state.selected.add(a.id); else state.selected.delete(a.id); }
    renderAlerts();
  });
  $("#bulk-acknowledge").addEventListener("click", () => bulkAct("acknowledge"));
  $("#bulk-resolve").addEventListener("click", () => bulkAct("resolve"));
  $("#bulk-clear").addEventListener("click", () => { state.selected.clear(); renderAlerts(); });
  applyLanguage();
  setInterval(() => { if (state.me) { loadCounts(); loadDevices(); } }, 10000);
  try {
    const response = await fetch("/api/auth/me", { credentials: "same-origin" });
    if (response.ok) await showConsole(await response.json()); else showLogin();
  } catch { showLogin(); }
});
