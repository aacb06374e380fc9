"""`campusgate keys show|rotate`: the key that signs commands to door devices."""

from __future__ import annotations

import json

import click

from gateway.cli import settings_of
from gateway.cli.runtime import signing_key_file
from gateway.pipeline.signing import (
    ALGORITHM,
    PublicKeyInfo,
    SigningKeyError,
    load_or_create_key,
    rotate_key,
)


@click.group("keys")
def command() -> None:
    """The command-signing key (terminals pin its public half)."""


def _print(info: PublicKeyInfo, path: object, as_json: bool) -> None:
    if as_json:
        document = {
            "alg": ALGORITHM,
            "kid": info.kid,
            "public_key": info.public_key,
            "public_key_pem": info.public_pem,
            "file": str(path),
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"file:       {path}")
    click.echo(f"algorithm:  {ALGORITHM}")
    click.echo(f"kid:        {info.kid}")
    click.echo(f"public key: {info.public_key}  (base64url of the raw 32 bytes)")
    click.echo(info.public_pem.rstrip())


@command.command("show")
@click.option("--json", "as_json", is_flag=True, help="print a JSON object instead")
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the public key that terminals pin (the key is made here if there is none yet)."""
    path = signing_key_file(settings_of(ctx))
    try:
        key, made = load_or_create_key(path)
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    if made:
        click.echo(f"made a new command-signing key in {path}", err=True)
    _print(PublicKeyInfo.of(key), path, as_json)


@command.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="print the new key as a JSON object")
@click.pass_context
def rotate(ctx: click.Context, as_json: bool) -> None:
    """Make a new key pair; the old private key is kept beside it as `*.old`.

    Terminals pinned to the old key refuse commands signed with the new one: give them
    the new public key first, then restart every gateway worker (they read the key at
    start and publish it retained on P/gateway/signing-key).
    """
    path = signing_key_file(settings_of(ctx))
    try:
        old, key = rotate_key(path)
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    if old is not None:
        click.echo(f"old key kept as {old}", err=True)
    click.echo(
        "new key made: pin its public half in every terminal, then restart the gateway workers",
        err=True,
    )
    _print(PublicKeyInfo.of(key), path, as_json)
