#!/usr/bin/env bash
# Restore a CampusGate dump into a NEW database, check it, and say how to switch to it.
# It never touches the database in use. Runbook: deploy/README.md, "Restore".
#
#   campusgate-restore.sh DUMP NEW_DATABASE_NAME
#
# The server (and the role that will own the new database) comes from
# CAMPUSGATE_DATABASE_URL; that role needs CREATEDB (or create the database first as
# postgres and pass --existing-empty).
set -euo pipefail

usage() {
    echo "usage: $0 [--existing-empty] DUMP NEW_DATABASE_NAME   (server: CAMPUSGATE_DATABASE_URL)" >&2
    exit 2
}

create=1
args=()
while (($#)); do
    case $1 in
        --existing-empty) create=0; shift ;;
        -h|--help) usage ;;
        -*) echo "unknown option: $1" >&2; usage ;;
        *) args+=("$1"); shift ;;
    esac
done
((${#args[@]} == 2)) || usage
dump=${args[0]}
name=${args[1]}

url=${CAMPUSGATE_DATABASE_URL:-}
if [[ -z $url ]]; then
    echo "CAMPUSGATE_DATABASE_URL is not set: export it or run with the env file" \
        "(set -a; . /etc/campusgate/campusgate.env; set +a)" >&2
    exit 2
fi
[[ -r $dump ]] || { echo "cannot read the dump $dump" >&2; exit 2; }
if ! [[ $name =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
    echo "the new database name must be lower-case letters, digits and _ (got '$name')" >&2
    exit 2
fi
# postgresql://user:pass@host:port/db?params -> the same URL for another database.
if ! [[ $url =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
    echo "CAMPUSGATE_DATABASE_URL is not a postgresql://... URL" >&2
    exit 2
fi
base=${BASH_REMATCH[1]}
current=${BASH_REMATCH[3]#/}
params=${BASH_REMATCH[4]}
if [[ $name == "$current" ]]; then
    echo "refusing to restore over the database in use ($current): give a new name" >&2
    exit 2
fi
admin_url="$base/postgres$params"
new_url="$base/$name$params"
# The URL as shown to people: no password.
shown_url=$(sed -E 's#//([^:/@]*):[^@]*@#//\1:***@#' <<<"$new_url")

pg_restore --list "$dump" >/dev/null || { echo "$dump is not a pg_dump custom-format file" >&2; exit 1; }

exists=$(psql --no-psqlrc --no-password -X -qtA --dbname="$admin_url" \
    -c "SELECT count(*) FROM pg_database WHERE datname = '$name'")
if ((create)); then
    if ((exists)); then
        echo "database $name exists already: choose a new name or drop it first" >&2
        exit 1
    fi
    echo "creating database $name"
    psql --no-psqlrc --no-password -X -q --dbname="$admin_url" -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$name\""
elif ((!exists)); then
    echo "database $name does not exist (--existing-empty)" >&2
    exit 1
fi

echo "restoring $dump into $name"
# One transaction: a restore that fails leaves an empty database, never half of one.
# --no-owner: the objects belong to the restoring role, the one CampusGate connects as.
pg_restore --no-password --no-owner --no-privileges --exit-on-error --single-transaction \
    --dbname="$new_url" "$dump"

echo "checking $name"
psql --no-psqlrc --no-password -X --dbname="$new_url" -v ON_ERROR_STOP=1 <<'SQL'
SELECT (SELECT count(*) FROM schema_migrations) AS migrations,
       (SELECT max(name) FROM schema_migrations) AS last_migration,
       (SELECT count(*) FROM people) AS people,
       (SELECT count(*) FROM cards) AS cards,
       (SELECT count(*) FROM devices) AS devices,
       (SELECT count(*) FROM access_events) AS access_events,
       (SELECT max(received_at) FROM access_events) AS last_event,
       (SELECT count(*) FROM alerts) AS alerts;
SQL

cat <<NEXT
restored into $name. Next steps (deploy/README.md, "Restore"):
  1. compare the counts above with what you expect (last_event is the newest access event kept);
  2. bring the schema up to date: CAMPUSGATE_DATABASE_URL='$shown_url' campusgate migrate
     (with the real password, or from ~/.pgpass)
  3. stop the workers and the API (systemctl stop 'campusgate-worker@*' campusgate-api);
  4. point CAMPUSGATE_DATABASE_URL in /etc/campusgate/campusgate.env at $name
     (or rename: ALTER DATABASE <old> RENAME TO <old>_broken; ALTER DATABASE $name RENAME TO <old>);
  5. start them again and watch /readyz.
NEXT
