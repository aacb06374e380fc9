"""A worker whose metrics port is taken stops at once and says which setting to change."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def test_a_taken_metrics_port_is_a_clear_error(fresh_db):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "worker", "--worker-id", "w-port-test"],
            env={
                **os.environ,
                "CAMPUSGATE_DATABASE_URL": fresh_db,
                "CAMPUSGATE_MQTT_URL": "mqtt://127.0.0.1:1",  # never reached: it stops first
                "CAMPUSGATE_METRICS_PORT": str(port),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "set CAMPUSGATE_METRICS_PORT" in done.stderr
    assert "Traceback" not in done.stderr
