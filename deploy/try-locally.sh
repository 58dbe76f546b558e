#!/usr/bin/env bash
# deploy/try-locally.sh: the README's "Running several instances", on one machine, to try it.
#
#   1. a PostgreSQL server (a throwaway cluster from the machine's server binaries), with a role and
#      a database for Textdesk;
#   2. two instances of the compiled service on ports 3101 and 3102, NODE_ENV=production, the
#      built-in simulator instead of MessageBird;
#   3. nginx on http://localhost:8088 in front of both, configured from deploy/nginx.conf (plain
#      HTTP here, no certificate), round-robin, no sticky sessions.
#
# Open http://localhost:8088 and sign in (the first admin is created below). Send texts with
#   curl -d originator=31612345678 -d payload=Hello http://localhost:8088/webhooks/messagebird
# (unsigned webhooks are allowed here): each request lands on either instance, and the inbox, live
# on whichever instance serves it, shows them all. The simulator's phone page is per instance (it
# shows what that instance's outbox worker sent), so it is not the way to try this.
# Ctrl-C stops everything and removes the cluster.
#
# Needs: PostgreSQL's server binaries (apt-get install -y --no-upgrade postgresql) and nginx
# (apt-get install -y nginx-light). Run as root (the cluster then runs as `postgres`) or as any
# user who may run initdb.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
[ -x "$bin/initdb" ] || { echo "PostgreSQL server binaries not found: apt-get install -y --no-upgrade postgresql" >&2; exit 69; }
command -v nginx >/dev/null || { echo "nginx not found: apt-get install -y nginx-light" >&2; exit 69; }

dir="$(mktemp -d /tmp/textdesk-deploy.XXXXXX)"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; as_owner=(runuser -u postgres --); fi
pids=()
cleanup () {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  [ -f "$dir/data/postmaster.pid" ] && "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# 1. The database server, a role and a database (the README's createuser/createdb, non-interactive).
"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync >/dev/null
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/postgres.log" -o "-k $dir -p 5544 -c listen_addresses=127.0.0.1" start >/dev/null
"${as_owner[@]}" "$bin/psql" -h "$dir" -p 5544 -U postgres -q -c "create role textdesk login password 'secret'" -c "create database textdesk owner textdesk"
url=postgres://textdesk:secret@127.0.0.1:5544/textdesk

# 2. Two instances. init-db once (the instances would also migrate, once between them).
npm run --silent build
DATABASE_URL=$url node dist/scripts/init-db.js
DATABASE_URL=$url AGENT_PASSWORD="correct horse battery" node dist/scripts/agent.js add --email ada@example.com --name "Ada Admin" --admin
for port in 3101 3102; do
  env NODE_ENV=production DATABASE_URL=$url PORT=$port HOST=127.0.0.1 PUBLIC_URL=http://localhost:8088 \
    TRUST_PROXY=1 SMS_CHANNEL=simulator ALLOW_SIMULATOR_IN_PRODUCTION=true ALLOW_UNSIGNED_WEBHOOKS=true LOG_LEVEL=warn \
    node dist/src/server.js >"$dir/instance-$port.log" 2>&1 &
  pids+=($!)
done

# 3. nginx from deploy/nginx.conf: the same locations, plain HTTP on 8088, the two local upstreams.
sed -e 's/server 10\.0\.0\.11:3000/server 127.0.0.1:3101/' -e 's/server 10\.0\.0\.12:3000/server 127.0.0.1:3102/' \
    -e 's/listen 443 ssl;/listen 127.0.0.1:8088;/' -e 's/server_name support\.example\.com;/server_name localhost;/' \
    deploy/nginx.conf >"$dir/site.conf"
cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 1024; }
http {
  log_format upstream '\$request \$status upstream=\$upstream_addr';
  access_log $dir/nginx-access.log upstream;
  client_body_temp_path $dir/nginx-body;
  proxy_temp_path $dir/nginx-proxy;
  include $dir/site.conf;
}
EOF
nginx -c "$dir/nginx.conf"

for port in 3101 3102 8088; do
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
done
echo "Textdesk on PostgreSQL, two instances behind nginx: http://localhost:8088 (ada@example.com / correct horse battery)"
echo "Instance logs and the access log are in $dir. Ctrl-C stops everything."
wait "${pids[@]}"
