#!/usr/bin/env python3
"""Load `campusgate devices credentials` output into an EMQX 5 cluster (issue 14).

`campusgate devices credentials --out DIR` writes Mosquitto's files: `acl`, and the
plaintext passwords in `device-secrets.csv` and `service-secrets.csv` (0600). This script

1. writes DIR/emqx-acl.conf: the same grants in EMQX's acl.conf syntax (`%u` becomes
   `${username}`, anything not granted is denied), for emqx.conf's file authorizer;
2. with --api, puts every account into EMQX's built-in database through the REST API
   (EMQX hashes the passwords itself; the database is replicated to every node), removes
   the accounts whose device left the roster, and has EMQX reload the ACL.

    campusgate devices credentials --out /etc/campusgate/broker
    deploy/emqx/campusgate-emqx-sync.py /etc/campusgate/broker \\
        --api http://127.0.0.1:18083 --api-key KEY:SECRET

Run it again after every `campusgate devices credentials` (a device added, removed or
rotated). Python 3 standard library only, so it runs where the secrets are.
Only the ACL conversion is tested (tests/deploy/test_cluster_deploy.py); the REST calls
follow the EMQX 5 API documentation and were not run against an EMQX here.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

AUTHENTICATOR = "password_based:built_in_database"
RESERVED_PREFIX = "campusgate-"  # service accounts; never removed as "left the roster"


def acl_to_emqx(mosquitto_acl: str) -> str:
    """Mosquitto's `user`/`topic`/`pattern` ACL as EMQX acl.conf rules, same order."""
    rules = ["%% Written by campusgate-emqx-sync.py from the Mosquitto ACL; edits are lost.", ""]
    user: str | None = None
    for number, raw in enumerate(mosquitto_acl.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] == "user" and len(words) == 2:
            user = words[1]
            continue
        if words[0] in ("topic", "pattern") and len(words) == 3 and words[1] in ("read", "write"):
            action = "subscribe" if words[1] == "read" else "publish"
            topic = words[2]
            if words[0] == "pattern":
                who = "all"
                topic = topic.replace("%u", "${username}")
                if "%c" in topic:
                    raise ValueError(f"ACL line {number}: %c (client id) is not used by CampusGate")
            elif user is None:
                raise ValueError(f"ACL line {number}: a topic line before any user line")
            else:
                who = f'{{user, "{user}"}}'
            rules.append(f'{{allow, {who}, {action}, ["{topic}"]}}.')
            continue
        raise ValueError(f"ACL line {number}: cannot read {line!r}")
    rules += ["", "%% Anything else is denied.", "{deny, all}.", ""]
    return "\n".join(rules)


def read_secrets(folder: Path) -> dict[str, str]:
    accounts: dict[str, str] = {}
    for name in ("service-secrets.csv", "device-secrets.csv"):
        path = folder / name
        if not path.exists():
            continue
        with path.open(newline="") as src:
            for row in csv.DictReader(src):
                user = row.get("username") or row.get("device_id") or row.get("account")
                if user and row.get("password"):
                    accounts[user] = row["password"]
    return accounts


class Emqx:
    def __init__(self, base: str, key: str) -> None:
        self.base = base.rstrip("/") + "/api/v5"
        self.auth = "Basic " + base64.b64encode(key.encode()).decode()

    def call(self, method: str, path: str, body: object | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", self.auth)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def users(self) -> set[str]:
        found: set[str] = set()
        page = 1
        while True:
            answer = self.call(
                "GET", f"/authentication/{_q(AUTHENTICATOR)}/users?page={page}&limit=1000"
            )
            rows = answer.get("data", []) if isinstance(answer, dict) else []
            found |= {row["user_id"] for row in rows}
            if len(rows) < 1000:
                return found
            page += 1

    def put_user(self, user: str, password: str, exists: bool) -> None:
        users = f"/authentication/{_q(AUTHENTICATOR)}/users"
        if exists:
            self.call("PUT", f"{users}/{_q(user)}", {"password": password})
        else:
            self.call("POST", users, {"user_id": user, "password": password})

    def delete_user(self, user: str) -> None:
        self.call("DELETE", f"/authentication/{_q(AUTHENTICATOR)}/users/{_q(user)}")

    def reload_acl(self, rules: str) -> None:
        self.call(
            "PUT", "/authorization/sources/file", {"type": "file", "enable": True, "rules": rules}
        )


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the --out of campusgate devices credentials")
    parser.add_argument("--api", help="EMQX REST API base, e.g. http://127.0.0.1:18083")
    parser.add_argument("--api-key", help="KEY:SECRET of an EMQX API key")
    args = parser.parse_args()
    try:
        rules = acl_to_emqx((args.folder / "acl").read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot convert {args.folder / 'acl'}: {exc}", file=sys.stderr)
        return 1
    target = args.folder / "emqx-acl.conf"
    target.write_text(rules)
    print(f"wrote {target}")
    if not args.api:
        return 0
    if not args.api_key:
        print("--api needs --api-key KEY:SECRET", file=sys.stderr)
        return 1
    accounts = read_secrets(args.folder)
    emqx = Emqx(args.api, args.api_key)
    try:
        present = emqx.users()
        for user, password in sorted(accounts.items()):
            emqx.put_user(user, password, user in present)
        gone = sorted(u for u in present - set(accounts) if not u.startswith(RESERVED_PREFIX))
        for user in gone:
            emqx.delete_user(user)
        emqx.reload_acl(rules)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"EMQX API at {args.api}: {exc}", file=sys.stderr)
        return 1
    print(
        f"{len(accounts)} accounts in EMQX's built-in database, {len(gone)} removed; ACL reloaded"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
