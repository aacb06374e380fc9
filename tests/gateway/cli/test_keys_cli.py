"""`campusgate keys show|rotate`: the public key terminals pin, and a new one when needed."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firmware_sim.command_check import key_id, public_key_from_text
from gateway.cli import main


def keys(data_dir: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), "keys", *args], env=env)


def test_show_makes_the_key_once_and_prints_what_terminals_pin(tmp_path: Path) -> None:
    first = keys(tmp_path, "show", "--json")
    assert first.exit_code == 0, first.output
    shown = json.loads(first.stdout)
    assert shown["alg"] == "Ed25519" and shown["file"] == str(
        tmp_path / "keys" / "command-signing.pem"
    )
    raw = public_key_from_text(shown["public_key"])
    assert shown["kid"] == key_id(raw)
    pem = serialization.load_pem_public_key(shown["public_key_pem"].encode())
    assert isinstance(pem, Ed25519PublicKey) and pem.public_bytes_raw() == raw
    again = keys(tmp_path, "show", "--json")
    assert json.loads(again.stdout) == shown
    plain = keys(tmp_path, "show")
    assert f"kid:        {shown['kid']}" in plain.stdout


def test_rotate_makes_a_new_key_and_keeps_the_old(tmp_path: Path) -> None:
    old = json.loads(keys(tmp_path, "show", "--json").stdout)
    rotated = keys(tmp_path, "rotate", "--json")
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert new["kid"] != old["kid"]
    assert json.loads(keys(tmp_path, "show", "--json").stdout)["kid"] == new["kid"]
    kept = list((tmp_path / "keys").glob("command-signing.pem.*.old"))
    assert len(kept) == 1
    assert "pin its public half in every terminal" in rotated.stderr


def test_the_key_file_setting_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "gateway.pem"
    run = keys(tmp_path, "show", "--json", env={"CAMPUSGATE_SIGNING_KEY_FILE": str(path)})
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["file"] == str(path) and path.is_file()


def test_a_broken_key_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "command-signing.pem"
    path.parent.mkdir()
    path.write_text("garbage")
    run = keys(tmp_path, "show")
    assert run.exit_code != 0
    assert "is not an unencrypted PEM private key" in run.output
    assert path.read_text() == "garbage"
