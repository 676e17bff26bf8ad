# Sourced by scripts/demo.sh and scripts/bench.sh: a throwaway PostgreSQL
# in a temp dir, with scripts/central/schema.sql loaded.
#
#   pg_throwaway_start      # sets PG_URL, PG_PORT, PG_DIR; server log in $PG_DIR/postgres.log
#   pg_throwaway_psql SQL   # runs SQL on the database, -At output
#   pg_throwaway_stop       # stops the server and removes the dir
#   pg_throwaway_gateway BIN SITE LOG
#                           # `BIN serve` on it (GW_PORT, GW_PID; log in LOG)
#                           # and a new site SITE's token in GW_TOKEN
#
# initdb refuses root, so as root everything runs as the `postgres` user
# (the Debian postgresql package creates it; scripts/setup.sh installs it).
# Binaries come from the newest /usr/lib/postgresql/*/bin, else PATH.

pg_throwaway_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  [ -x "$d/initdb" ] || { echo "PostgreSQL not installed: run scripts/setup.sh" >&2; return 1; }
  echo "$d"
}

pg_throwaway_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_throwaway_start() {
  local bin
  bin=$(pg_throwaway_bin) || return 1
  PG_BIN=$bin
  # /tmp, not $TMPDIR: root's TMPDIR may be out of the postgres user's reach.
  PG_DIR=$(mktemp -d /tmp/edge-pg.XXXXXX)
  chmod 755 "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
  PG_PORT=${PG_PORT:-$(( 20000 + RANDOM % 20000 ))}
  pg_throwaway_as "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 \
    >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  pg_throwaway_as "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on}" \
    start >/dev/null || { cat "$PG_DIR/postgres.log" >&2; return 1; }
  "$bin/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "CREATE DATABASE edge" >/dev/null
  "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d edge \
    -f scripts/central/schema.sql >/dev/null
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/edge"
}

pg_throwaway_psql() {
  "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d edge -c "$1"
}

pg_throwaway_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  pg_throwaway_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}

pg_throwaway_gateway() {
  GW_PORT=$(( PG_PORT + 1 ))
  "$1" serve --listen "127.0.0.1:$GW_PORT" --database-url "$PG_URL" --log-level warn 2>"$3" &
  GW_PID=$!
  GW_TOKEN=$("$1" add-site "$2" --database-url "$PG_URL" 2>/dev/null)
}
