"""Daily reports (issue 5, item 6): numbers and lists per org unit and campus day,
rendered as CSV, XLSX and HTML with charts, stored, and delivered by e-mail and webhook.

Modules: compute (facts to numbers), render_csv / render_xlsx / render_html + charts,
delivery (SMTP, webhooks), service (generate, send, retry), schedule (the daily job).
"""

from gateway.services.reports.service import generate_reports, send_report

__all__ = ["generate_reports", "send_report"]
