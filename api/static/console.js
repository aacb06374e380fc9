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
    sev: { critical: "紧急", high: "高", medium: "中", low: "低" },
    st: { open: "未处理", acknowledged: "已确认", resolved: "已处理" },
    kinds: { outsider: "外来人员", unauthorized: "无权限", isolation_breach: "隔离人员外出", fever: "发热",
      temperature_invalid: "体温异常读数", zone_full: "区域满员", tailgating: "尾随", door_forced: "强行开门",
      door_held_open: "门长时间未关", device_offline: "设备离线", unknown_device: "未知设备", card_revoked: "卡已注销",
      gathering: "人员聚集", database_stall: "数据库无响应", clock_skew: "设备时钟偏差" },
    reasons: { unknown_card: "未知卡", card_revoked: "卡已注销", health_hold: "健康管控", not_authorized: "无权限",
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
    sev: { critical: "critical", high: "high", medium: "medium", low: "low" },
    st: { open: "open", acknowledged: "acknowledged", resolved: "resolved" },
    kinds: { outsider: "outsider", unauthorized: "unauthorized", isolation_breach: "isolation breach", fever: "fever",
      temperature_invalid: "invalid temperature reading", zone_full: "zone full", tailgating: "tailgating",
      door_forced: "door forced", door_held_open: "door held open", device_offline: "device offline",
      unknown_device: "unknown device", card_revoked: "card revoked", gathering: "gathering",
      database_stall: "database not answering", clock_skew: "device clock skew" },
    reasons: { unknown_card: "unknown card", card_revoked: "card revoked", health_hold: "health hold",
      not_authorized: "not authorized", temperature_required: "temperature required",
      temperature_invalid: "invalid temperature reading", fever: "fever", zone_full: "zone full" },
    action_failed: "Not saved",
  },
};

const state = { lang: localStorage.getItem("cg-lang") || "zh", me: null, csrf: null, alerts: new Map(),
  cursor: null, ws: null, zones: [], audio: null };

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
const fmtTime = (ts) => (ts ? new Date(ts).toLocaleString(locale()) : "");
const fmtDate = (ts) => (ts ? new Date(ts).toLocaleDateString(locale()) : "");

window.CG = {
  api, errorText, may, t, tk, state, el, fmtTime, fmtDate, registerPage,
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
  state.alerts.clear(); state.cursor = null; showLogin();
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

function renderAlerts() {
  const body = $("#alerts tbody"); if (!body) return;
  const zone = $("#filter-zone").value, kind = $("#filter-kind").value, openOnly = $("#filter-open").checked;
  const rows = [...state.alerts.values()]
    .filter((a) => (!zone || a.zone === zone) && (!kind || a.kind === kind) && (!openOnly || a.status !== "resolved"))
    .sort((a, b) => (a.ts < b.ts ? 1 : -1)).slice(0, 300);
  body.replaceChildren(...rows.map(alertRow));
  // Flash a new alert once: later re-renders (every new alert) must not flash it again.
  for (const a of rows) a.fresh = false;
}

function alertRow(a) {
  const tr = document.createElement("tr");
  tr.className = `sev-${a.severity} status-${a.status}` + (a.fresh ? " fresh" : "");
  tr.dataset.alertId = a.id; tr.dataset.status = a.status;
  const cells = [new Date(a.ts).toLocaleTimeString(state.lang === "zh" ? "zh-CN" : "en-GB"),
    tk("sev", a.severity), tk("kinds", a.kind), a.zone || "", a.door || a.device || "", a.person || "", tk("st", a.status)];
  for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.append(td); }
  tr.children[6].className = "status";
  const actions = document.createElement("td"); actions.className = "actions";
  const canAct = may("act_on_alerts");
  if (canAct && a.status === "open") actions.append(actionButton(a, "acknowledge"));
  if (canAct && a.status !== "resolved") actions.append(actionButton(a, "resolve"));
  tr.append(actions);
  return tr;
}

function actionButton(a, action) {
  const b = document.createElement("button"); b.type = "button"; b.textContent = t(action);
  b.className = `do-${action}`;
  b.addEventListener("click", () => askNote(a, action));
  return b;
}

function askNote(a, action) {
  const dialog = $("#note-dialog");
  $("#note-title").textContent = `${t(action)}: ${tk("kinds", a.kind)} ${a.door || ""}`;
  $("#note-text").value = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok") return;
    const response = await api(`/api/alerts/${encodeURIComponent(a.id)}/${action}`,
      { method: "POST", body: JSON.stringify({ note: $("#note-text").value }) });
    if (response.ok) { const updated = await response.json(); state.alerts.set(updated.id, updated); renderAlerts(); alertsMessage(""); return; }
    // Someone else may have acted on it first: say so and show the alert as it is now.
    alertsMessage(`${t("action_failed")}: ${await errorText(response)}`);
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
    li.textContent = `${d.id} · ${d.door_id}`;
    const s = document.createElement("span");
    s.textContent = d.online ? t("online") : `${t("offline")}${d.last_seen ? " " + new Date(d.last_seen).toLocaleTimeString() : ""}`;
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

function ensureAudio() {
  if (!state.audio && window.AudioContext) state.audio = new AudioContext();
  if (state.audio && state.audio.state === "suspended") state.audio.resume();
}

function beep(severity) {
  if (!state.audio) return;
  const ctx = state.audio, osc = ctx.createOscillator(), gain = ctx.createGain();
  osc.frequency.value = severity === "critical" ? 1046 : 784; osc.type = "square";
  gain.gain.setValueAtTime(0.15, ctx.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.4);
  osc.connect(gain).connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + 0.4);
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
  applyLanguage();
  setInterval(() => { if (state.me) { loadCounts(); loadDevices(); } }, 10000);
  try {
    const response = await fetch("/api/auth/me", { credentials: "same-origin" });
    if (response.ok) await showConsole(await response.json()); else showLogin();
  } catch { showLogin(); }
});
