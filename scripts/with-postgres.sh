#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster: `scripts/with-postgres.sh npm test` runs
# the whole suite on Postgres. The cluster is made with the machine's own server binaries (Debian's
# `postgresql` package) in a temporary folder, listens on 127.0.0.1 on a free port above 5432, and
# is stopped and removed when the command ends, however it ends. The command sees
# TEST_DATABASE_URL (what test/helper.ts reads) pointing at the cluster's `postgres` database.
#
# Settings are for tests only: fsync and synchronous_commit are off, because the cluster is thrown
# away and the tests prove behaviour, not durability.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/with-postgres.sh <command> [args…]   e.g. scripts/with-postgres.sh npm test" >&2
  exit 64
fi

bin="${POSTGRES_BIN:-}"
if [ -z "$bin" ]; then
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL server binaries not found (looked for /usr/lib/postgresql/*/bin/initdb)." >&2
  echo "Install them with: apt-get install -y --no-install-recommends --no-upgrade postgresql" >&2
  echo "or point POSTGRES_BIN at a folder holding initdb and pg_ctl." >&2
  exit 69
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/textdesk-pg.XXXXXX")"
# initdb refuses to run as root: the cluster then belongs to the `postgres` user the package made.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi

stop() {
  local code=$?
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  exit "$code"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  exit 1
}

# A free port above 5432: the kernel picks one, and pg_ctl start is retried if another process
# takes it in between.
free_port() {
  node -e "const s = require('node:net').createServer(); s.listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close() })"
}
started=no
for _ in 1 2 3; do
  port="$(free_port)"
  if [ "$port" -le 5432 ]; then continue; fi
  if "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -w -t 30 -l "$dir/server.log" \
      -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null; then
    started=yes
    break
  fi
done
if [ "$started" != yes ]; then
  echo "PostgreSQL did not start; its log follows." >&2
  cat "$dir/server.log" >&2 || true
  exit 1
fi

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (throwaway, in $dir): TEST_DATABASE_URL=$TEST_DATABASE_URL" >&2
set +e
"$@"
code=$?
set -e
exit "$code"
