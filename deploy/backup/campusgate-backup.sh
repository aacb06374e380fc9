#!/usr/bin/env bash
# Nightly dump of the CampusGate database: pg_dump custom format, timestamped, checked,
# the newest N kept. Runbook: deploy/README.md, "Backup".
#
#   campusgate-backup.sh [--dir DIR] [--keep N] [--textfile-dir DIR]
#
# --textfile-dir: after a good dump, write campusgate_backup.prom there for
# node_exporter's textfile collector (the alert CampusGateBackupMissing reads it).
#
# The database comes from CAMPUSGATE_DATABASE_URL (as for campusgate itself; a password
# is better kept in ~/.pgpass than in the URL). pg_dump must be the server's major
# version or newer (PostgreSQL 15 client for a 15 server).
set -euo pipefail

dir=/var/backups/campusgate
keep=14
textfile_dir=

usage() {
    echo "usage: $0 [--dir DIR] [--keep N] [--textfile-dir DIR]   (database: CAMPUSGATE_DATABASE_URL)" >&2
    exit 2
}

while (($#)); do
    case $1 in
        --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
        --keep) keep=${2:?--keep needs a number}; shift 2 ;;
        --textfile-dir) textfile_dir=${2:?--textfile-dir needs a directory}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done

url=${CAMPUSGATE_DATABASE_URL:-}
if [[ -z $url ]]; then
    echo "CAMPUSGATE_DATABASE_URL is not set: export it or run with the env file" \
        "(set -a; . /etc/campusgate/campusgate.env; set +a)" >&2
    exit 2
fi
if ! [[ $keep =~ ^[1-9][0-9]*$ ]]; then
    echo "--keep must be a whole number of dumps, at least 1 (got '$keep')" >&2
    exit 2
fi
command -v pg_dump >/dev/null || { echo "pg_dump not found: apt-get install postgresql-client-15" >&2; exit 2; }

# Dumps hold health data and operator password hashes: readable by this user only.
umask 077
mkdir -p "$dir"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$dir/campusgate-$stamp.dump"
partial="$final.partial"
if [[ -e $final ]]; then
    echo "$final exists already; run again in a second" >&2
    exit 1
fi
trap 'rm -f "$partial"' EXIT

echo "dumping the database to $final"
pg_dump --format=custom --compress=6 --no-password --file="$partial" --dbname="$url"
# A dump that pg_restore cannot list is no backup: check it before it replaces an old one.
entries=$(pg_restore --list "$partial" | grep -vc '^;' || true)
if ((entries == 0)); then
    echo "the dump $partial lists no entries: not kept; check the database and pg_dump's output" >&2
    exit 1
fi
mv "$partial" "$final"
trap - EXIT
echo "ok: $final ($(du -h "$final" | cut -f1), $entries entries)"

# Retention: the newest $keep dumps stay (names sort by time).
mapfile -t dumps < <(find "$dir" -maxdepth 1 -name 'campusgate-*.dump' -printf '%f\n' | sort)
excess=$((${#dumps[@]} - keep))
for ((i = 0; i < excess; i++)); do
    rm -f -- "$dir/${dumps[i]}"
    echo "removed old dump ${dumps[i]} (keeping $keep)"
done

if [[ -n $textfile_dir ]]; then
    prom="$textfile_dir/campusgate_backup.prom"
    {
        echo "# HELP campusgate_backup_last_success_timestamp_seconds When the last good dump was made."
        echo "# TYPE campusgate_backup_last_success_timestamp_seconds gauge"
        echo "campusgate_backup_last_success_timestamp_seconds $(date -u +%s)"
        echo "# HELP campusgate_backup_last_size_bytes Size of the last good dump."
        echo "# TYPE campusgate_backup_last_size_bytes gauge"
        echo "campusgate_backup_last_size_bytes $(stat -c %s "$final")"
    } >"$prom.tmp"
    chmod 0644 "$prom.tmp"  # node_exporter reads it; it holds no secret
    mv "$prom.tmp" "$prom"
fi
