// The mobile page of students and staff: sign in (CAS or id + password), set a password
// from an invitation link, see one's own status, submit the daily check-in.
// No build step, no inline script (the CSP forbids it); Chinese first, like the console.
"use strict";

const I18N = {
  zh: {
    title: "校园通行", signin: "登录", signout: "退出登录", cas_signin: "统一身份认证登录",
    or_password: "或使用学工号和密码", person_id: "学号 / 工号", password: "密码",
    set_password: "设置密码", new_password: "新密码", confirm_password: "再次输入新密码",
    invite_hint: "请设置至少 {n} 位的密码，之后用学号/工号和此密码登录。",
    password_mismatch: "两次输入的密码不一致", password_short: "密码至少需要 {n} 位",
    password_set: "密码已设置，请登录。", invite_invalid: "邀请链接无效（已使用或已过期），请联系管理员重新发送。",
    my_status: "我的状态", checkin: "每日打卡", kind: "身份", unit: "单位", health: "健康状态", since: "开始时间",
    caretaker: "你的照看人", call: "拨打", k_student: "学生", k_staff: "教职工", k_visitor: "访客",
    st_clear: "正常", st_fever_watch: "发热观察", st_home_isolation: "居家隔离", st_close_contact: "密切接触",
    st_suspected: "疑似", st_confirmed: "确诊", st_recovered: "已康复",
    location: "当前所在", on_campus: "在校", off_campus: "不在校", dormitory: "宿舍", city: "所在城市",
    temperature: "体温 (°C)", symptoms: "症状（如有请勾选）", case_contact: "近 14 天接触过病例",
    travel_plans: "出行计划（如有）", submit: "提交", sy_fever: "发热", sy_cough: "咳嗽", sy_sore_throat: "咽痛",
    sy_fatigue: "乏力", sy_shortness_of_breath: "呼吸困难", sy_loss_of_taste_smell: "味觉或嗅觉减退",
    sy_diarrhea: "腹泻", checked_in: "今日已打卡", checkin_updated: "今日打卡已更新", submitted_at: "提交时间",
    hold_fever_watch: "体温偏高：已进入发热观察，请留在宿舍等待复测。", checkin_unavailable: "打卡功能暂未开放。",
    bad_temperature: "请填写 34–43 之间的体温", wrong_login: "学号/工号或密码错误", throttled: "尝试次数过多，请稍后再试",
    failed: "操作失败", offline: "无法连接服务器", expired: "登录已过期，请重新登录",
    cas_ticket: "统一身份认证未通过，请重试。", cas_unknown: "你的账号不在本校名单中，请联系管理员。",
    cas_inactive: "你的账号已停用。", none: "无",
    my_trips: "我的出行", plan_trip: "出行报备", destination: "目的地", departure: "出发日期", return_date: "返校日期",
    note: "备注", plan_submit: "提交报备", trip_list: "我的出行记录", no_trips: "暂无出行记录",
    area_warning: "目的地在疫情风险地区（{areas}）：从该地返校后须居家隔离。", trip_planned: "出行已报备",
    ap_not_needed: "无需审批", ap_pending: "待审批", ap_approved: "已批准", ap_refused: "未批准",
    liaison_note: "审批意见", cancelled: "已取消", returned: "已返校", cancel_plan: "取消出行",
    declare_return: "报备返校", returned_on: "实际返校日期", isolated_now: "你已返校：须居家隔离，请留在住处。",
    return_declared: "返校已报备", trip_cancelled: "出行已取消",
    my_care: "我照看的人", record_contact: "记录联系", person: "照看对象", channel: "联系方式",
    ch_phone: "电话", ch_message: "网络消息", ch_visit: "上门", feeling: "对方状况", fe_well: "良好",
    fe_unwell: "不适", fe_needs_help: "需要帮助", reported_temperature: "对方自报体温 (°C，可不填)",
    record_submit: "保存记录", day_n: "隔离第 {d} 天", last_contact: "上次联系", never: "尚无记录",
    follow_up_caretaker: "超过一天未联系，请尽快联系", follow_up_health_officer: "超过两天未联系，已通知卫生专员",
    contact_recorded: "联系已记录", no_cases: "目前没有需要照看的人",
    passes: "访客通行证", request_pass: "申请访客通行证", visitor_name: "访客姓名", visitor_phone: "访客电话",
    id_number: "证件号码", reason: "来访事由", zones: "可进入区域", starts_at: "开始时间", ends_at: "结束时间",
    places: "访客近 14 天去过的地方", list_hint: "多项请用逗号分隔", request_submit: "提交申请", pass_list: "我申请的通行证",
    no_passes: "暂无通行证", ps_pending: "待审批", ps_approved: "已批准", ps_refused: "未批准", ps_revoked: "已撤销",
    show_token: "显示通行码", copy: "复制", copied: "已复制", token_hint: "请将此通行码发给访客（生成二维码用）：",
    qr_label: "访客通行二维码", pass_requested: "申请已提交，等待审批", area_matches: "去过疫情风险地区", bad_dates: "请填写完整的日期",
    required: "请填写所有必填项", pass_window: "有效期",
  },
  en: {
    title: "CampusGate", signin: "Sign in", signout: "Sign out", cas_signin: "Sign in with university account",
    or_password: "or with your person id and password", person_id: "Student / staff id", password: "Password",
    set_password: "Set password", new_password: "New password", confirm_password: "New password again",
    invite_hint: "Choose a password of at least {n} characters; then sign in with your id and this password.",
    password_mismatch: "The passwords differ", password_short: "The password needs at least {n} characters",
    password_set: "Password set. Please sign in.", invite_invalid: "This invitation link is not valid (used or expired); ask for a new one.",
    my_status: "My status", checkin: "Daily check-in", kind: "Kind", unit: "Unit", health: "Health status", since: "Since",
    caretaker: "Your caretaker", call: "Call", k_student: "student", k_staff: "staff", k_visitor: "visitor",
    st_clear: "clear", st_fever_watch: "fever watch", st_home_isolation: "home isolation", st_close_contact: "close contact",
    st_suspected: "suspected", st_confirmed: "confirmed", st_recovered: "recovered",
    location: "Where are you", on_campus: "On campus", off_campus: "Off campus", dormitory: "Dormitory", city: "City",
    temperature: "Temperature (°C)", symptoms: "Symptoms (tick any you have)", case_contact: "Contact with a case in the last 14 days",
    travel_plans: "Travel plans (if any)", submit: "Submit", sy_fever: "Fever", sy_cough: "Cough", sy_sore_throat: "Sore throat",
    sy_fatigue: "Fatigue", sy_shortness_of_breath: "Shortness of breath", sy_loss_of_taste_smell: "Loss of taste or smell",
    sy_diarrhea: "Diarrhoea", checked_in: "Checked in today", checkin_updated: "Today's check-in updated", submitted_at: "Submitted",
    hold_fever_watch: "Temperature high: you are on fever watch; stay in your dormitory until re-measured.",
    checkin_unavailable: "Check-in is not available yet.", bad_temperature: "Enter a temperature between 34 and 43",
    wrong_login: "Wrong id or password", throttled: "Too many attempts; try again later", failed: "Something went wrong",
    offline: "Cannot reach the server", expired: "Your session ended; please sign in again",
    cas_ticket: "University sign-in failed; please try again.", cas_unknown: "Your account is not on this campus's roster; ask an administrator.",
    cas_inactive: "Your account is deactivated.", none: "none",
    my_trips: "My trips", plan_trip: "Plan a trip", destination: "Destination", departure: "Departure date", return_date: "Return date",
    note: "Note", plan_submit: "Submit plan", trip_list: "My trips so far", no_trips: "No trips yet",
    area_warning: "Your destination is in a listed area ({areas}): returning from there means home isolation.",
    trip_planned: "Trip planned",
    ap_not_needed: "no approval needed", ap_pending: "awaiting approval", ap_approved: "approved", ap_refused: "refused",
    liaison_note: "Liaison's note", cancelled: "called off", returned: "returned", cancel_plan: "Cancel plan",
    declare_return: "Declare return", returned_on: "Day you came back",
    isolated_now: "You are back: home isolation applies; please stay where you live.",
    return_declared: "Return declared", trip_cancelled: "Plan cancelled",
    my_care: "People in my care", record_contact: "Record a contact", person: "Person", channel: "Channel",
    ch_phone: "Phone", ch_message: "Message", ch_visit: "Visit", feeling: "How they are", fe_well: "Well",
    fe_unwell: "Unwell", fe_needs_help: "Needs help", reported_temperature: "Temperature they report (°C, optional)",
    record_submit: "Save contact", day_n: "day {d} of isolation", last_contact: "Last contact", never: "none yet",
    follow_up_caretaker: "No contact for a day: please get in touch",
    follow_up_health_officer: "No contact for two days: the health officer is told",
    contact_recorded: "Contact recorded", no_cases: "Nobody in your care now",
    passes: "Visitor passes", request_pass: "Request a visitor pass", visitor_name: "Visitor's name", visitor_phone: "Visitor's phone",
    id_number: "ID number", reason: "Reason for the visit", zones: "Zones", starts_at: "From", ends_at: "Until",
    places: "Where the visitor was in the last 14 days", list_hint: "Separate several with commas", request_submit: "Request pass",
    pass_list: "My passes", no_passes: "No passes yet", ps_pending: "awaiting approval", ps_approved: "approved",
    ps_refused: "refused", ps_revoked: "revoked", show_token: "Show pass code", copy: "Copy", copied: "Copied",
    token_hint: "Send this pass code to the visitor (it is the QR code's content):",
    qr_label: "Visitor pass QR code", pass_requested: "Pass requested; awaiting approval", area_matches: "Been in a listed area", bad_dates: "Fill in the dates",
    required: "Fill in every required field", pass_window: "Valid",
  },
};
const SYMPTOMS = ["fever", "cough", "sore_throat", "fatigue", "shortness_of_breath", "loss_of_taste_smell", "diarrhea"];
const state = { lang: localStorage.getItem("cg-me-lang") || "zh", me: null, meChecked: false, minPassword: 8, invite: null, result: null, message: null };
const $ = (selector) => document.querySelector(selector);
const t = (key) => (I18N[state.lang][key] ?? I18N.en[key] ?? key).replace("{n}", String(state.minPassword));

function csrf() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("cg_person_csrf="));
  return found ? decodeURIComponent(found.slice("cg_person_csrf=".length)) : "";
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  try {
    return await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  } catch (e) {
    return { ok: false, status: 0, json: async () => ({}) };
  }
}

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
  const toggle = $("#lang");
  toggle.textContent = state.lang === "zh" ? "English" : "中文";
  toggle.lang = state.lang === "zh" ? "en" : "zh-CN";
  document.title = t("title");
  if (state.message) showNotice(state.message.key, state.message.kind);
  renderMe();
  renderResult();
  renderSections();
}

function showNotice(key, kind = "info") {
  state.message = key ? { key, kind } : null;
  const notice = $("#notice");
  notice.hidden = !key;
  notice.className = kind;
  notice.textContent = key ? t(key) : "";
}

// The signed-in sections by their address (#status ...); each loads its data when opened.
const SECTIONS = ["status", "checkin", "trips", "care", "passes"];
const ALL_VIEWS = ["signin-view", "invite-view", ...SECTIONS.map((name) => `${name}-view`)];

function show(view) {
  for (const id of ALL_VIEWS) $(`#${id}`).hidden = id !== view;
  const signedIn = SECTIONS.some((name) => `${name}-view` === view);
  $("#tabs").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
  for (const name of SECTIONS) {
    const tab = $(`#tab-${name}`);
    if (`${name}-view` === view) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
  }
  if (signedIn) openSection(view.slice(0, -"-view".length));
}

function formatTime(iso) {
  if (!iso) return t("none");
  return new Date(iso).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { dateStyle: "medium", timeStyle: "short" });
}

function renderMe() {
  const me = state.me;
  if (!me) return;
  $("#me-name").textContent = me.name;
  $("#me-id").textContent = me.person_id;
  $("#me-kind").textContent = t(`k_${me.kind}`);
  $("#me-unit").textContent = me.unit_name || me.unit_id || t("none");
  const health = $("#me-health");
  health.textContent = t(`st_${me.health.status}`);
  health.dataset.status = me.health.status;
  $("#me-since").textContent = me.health.since ? formatTime(me.health.since) : t("none");
  $("#tab-passes").hidden = me.kind !== "staff";  // hosts are staff
  const caretaker = me.caretaker;
  $("#me-caretaker").hidden = !caretaker;
  if (caretaker) {
    $("#me-caretaker-name").textContent = caretaker.name;
    const phone = $("#me-caretaker-phone");
    phone.hidden = !caretaker.phone;
    if (caretaker.phone) { phone.href = `tel:${caretaker.phone}`; phone.textContent = `${t("call")} ${caretaker.phone}`; }
  }
}

function renderResult() {
  const box = $("#checkin-result");
  const answer = state.result;
  box.hidden = !answer;
  if (!answer) return;
  const lines = [[answer.updated ? t("checkin_updated") : t("checked_in"), answer.day], [t("submitted_at"), formatTime(answer.submitted_at)]];
  const nodes = lines.map(([label, value]) => {
    const p = document.createElement("p");
    const strong = document.createElement("strong");
    strong.textContent = label;
    p.append(strong, ` ${value}`);
    return p;
  });
  if (answer.hold) {
    const warn = document.createElement("p");
    warn.className = "error";
    warn.textContent = t(`hold_${answer.hold}`);
    nodes.push(warn);
  }
  box.replaceChildren(...nodes);
}

async function loadMe() {
  state.meChecked = true;
  const response = await api("/api/me");
  if (response.status === 401) { state.me = null; return false; }
  if (!response.ok) { showNotice(response.status === 0 ? "offline" : "failed", "error"); return false; }
  state.me = await response.json();
  renderMe();
  return true;
}

async function route() {
  const hash = location.hash.slice(1);
  const params = new URLSearchParams(hash.includes("=") ? hash : "");
  if (params.get("invite")) {
    state.invite = params.get("invite");
    history.replaceState(null, "", location.pathname);  // the token leaves the address bar
    return openInvite();
  }
  if (params.get("error")) {
    showNotice(params.get("error"), "error");
    history.replaceState(null, "", location.pathname);
  }
  if (state.me || (!state.meChecked && await loadMe())) return show(`${sectionOf(hash)}-view`);
  show("signin-view");
  $("#signin-id").focus();
}

async function openInvite() {
  show("invite-view");
  const response = await api("/api/person/invitation/check", { method: "POST", body: { token: state.invite } });
  const valid = response.ok && (await response.json()).valid;
  if (!valid) { showNotice("invite_invalid", "error"); $("#invite-form").hidden = true; return; }
  $("#invite-password").focus();
}

async function signIn(event) {
  event.preventDefault();
  const error = $("#signin-error");
  error.textContent = "";
  const body = { person_id: $("#signin-id").value.trim(), password: $("#signin-password").value };
  if (!body.person_id || !body.password) { error.textContent = t("wrong_login"); return; }
  const response = await api("/api/person/login", { method: "POST", body });
  if (!response.ok) {
    error.textContent = t(response.status === 429 ? "throttled" : response.status === 401 ? "wrong_login" : response.status === 0 ? "offline" : "failed");
    return;
  }
  $("#signin-password").value = "";
  showNotice(null);
  await loadMe();
  location.hash = "status";
  show("status-view");
  findCare();
}

async function setPassword(event) {
  event.preventDefault();
  const error = $("#invite-error");
  const password = $("#invite-password").value;
  error.textContent = "";
  if (password.length < state.minPassword) { error.textContent = t("password_short"); return; }
  if (password !== $("#invite-confirm").value) { error.textContent = t("password_mismatch"); return; }
  const response = await api("/api/person/invitation/accept", { method: "POST", body: { token: state.invite, password } });
  if (response.status === 410) { error.textContent = t("invite_invalid"); return; }
  if (!response.ok) { error.textContent = t(response.status === 422 ? "password_short" : "failed"); return; }
  const { person_id: personId } = await response.json();
  state.invite = null;
  $("#invite-form").reset();
  showNotice("password_set", "ok");
  show("signin-view");
  $("#signin-id").value = personId;
  $("#signin-password").focus();
}

function checkinBody() {
  const location_ = document.querySelector('input[name="location"]:checked').value;
  const text = (id) => $(id).value.trim() || null;
  return {
    location: location_,
    dormitory: location_ === "on_campus" ? text("#checkin-dormitory") : null,
    city: location_ === "off_campus" ? text("#checkin-city") : null,
    temperature_c: Number($("#checkin-temperature").value),
    symptoms: SYMPTOMS.filter((code) => $(`#symptom-${code}`).checked),
    case_contact: $("#checkin-contact").checked,
    travel_plans: text("#checkin-travel"),
  };
}

async function checkIn(event) {
  event.preventDefault();
  const error = $("#checkin-error");
  error.textContent = "";
  const body = checkinBody();
  const raw = $("#checkin-temperature").value;
  if (!raw || !(body.temperature_c >= 34 && body.temperature_c <= 43)) { error.textContent = t("bad_temperature"); return; }
  const response = await api("/api/me/checkin", { method: "POST", body });
  if (response.status === 401) { state.me = null; showNotice("expired", "error"); show("signin-view"); return; }
  if (response.status === 404) { error.textContent = t("checkin_unavailable"); return; }
  if (response.status === 422) { error.textContent = await refusal(response); return; }
  if (!response.ok) { error.textContent = t(response.status === 0 ? "offline" : "failed"); return; }
  state.result = await response.json();
  renderResult();
  await loadMe();  // a fever hold changes the status
}

// What the server refused, in its words (a 422 names the field and what to change).
async function refusal(response) {
  const answer = await response.json().catch(() => ({}));
  if (typeof answer.detail === "string" && answer.detail) return answer.detail;  // 404, 409
  const detail = Array.isArray(answer.detail) ? answer.detail[0] : null;
  return detail && detail.msg ? detail.msg : t("failed");
}

async function loadToday() {
  // Today's check-in, if made: the form then shows it (a second one updates it).
  const response = await api("/api/me/checkins?limit=1");
  if (!response.ok) return;
  const answer = await response.json();
  if (answer.today && state.result === null) { state.result = { ...answer.today, updated: false }; renderResult(); }
}

async function signOut() {
  await api("/api/person/logout", { method: "POST" });
  state.me = null;
  state.result = null;
  forgetSections();
  location.hash = "";
  show("signin-view");
}

function buildSymptoms() {
  const box = $("#symptoms");
  for (const code of SYMPTOMS) {
    const label = document.createElement("label");
    label.className = "inline";
    const input = document.createElement("input");
    Object.assign(input, { type: "checkbox", id: `symptom-${code}`, value: code });
    const span = document.createElement("span");
    span.dataset.i18n = `sy_${code}`;
    label.append(input, " ", span);
    box.append(label);
  }
}

function toggleLocation() {
  const onCampus = document.querySelector('input[name="location"]:checked').value === "on_campus";
  $("#dormitory-field").hidden = !onCampus;
  $("#city-field").hidden = onCampus;
}

async function start() {
  buildSymptoms();
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("cg-me-lang", state.lang);
    applyLanguage();
  });
  $("#signin-form").addEventListener("submit", signIn);
  $("#invite-form").addEventListener("submit", setPassword);
  $("#checkin-form").addEventListener("submit", checkIn);
  $("#signout").addEventListener("click", signOut);
  $("#trip-form").addEventListener("submit", planTrip);
  $("#care-form").addEventListener("submit", recordContact);
  $("#pass-form").addEventListener("submit", requestPass);
  document.querySelectorAll('input[name="location"]').forEach((r) => r.addEventListener("change", toggleLocation));
  window.addEventListener("hashchange", route);
  applyLanguage();
  // Both answers at once: the first screen waits for one round trip, not two.
  const inviting = location.hash.includes("invite=");
  const [config] = await Promise.all([api("/api/person/config"), inviting ? null : loadMe()]);
  if (config.ok) {
    const { cas, min_password_length: minimum } = await config.json();
    state.minPassword = minimum;
    $("#cas-signin").hidden = !cas;
    $("#cas-or").hidden = !cas;
    applyLanguage();
  }
  await route();
  if (state.me) { loadToday(); findCare(); }
}

// ---- Sections opened from the tabs: trips, people in my care, visitor passes. ----
// Each fetches its list the first time its tab opens (the first screen stays one round trip).
const sections = { trips: null, care: null, passes: null, tripNote: null, tokens: {} };

function sectionOf(hash) {
  if (hash === "care" && $("#tab-care").hidden) return "status";
  if (hash === "passes" && state.me && state.me.kind !== "staff") return "status";
  return SECTIONS.includes(hash) ? hash : "status";
}

function forgetSections() {
  Object.assign(sections, { trips: null, care: null, passes: null, tripNote: null, tokens: {} });
  $("#tab-care").hidden = true;
  for (const id of ["#trip-list", "#care-list", "#pass-list"]) $(id).replaceChildren();
  $("#trip-result").hidden = true;
}

function openSection(name) {
  if (name === "trips" && sections.trips === null) loadTrips();
  if (name === "care") loadCare();  // always fresh: the flags follow the clock
  if (name === "passes" && sections.passes === null) loadPasses();
}

function renderSections() {
  if (sections.trips) renderTrips();
  if (sections.care) renderCare();
  if (sections.passes) renderPasses();
  renderTripNote();
}

// What to tell the person when a request did not go through; null when it did.
async function failure(response) {
  if (response.ok) return null;
  if (response.status === 401) { state.me = null; forgetSections(); showNotice("expired", "error"); show("signin-view"); return ""; }
  if ([404, 409, 422].includes(response.status)) return refusal(response);
  return t(response.status === 0 ? "offline" : "failed");
}

function el(tag, { text, className, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

function today() {
  return new Date().toLocaleDateString("sv");  // YYYY-MM-DD, the phone's own day
}

function formatDay(day) {
  return new Date(`${day}T00:00:00`).toLocaleDateString(state.lang === "zh" ? "zh-CN" : "en-GB", { dateStyle: "medium" });
}

// ---- My trips ----
async function loadTrips() {
  const response = await api("/api/me/trips");
  const problem = await failure(response);
  if (problem !== null) { $("#trip-error").textContent = problem; return; }
  sections.trips = await response.json();
  renderTrips();
}

function tripItem(trip) {
  const item = el("li", { className: "card", attrs: { "data-trip": String(trip.id) } });
  item.append(el("p", { className: "who" }, el("strong", { text: trip.destination })));
  item.append(el("p", { text: `${formatDay(trip.departure_date)} – ${formatDay(trip.return_date)}` }));
  if (trip.note) item.append(el("p", { className: "muted", text: trip.note }));
  const state_ = trip.cancelled_at ? "cancelled" : trip.returned_at ? "returned" : null;
  const badge = el("span", { className: "badge", text: t(`ap_${trip.approval}`), attrs: { "data-approval": trip.approval } });
  item.append(el("p", {}, badge, state_ ? el("span", { className: "muted", text: ` · ${t(state_)}` }) : ""));
  if (trip.approval_note) item.append(el("p", {}, el("strong", { text: `${t("liaison_note")}: ` }), trip.approval_note));
  if (trip.matched_areas.length) item.append(el("p", { className: "error", text: t("area_warning").replace("{areas}", trip.matched_areas.join("、")) }));
  if (!state_) item.append(tripActions(trip));
  return item;
}

function tripActions(trip) {
  const box = el("div", { className: "actions" });
  const error = el("p", { className: "error", attrs: { role: "alert" } });
  if (trip.departure_date >= today()) {
    const cancel = el("button", { text: t("cancel_plan"), attrs: { type: "button", class: "cancel-trip" } });
    cancel.addEventListener("click", () => cancelTrip(trip.id, error));
    box.append(cancel);
  }
  if (trip.departure_date <= today()) {
    const id = `trip-${trip.id}-back`;
    const input = el("input", { attrs: { id, type: "date", max: today(), required: "" } });
    input.value = today();
    const back = el("button", { text: t("declare_return"), attrs: { type: "button", class: "declare-return" } });
    back.addEventListener("click", () => declareReturn(trip.id, input.value, error));
    box.append(el("label", { text: t("returned_on"), attrs: { for: id } }), input, back);
  }
  box.append(error);
  return box;
}

function renderTrips() {
  const list = $("#trip-list");
  const trips = sections.trips || [];
  list.replaceChildren(...(trips.length ? trips.map(tripItem) : [el("li", { className: "muted", text: t("no_trips") })]));
}

function renderTripNote() {
  const box = $("#trip-result");
  const note = sections.tripNote;
  box.hidden = !note;
  if (!note) return;
  const lines = [el("p", {}, el("strong", { text: t(note.key) }), ` ${note.trip.destination}`)];
  if (note.isolated) lines.push(el("p", { className: "error", text: t("isolated_now") }));
  else if (note.areas.length) lines.push(el("p", { className: "error", text: t("area_warning").replace("{areas}", note.areas.join("、")) }));
  box.replaceChildren(...lines);
}

function tripAnswer(key, answer) {
  sections.tripNote = { key, trip: answer.declaration || answer, areas: answer.declaration ? answer.matched_areas : [], isolated: Boolean(answer.isolated) };
  renderTripNote();
  loadTrips();
  $("#trip-result").focus();
  if (answer.isolated) loadMe();  // the status changes to home isolation
}

async function planTrip(event) {
  event.preventDefault();
  const error = $("#trip-error");
  error.textContent = "";
  const body = {
    destination: $("#trip-destination").value.trim(),
    departure_date: $("#trip-departure").value,
    return_date: $("#trip-return").value,
    note: $("#trip-note").value.trim(),
  };
  if (!body.destination) { error.textContent = t("required"); $("#trip-destination").focus(); return; }
  if (!body.departure_date || !body.return_date) { error.textContent = t("bad_dates"); return; }
  const response = await api("/api/me/trips", { method: "POST", body });
  const problem = await failure(response);
  if (problem !== null) { error.textContent = problem; return; }
  $("#trip-form").reset();
  tripAnswer("trip_planned", await response.json());
}

async function cancelTrip(id, error) {
  const response = await api(`/api/me/trips/${id}/cancel`, { method: "POST" });
  const problem = await failure(response);
  if (problem !== null) { error.textContent = problem; return; }
  tripAnswer("trip_cancelled", await response.json());
}

async function declareReturn(id, day, error) {
  if (!day) { error.textContent = t("bad_dates"); return; }
  const response = await api(`/api/me/trips/${id}/return`, { method: "POST", body: { return_date: day } });
  const problem = await failure(response);
  if (problem !== null) { error.textContent = problem; return; }
  tripAnswer("return_declared", await response.json());
}

// ---- People in my care (caretakers: staff who look after people in isolation) ----
async function findCare() {
  // Only staff care for people; the tab shows only when someone is in their care.
  if (!state.me || state.me.kind !== "staff") return;
  const response = await api("/api/me/care");
  if (!response.ok) return;
  sections.care = await response.json();
  $("#tab-care").hidden = sections.care.length === 0;
  renderCare();
  if (location.hash === "#care" && sections.care.length) show("care-view");  // a reload on #care
}

async function loadCare() {
  const response = await api("/api/me/care");
  const problem = await failure(response);
  if (problem !== null) { $("#care-error").textContent = problem; return; }
  sections.care = await response.json();
  renderCare();
}

function caseItem(case_) {
  const item = el("li", { className: "card", attrs: { "data-person": case_.person_id } });
  item.append(el("p", { className: "who" }, el("strong", { text: case_.name }), " ", el("span", { className: "muted", text: case_.person_id })));
  const facts = el("dl");
  facts.append(el("dt", { text: t("health") }), el("dd", { text: `${t(`st_${case_.status}`)} · ${t("day_n").replace("{d}", case_.day)}` }));
  facts.append(el("dt", { text: t("last_contact") }), el("dd", { className: "last-contact", text: case_.last_contact_at ? formatTime(case_.last_contact_at) : t("never") }));
  item.append(facts);
  if (case_.phone) item.append(el("p", {}, el("a", { className: "button", text: `${t("call")} ${case_.phone}`, attrs: { href: `tel:${case_.phone}` } })));
  if (case_.follow_up) item.append(el("p", { className: "flag", text: t(`follow_up_${case_.follow_up}`), attrs: { "data-follow-up": case_.follow_up } }));
  const record = el("button", { text: t("record_contact"), attrs: { type: "button", class: "record-contact" } });
  record.addEventListener("click", () => { $("#care-person").value = case_.person_id; $("#care-channel").focus(); });
  item.append(record);
  return item;
}

function renderCare() {
  const cases = sections.care || [];
  $("#care-list").replaceChildren(...(cases.length ? cases.map(caseItem) : [el("li", { className: "muted", text: t("no_cases") })]));
  const select = $("#care-person");
  const chosen = select.value;
  select.replaceChildren(...cases.map((c) => el("option", { text: `${c.name} (${c.person_id})`, attrs: { value: c.person_id } })));
  if (cases.some((c) => c.person_id === chosen)) select.value = chosen;
  $("#care-form").hidden = cases.length === 0;
}

async function recordContact(event) {
  event.preventDefault();
  const error = $("#care-error");
  error.textContent = "";
  const person = $("#care-person").value;
  const raw = $("#care-temperature").value;
  const body = { channel: $("#care-channel").value, feeling: $("#care-feeling").value, note: $("#care-note").value.trim() };
  if (raw) body.temperature_c = Number(raw);
  if (!person) { error.textContent = t("required"); return; }
  const response = await api(`/api/me/care/${encodeURIComponent(person)}/contacts`, { method: "POST", body });
  const problem = await failure(response);
  if (problem !== null) { error.textContent = problem; return; }
  $("#care-temperature").value = "";
  $("#care-note").value = "";
  showNotice("contact_recorded", "ok");
  await loadCare();
}

// ---- Visitor passes (staff hosts) ----
async function loadPasses() {
  const response = await api("/api/me/visitor-passes");
  const problem = await failure(response);
  if (problem !== null) { $("#pass-error").textContent = problem; return; }
  sections.passes = await response.json();
  renderPasses();
}

function passItem(pass) {
  const item = el("li", { className: "card", attrs: { "data-pass": String(pass.id) } });
  item.append(el("p", { className: "who" }, el("strong", { text: pass.visitor_name }), " ", el("span", { className: "muted", text: `#${pass.id}` })));
  item.append(el("p", { text: pass.reason }));
  item.append(el("p", { className: "muted", text: `${t("pass_window")}: ${formatTime(pass.starts_at)} – ${formatTime(pass.ends_at)} · ${pass.zones.join(", ")}` }));
  item.append(el("p", {}, el("span", { className: "badge pass-status", text: t(`ps_${pass.status}`), attrs: { "data-approval": pass.status } })));
  if (pass.note) item.append(el("p", { text: pass.note }));
  if (pass.area_matches.length) item.append(el("p", { className: "error", text: `${t("area_matches")}: ${pass.area_matches.join("、")}` }));
  if (pass.status === "approved" && pass.qr_available) item.append(tokenBox(pass.id));
  return item;
}

function tokenBox(id) {
  const box = el("div", { className: "token" });
  const error = el("p", { className: "error", attrs: { role: "alert" } });
  const token = sections.tokens[id];
  if (!token) {
    const reveal = el("button", { text: t("show_token"), attrs: { type: "button", class: "show-token" } });
    reveal.addEventListener("click", () => fetchToken(id, error));
    box.append(reveal, error);
    return box;
  }
  const code = el("code", { text: token, attrs: { id: `pass-${id}-token`, tabindex: "0" } });
  const copy = el("button", { text: t("copy"), attrs: { type: "button", class: "copy-token", "aria-describedby": `pass-${id}-token` } });
  copy.addEventListener("click", () => copyToken(code, copy));
  const picture = el("div", { className: "qr", attrs: { id: `pass-${id}-qr` } });
  box.append(picture, el("p", { className: "muted", text: t("token_hint") }), code, copy, error);
  drawQr(picture, token);
  return box;
}

// The QR drawing library (vendored qrcode-generator, ~57 kB) loads only when a code is shown.
let qrLibrary = null;
function loadQrLibrary() {
  qrLibrary ??= new Promise((resolve, reject) => {
    const script = el("script", { attrs: { src: "/static/vendor/qrcode-generator/qrcode.js" } });
    script.addEventListener("load", () => resolve(window.qrcode));
    script.addEventListener("error", () => { qrLibrary = null; reject(new Error("QR library not loaded")); });
    document.head.append(script);
  });
  return qrLibrary;
}

async function drawQr(box, token) {
  let qrcode;
  try { qrcode = await loadQrLibrary(); } catch (e) { return; }  // the text still serves
  const qr = qrcode(0, "M");
  qr.addData(token);
  qr.make();
  const size = qr.getModuleCount();
  const quiet = 4;
  // One SVG path of the dark modules, built as DOM nodes (no markup strings under the CSP).
  let d = "";
  for (let row = 0; row < size; row += 1) {
    for (let col = 0; col < size; col += 1) if (qr.isDark(row, col)) d += `M${col + quiet} ${row + quiet}h1v1h-1z`;
  }
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const side = size + 2 * quiet;
  for (const [key, value] of [["viewBox", `0 0 ${side} ${side}`], ["role", "img"], ["aria-label", t("qr_label")], ["shape-rendering", "crispEdges"], ["data-modules", String(size)]]) svg.setAttribute(key, value);
  const back = document.createElementNS(ns, "rect");
  for (const [key, value] of [["width", String(side)], ["height", String(side)], ["fill", "#fff"]]) back.setAttribute(key, value);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(back, path);
  box.replaceChildren(svg);
}

async function fetchToken(id, error) {
  const response = await api(`/api/me/visitor-passes/${id}/qr`);
  const problem = await failure(response);
  if (problem !== null) { error.textContent = problem; return; }
  sections.tokens[id] = (await response.json()).token;
  renderPasses();
  document.getElementById(`pass-${id}-token`)?.focus();
}

async function copyToken(code, button) {
  try {
    await navigator.clipboard.writeText(code.textContent);
  } catch (e) {
    // No clipboard (plain http, old browser): select the text for a long-press copy.
    getSelection().selectAllChildren(code);
    return;
  }
  button.textContent = t("copied");
}

function renderPasses() {
  const passes = sections.passes || [];
  $("#pass-list").replaceChildren(...(passes.length ? passes.map(passItem) : [el("li", { className: "muted", text: t("no_passes") })]));
}

function listOf(text) {
  return text.split(/[,，、]/).map((part) => part.trim()).filter(Boolean);
}

async function requestPass(event) {
  event.preventDefault();
  const error = $("#pass-error");
  error.textContent = "";
  const value = (id) => $(id).value.trim();
  const starts = $("#pass-starts").value;
  const ends = $("#pass-ends").value;
  const body = {
    visitor_name: value("#pass-name"), phone: value("#pass-phone"), id_number: value("#pass-id-number"),
    reason: value("#pass-reason"), zones: listOf($("#pass-zones").value), places: listOf($("#pass-places").value),
  };
  if (!body.visitor_name || !body.phone || !body.id_number || !body.reason || !body.zones.length) { error.textContent = t("required"); return; }
  if (!starts || !ends) { error.textContent = t("bad_dates"); return; }
  // The phone's local time, sent with its offset (UTC).
  body.starts_at = new Date(starts).toISOString();
  body.ends_at = new Date(ends).toISOString();
  const response = await api("/api/me/visitor-passes", { method: "POST", body });
  const problem = await failure(response);
  if (problem !== null) { error.textContent = problem; return; }
  $("#pass-form").reset();
  showNotice("pass_requested", "ok");
  await loadPasses();
}

document.addEventListener("DOMContentLoaded", start);
