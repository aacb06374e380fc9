"""The serial transport and the OSDP panel against simulated readers on pseudo-terminals."""

from __future__ import annotations

import asyncio

import osdp
import pytest

from devices.codecs import osdp as osdp_codec
from devices.codecs import rdm6300
from devices.codecs.serial_frames import CardRead, decode_stream
from devices.transports.osdp_panel import OsdpPanel
from devices.transports.serial import SerialLink
from firmware_sim.pty_card_readers import OsdpReader, PtyPort, Rdm6300Reader, WiegandConverter
from gateway.domain.decisions import Verdict

KEY = bytes.fromhex("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_simulators_build_the_spec_frames() -> None:
    # the simulators encode independently of the codecs; both must give the pinned vectors
    assert Rdm6300Reader.frame("0100073A8D") == b"\x020100073A8DB1\x03"
    assert WiegandConverter.frame(123, 45678) == b"W26:2F764DD\r\n"
    assert WiegandConverter.frame(123, 45678, 34) == b"W34:000F764DC\r\n"


async def test_loop_url_moves_bytes() -> None:
    got: list[bytes] = []
    link = SerialLink("loop://", on_data=got.append)
    link.start()
    await until(lambda: link.connected)
    assert link.write(b"\x020100073A8DB1\x03")
    await until(lambda: b"".join(got) == b"\x020100073A8DB1\x03")
    await link.close()


async def test_pty_reader_unplug_and_replug(tmp_path) -> None:
    port = PtyPort(tmp_path / "ttyRDM")
    reader = Rdm6300Reader(port)
    buffer = bytearray()
    states: list[bool] = []
    link = SerialLink(
        str(port.path), on_data=buffer.extend, on_connection=states.append, max_backoff_s=0.2
    )
    link.start()
    try:
        await until(lambda: states == [True])
        reader.present("0100073A8D")
        await until(lambda: len(buffer) >= 14)
        assert decode_stream(rdm6300.decode, bytes(buffer))[1] == [CardRead("0100073A8D")]
        port.unplug()
        await until(lambda: states == [True, False])
        await asyncio.sleep(0.3)  # a few failed reopen attempts
        port.plug()
        await until(lambda: states == [True, False, True])
        buffer.clear()
        reader.present("62E3086CED")
        await until(lambda: len(buffer) >= 14)
        assert decode_stream(rdm6300.decode, bytes(buffer))[1] == [CardRead("62E3086CED")]
    finally:
        await link.close()
        port.unplug()


@pytest.mark.parametrize("scbk", [KEY, None], ids=["secure", "plain"])
async def test_osdp_panel_and_reader(tmp_path, scbk) -> None:
    port = PtyPort(tmp_path / "ttyOSDP")
    sim = OsdpReader(port, scbk=scbk, address=3)
    cards: list[tuple[int, int, bytes]] = []
    online: list[bool] = []
    panel = OsdpPanel(
        str(port.path),
        address=3,
        scbk=scbk,
        on_card=lambda *c: cards.append(c),
        on_online=online.append,
    )
    sim.start()
    panel.start()
    try:
        await until(lambda: panel.online, timeout=10)
        if scbk:
            await until(lambda: panel.secure and sim.secure, timeout=10)
        sim.present_wiegand(123, 45678)
        await until(lambda: cards)
        assert osdp_codec.card_read(*cards[0]) == CardRead("007BB26E", 123, 45678)
        for command in osdp_codec.feedback(Verdict.ADMIT, 3000):
            assert panel.submit(command)
        commands = await asyncio.to_thread(sim.wait_commands, 3)
        kinds = {c["command"]: c for c in commands}
        assert kinds[osdp.Command.LED]["on_color"] == osdp.CommandLEDColor.Green
        assert kinds[osdp.Command.Buzzer]["rep_count"] == 1
        assert kinds[osdp.Command.Output]["timer_count"] == 30
    finally:
        await panel.close()
        sim.stop()
        port.unplug()
