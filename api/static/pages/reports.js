"use strict";
// Daily reports page: choose a day, unit and audience; view the report (server-rendered
// HTML with charts, in a sandboxed frame); download CSV/XLSX; see deliveries; generate
// and send now (SEND_REPORTS).
(() => {
  const CG = window.CG;
  const { el, t, may } = CG;
  let section = null;
  let current = null; // the report shown

  const i18n = {
    zh: {
      reports_title: "每日报告", reports_day: "日期", reports_unit: "单位", reports_audience: "对象",
      reports_campus: "全校", reports_student: "学生", reports_staff: "教职工",
      reports_show: "查看", reports_generate: "立即生成", reports_send: "发送", reports_resend_failed: "重发失败项",
      reports_csv: "下载 CSV", reports_xlsx: "下载 Excel", reports_generated: "生成时间", reports_by: "生成者",
      reports_deliveries: "发送记录", reports_channel: "方式", reports_recipient: "收件方", reports_sent_at: "时间",
      reports_status: "结果", reports_error: "错误", reports_none: "该日暂无报告", reports_no_deliveries: "尚未发送",
      reports_ok: "成功", reports_failed: "失败", reports_partial: "（当天未结束）", reports_busy: "处理中…",
      reports_scheduled: "定时", reports_list: "已生成的报告", reports_made: "已生成报告 #{0}",
      reports_sent: "已发送：{0} 成功，{1} 失败", reports_no_recipients: "未配置收件方（CAMPUSGATE_REPORT_RECIPIENTS），未发送",
      reports_latest: "最近一份报告：{0}",
      reports_passages: "放行通行 {0} 次（进 {1} / 出 {2}）", reports_never_screened: "在校但未测体温 {0} 人",
      reports_visitors_refused: "登记访客在宿舍、实验室被拒 {0} 次",
    },
    en: {
      reports_title: "Daily reports", reports_day: "Day", reports_unit: "Org unit", reports_audience: "Audience",
      reports_campus: "Whole campus", reports_student: "Students", reports_staff: "Staff",
      reports_show: "Show", reports_generate: "Generate now", reports_send: "Send", reports_resend_failed: "Resend failed",
      reports_csv: "Download CSV", reports_xlsx: "Download Excel", reports_generated: "Generated", reports_by: "By",
      reports_deliveries: "Deliveries", reports_channel: "Channel", reports_recipient: "Recipient", reports_sent_at: "Time",
      reports_status: "Result", reports_error: "Error", reports_none: "No report for this day yet", reports_no_deliveries: "Not sent yet",
      reports_ok: "ok", reports_failed: "failed", reports_partial: " (day not over)", reports_busy: "Working…",
      reports_scheduled: "schedule", reports_list: "Generated reports", reports_made: "Generated report #{0}",
      reports_sent: "Sent: {0} ok, {1} failed", reports_no_recipients: "No recipients configured (CAMPUSGATE_REPORT_RECIPIENTS): nothing sent",
      reports_latest: "Latest report: {0}",
      reports_passages: "Admitted passages {0} (in {1} / out {2})", reports_never_screened: "Present, never screened: {0}",
      reports_visitors_refused: "Registered visitors refused at dormitories and labs: {0}",
    },
  };

  const $ = (sel) => section.querySelector(sel);

  function yesterday() {
    const d = new Date(Date.now() - 86400000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  function status(message, isError) {
    const box = $(".reports-status");
    box.textContent = message || "";
    box.className = `reports-status${isError ? " error" : ""}`;
  }

  async function loadUnits() {
    const response = await CG.api("/api/daily-reports/units");
    if (!response.ok) return;
    const data = await response.json();
    const select = $("#reports-unit");
    const options = [];
    if (data.campus) options.push(el("option", { value: "*" }, t("reports_campus")));
    for (const u of data.units) options.push(el("option", { value: u.id }, `${u.name} (${u.id})`));
    select.replaceChildren(...options);
  }

  function selection() {
    return { day: $("#reports-day").value, unit: $("#reports-unit").value, audience: $("#reports-audience").value };
  }

  async function loadList() {
    const { day, unit, audience } = selection();
    if (!day) return;
    const query = new URLSearchParams({ day, audience });
    if (unit) query.set("org_unit", unit);
    const response = await CG.api(`/api/daily-reports?${query}`);
    if (!response.ok) { status(await CG.errorText(response), true); return; }
    const items = (await response.json()).items;
    const body = $("#reports-list tbody");
    body.replaceChildren(...items.map((r) => el("tr", { dataset: { reportId: r.id }, class: current && current.id === r.id ? "active" : "", onclick: () => open(r.id) },
      el("td", {}, String(r.id)),
      el("td", {}, r.org_unit_name || t("reports_campus")),
      el("td", {}, t(`reports_${r.audience}`)),
      el("td", {}, CG.fmtTime(r.generated_at) + (r.complete ? "" : t("reports_partial"))),
      el("td", {}, r.scheduled ? t("reports_scheduled") : r.generated_by),
      el("td", { class: "delivered" }, `${r.deliveries.ok} ${t("reports_ok")} / ${r.deliveries.failed} ${t("reports_failed")}`))));
    $("#reports-empty").hidden = items.length > 0;
    if (items.length && (!current || !items.some((r) => r.id === current.id))) await open(items[0].id);
    if (!items.length) { clearView(); await offerLatest(audience); } else $("#reports-latest").hidden = true;
  }

  // Nothing for the chosen day: offer the newest report there is, one click away.
  async function offerLatest(audience) {
    const link = $("#reports-latest");
    link.hidden = true;
    const unit = $("#reports-unit").value;
    const query = new URLSearchParams({ audience, limit: "1" });
    if (unit) query.set("org_unit", unit);
    const response = await CG.api(`/api/daily-reports?${query}`);
    if (!response.ok) return;
    const [latest] = (await response.json()).items;
    if (!latest || String(latest.day) === $("#reports-day").value) return;
    link.dataset.day = String(latest.day);
    link.textContent = t("reports_latest").replace("{0}", String(latest.day));
    link.hidden = false;
  }

  function clearView() {
    current = null;
    $(".reports-view").hidden = true;
  }

  async function open(id) {
    const [meta, page] = await Promise.all([CG.api(`/api/daily-reports/${id}`), CG.api(`/api/daily-reports/${id}/html`)]);
    if (!meta.ok || !page.ok) { status(await CG.errorText(meta.ok ? page : meta), true); return; }
    current = await meta.json();
    const frame = $("#reports-frame");
    frame.srcdoc = await page.text(); // sandboxed: the report is data, never script
    $("#reports-csv").href = `/api/daily-reports/${id}/csv`;
    $("#reports-xlsx").href = `/api/daily-reports/${id}/xlsx`;
    $(".reports-view").hidden = false;
    $(".reports-view").dataset.reportId = String(id);
    renderDeliveries();
    renderNeeds();
    for (const tr of section.querySelectorAll("#reports-list tbody tr")) tr.classList.toggle("active", tr.dataset.reportId === String(id));
  }

  // What units need, above the report: passages, people never screened, visitors refused
  // (a report stored before these numbers has none, and shows nothing here).
  function renderNeeds() {
    const box = $("#reports-needs");
    const s = current && current.summary;
    if (!s || !s.passages) { box.replaceChildren(); box.hidden = true; return; }
    const fill = (key, ...values) => values.reduce((text, v, n) => text.replace(`{${n}}`, String(v)), t(key));
    box.replaceChildren(
      el("span", { class: "need", dataset: { need: "passages" } }, fill("reports_passages", s.passages.total, s.passages.in, s.passages.out)),
      " · ",
      el("span", { class: "need", dataset: { need: "never_screened" } }, fill("reports_never_screened", s.never_screened)),
      " · ",
      el("span", { class: "need", dataset: { need: "visitors_refused" } }, fill("reports_visitors_refused", s.visitors_refused.total)));
    box.hidden = false;
  }

  function renderDeliveries() {
    const rows = (current && current.deliveries) || [];
    $("#reports-deliveries tbody").replaceChildren(...rows.map((d) => el("tr", { class: d.status },
      el("td", {}, d.channel), el("td", {}, d.recipient), el("td", {}, CG.fmtTime(d.sent_at)),
      el("td", { class: "result" }, t(`reports_${d.status}`)), el("td", {}, d.error || ""), el("td", {}, d.sent_by))));
    $("#reports-no-deliveries").hidden = rows.length > 0;
  }

  async function generate() {
    const { day, unit, audience } = selection();
    status(t("reports_busy"));
    const response = await CG.api("/api/daily-reports/generate", { method: "POST", body: JSON.stringify({ day, org_unit: unit || null, audience }) });
    if (!response.ok) { status(await CG.errorText(response), true); return; }
    const [made] = (await response.json()).items;
    status(made ? t("reports_made").replace("{0}", made.id) : "");
    current = null;
    await loadList();
    if (made) await open(made.id);
  }

  async function send(onlyFailed) {
    if (!current) return;
    status(t("reports_busy"));
    const response = await CG.api(`/api/daily-reports/${current.id}/send`, { method: "POST", body: JSON.stringify({ only_failed: onlyFailed }) });
    if (!response.ok) { status(await CG.errorText(response), true); return; }
    const done = (await response.json()).deliveries || [];
    const failed = done.filter((d) => d.status !== "ok").length;
    status(done.length ? t("reports_sent").replace("{0}", done.length - failed).replace("{1}", failed)
      : t("reports_no_recipients"), failed > 0 || !done.length);
    await open(current.id);
    await loadList();
  }

  function labels() {
    if (!section) return;
    for (const node of section.querySelectorAll("[data-rt]")) node.textContent = t(node.dataset.rt);
    for (const option of $("#reports-audience").options) option.textContent = t(`reports_${option.value}`);
    const latest = $("#reports-latest");
    if (latest && latest.dataset.day) latest.textContent = t("reports_latest").replace("{0}", latest.dataset.day);
    const campus = $("#reports-unit").querySelector('option[value="*"]');
    if (campus) campus.textContent = t("reports_campus");
  }

  function render(target) {
    section = target;
    const label = (key, input) => el("label", {}, el("span", { dataset: { rt: key } }), " ", input);
    const th = (key) => el("th", { dataset: { rt: key } });
    const sender = may("send_reports");
    section.append(
      el("h2", { dataset: { rt: "reports_title" } }),
      el("form", { class: "filters reports-controls", onsubmit: (e) => { e.preventDefault(); current = null; loadList(); } },
        label("reports_day", el("input", { type: "date", id: "reports-day", value: yesterday(), required: true })),
        label("reports_unit", el("select", { id: "reports-unit" })),
        label("reports_audience", el("select", { id: "reports-audience" },
          el("option", { value: "student" }), el("option", { value: "staff" }))),
        el("button", { type: "submit", id: "reports-show", dataset: { rt: "reports_show" } }),
        sender ? el("button", { type: "button", id: "reports-generate", dataset: { rt: "reports_generate" }, onclick: generate }) : null),
      el("p", { class: "reports-status", role: "status" }),
      el("h3", { dataset: { rt: "reports_list" } }),
      el("table", { id: "reports-list" }, el("thead", {}, el("tr", {}, el("th", {}, "#"), th("reports_unit"),
        th("reports_audience"), th("reports_generated"), th("reports_by"), th("reports_deliveries"))), el("tbody")),
      el("p", { id: "reports-empty", dataset: { rt: "reports_none" }, hidden: true }),
      el("p", {}, el("button", { type: "button", id: "reports-latest", class: "link", hidden: true, onclick: (e) => {
        $("#reports-day").value = e.currentTarget.dataset.day; current = null; loadList();
      } })),
      el("div", { class: "reports-view", hidden: true },
        el("p", { class: "reports-actions" },
          el("a", { id: "reports-csv", download: "", dataset: { rt: "reports_csv" } }), " ",
          el("a", { id: "reports-xlsx", download: "", dataset: { rt: "reports_xlsx" } }), " ",
          sender ? el("button", { type: "button", id: "reports-send", dataset: { rt: "reports_send" }, onclick: () => send(false) }) : null, " ",
          sender ? el("button", { type: "button", id: "reports-resend", dataset: { rt: "reports_resend_failed" }, onclick: () => send(true) }) : null),
        el("p", { id: "reports-needs", class: "reports-needs", hidden: true }),
        el("iframe", { id: "reports-frame", sandbox: "", title: "report", style: "width:100%;height:75vh;border:1px solid #ccd;background:#fff" }),
        el("h3", { dataset: { rt: "reports_deliveries" } }),
        el("table", { id: "reports-deliveries" }, el("thead", {}, el("tr", {}, th("reports_channel"), th("reports_recipient"),
          th("reports_sent_at"), th("reports_status"), th("reports_error"), th("reports_by"))), el("tbody")),
        el("p", { id: "reports-no-deliveries", dataset: { rt: "reports_no_deliveries" } })),
    );
    labels();
    loadUnits().then(loadList);
  }

  CG.onLanguage(() => { labels(); if (section && current) { renderDeliveries(); renderNeeds(); loadList(); } });
  CG.registerPage({
    id: "reports",
    permission: "read_reports",
    title: { zh: "每日报告", en: "Daily reports" },
    i18n,
    render,
    show: () => { if (section && $("#reports-unit").options.length) loadList(); },
  });
})();
