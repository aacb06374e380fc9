"""Observability shared by the API and the workers: JSON logs, store gauges, the status server."""
