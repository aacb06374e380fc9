"""CAMPUSGATE_MQTT_URL as the nodes of a clustered broker, and CAMPUSGATE_MQTT_PROTOCOL.

A malformed list stops every command at start with one line naming the mistake (and no
password); a good one keeps its order, its shared account and its protocol.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from devices.transports.mqtt import BrokerAddress, Endpoint, Protocol
from gateway.cli import main


def test_a_list_keeps_its_order_account_and_protocol():
    address = BrokerAddress.parse(
        "mqtt://gw:s%40cret@n1.example.edu,mqtt://n2.example.edu:1884?protocol=3.1.1,"
        " mqtt://[fd00::3]:1885"
    )
    assert address.endpoints == (
        Endpoint("n1.example.edu", 1883),
        Endpoint("n2.example.edu", 1884),
        Endpoint("fd00::3", 1885),
    )
    assert (address.host, address.port) == ("n1.example.edu", 1883)
    assert (address.username, address.password) == ("gw", "s@cret")
    assert address.protocol is Protocol.V311
    assert str(address) == "n1.example.edu:1883,n2.example.edu:1884,[fd00::3]:1885"


def test_tls_list_and_protocol_setting():
    address = BrokerAddress.parse(
        "mqtts://n1:8883?ca=/etc/ca.crt,mqtts://n2:8883", protocol="3.1.1"
    )
    assert address.tls and address.ca_file == "/etc/ca.crt"
    assert address.protocol is Protocol.V311
    assert BrokerAddress.parse("mqtt://n1").protocol is Protocol.V5  # Mosquitto's default


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mqtt://n1:1883,,mqtt://n2:1883", "an empty entry between commas"),
        ("mqtt://n1:1883,mqtts://n2:8883", "share one scheme, not mqtt and mqtts"),
        ("mqtt://n1:1883,n2:1883", "'n2:1883' in"),
        ("mqtt://gw:one@n1,mqtt://gw:two@n2", "share one password"),
        ("mqtt://a@n1,mqtt://b@n2", "share one user name"),
        ("mqtt://n1:1883,mqtt://n1:1883", "a node is named twice"),
        ("mqtt://n1:70000,mqtt://n2", "the port must be a number from 1 to 65535"),
        ("mqtt://n1?protocol=5,mqtt://n2?protocol=3.1.1", "query parameter 'protocol'"),
        ("mqtt://n1?protocol=4", "unknown MQTT protocol '4'"),
        ("mqtt://n1/campus", "an MQTT URL has no path"),
    ],
)
def test_malformed_lists_are_refused_clearly(url, says):
    with pytest.raises(ValueError, match=None) as refused:
        BrokerAddress.parse(url)
    assert says in str(refused.value)


def test_the_protocol_setting_must_agree_with_the_url():
    with pytest.raises(ValueError, match="disagrees with"):
        BrokerAddress.parse("mqtt://n1?protocol=3.1.1", protocol=Protocol.V5)


def _start(env: dict[str, str]) -> tuple[int, str]:
    """Run `campusgate worker` with `env`: settings are checked before it starts anything."""
    result = CliRunner().invoke(main, ["worker"], env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mqtt://gw:hunter2@n1:1883,,mqtt://n2:1883", "an empty entry between commas"),
        ("mqtt://n1:1883;mqtt://n2:1883", "separated by commas"),
        ("mqtt://n1:1883,mqtts://n2:8883", "share one scheme"),
        ("mqtt://gw:hunter2@n1,mqtt://gw:other@n2", "share one password"),
        ("mqtt://n1:1883, tcp://n2:1883", "'tcp://n2:1883' in the list is not"),
    ],
)
def test_a_malformed_url_list_stops_the_command_at_start(url, says):
    code, output = _start(
        {"CAMPUSGATE_MQTT_URL": url, "CAMPUSGATE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}
    )
    assert code != 0
    assert says in output and "bad setting mqtt_url" in output
    assert "hunter2" not in output and "Traceback" not in output


def test_a_bad_protocol_setting_stops_the_command_at_start():
    code, output = _start({"CAMPUSGATE_MQTT_URL": "mqtt://n1", "CAMPUSGATE_MQTT_PROTOCOL": "3"})
    assert code != 0 and "bad setting mqtt_protocol" in output and "5 or 3.1.1" in output
    code, output = _start(
        {"CAMPUSGATE_MQTT_URL": "mqtt://n1?protocol=5", "CAMPUSGATE_MQTT_PROTOCOL": "3.1.1"}
    )
    assert code != 0 and "disagrees with" in output


def test_the_bench_hands_its_children_the_whole_list_with_the_protocol(tmp_path):
    """`campusgate bench` starts the gateway, the echo responder and the doors from a URL
    alone: each node's URL carries the protocol (and, for mqtts://, the CA file)."""
    from gateway.cli.bench import _with_tls_files
    from gateway.settings import Settings

    ca = tmp_path / "ca.crt"
    ca.write_text("stand-in")
    settings = Settings(
        mqtt_url="mqtts://gw:pw@n1:8883,mqtts://n2:8883", mqtt_protocol="3.1.1", mqtt_ca_file=ca
    )
    url = _with_tls_files(settings.mqtt_url, settings, ca_only=True)
    address = BrokerAddress.parse(url)
    assert [str(e) for e in address.endpoints] == ["n1:8883", "n2:8883"]
    assert address.protocol is Protocol.V311 and address.ca_file == str(ca)
    assert address.username == "gw"
