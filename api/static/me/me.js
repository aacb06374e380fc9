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
}

function showNotice(key, kind = "info") {
  state.message = key ? { key, kind } : null;
  const notice = $("#notice");
  notice.hidden = !key;
  notice.className = kind;
  notice.textContent = key ? t(key) : "";
}

function show(view) {
  for (const id of ["signin-view", "invite-view", "status-view", "checkin-view"]) $(`#${id}`).hidden = id !== view;
  const signedIn = view === "status-view" || view === "checkin-view";
  $("#tabs").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
  for (const [tab, target] of [["#tab-status", "status-view"], ["#tab-checkin", "checkin-view"]]) {
    if (target === view) $(tab).setAttribute("aria-current", "page"); else $(tab).removeAttribute("aria-current");
  }
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
  if (state.me || (!state.meChecked && await loadMe())) return show(hash === "checkin" ? "checkin-view" : "status-view");
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
  if (state.me) loadToday();
}

document.addEventListener("DOMContentLoaded", start);
