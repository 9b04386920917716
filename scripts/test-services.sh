#!/usr/bin/env bash
# Run a command (the test suite) with a PostgreSQL server and an MQTT broker available.
#
#   scripts/test-services.sh COMMAND [ARGS...]
#
# For each service, the URL comes from the environment, with the defaults tests/conftest.py uses:
#   CLAPAS_TEST_PG    postgresql://postgres@127.0.0.1:5432/test
#   CLAPAS_TEST_MQTT  mqtt://127.0.0.1:1883
# If something already answers on the URL's host and port (CI, or a developer's own server), it is used as is.
# Otherwise a throwaway instance is started on exactly that host and port, in a temporary directory under
# var/ (gitignored): PostgreSQL with trust authentication and the URL's database and user, Mosquitto with
# anonymous access. Missing binaries are installed with apt-get (packages `postgresql`, `mosquitto`, and
# `chromium` for the dashboard tests).
# Both URLs are exported, COMMAND runs, whatever was started is stopped and its directory removed (also on
# failure or Ctrl-C), and the script exits with COMMAND's exit status.
#
# Once COMMAND has run, the last line printed is "test-services: command exited with status N" (.ci/run
# reads it). Exit status 1 without that line means a service could not be provided.
#
# COMMAND runs in the foreground (stdin and Ctrl-C reach it, `pytest --pdb` works); a SIGTERM sent to this
# script alone is acted on once COMMAND returns. Leftovers of an earlier run that was killed (SIGKILL,
# reboot) are stopped and removed at start. Two runs in parallel are not supported when they need
# throwaway services on the same ports.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR="$ROOT/var"
RUN_PREFIX="test-services."

export CLAPAS_TEST_PG="${CLAPAS_TEST_PG:-postgresql://postgres@127.0.0.1:5432/test}"
export CLAPAS_TEST_MQTT="${CLAPAS_TEST_MQTT:-mqtt://127.0.0.1:1883}"

RUN_DIR=""      # this run's directory under var/, created on first need
PG_ROOT=""      # directory holding the throwaway cluster (under RUN_DIR, or under /tmp, see pg_root)
PG_BIN=""       # PostgreSQL server binaries (initdb, pg_ctl, ...)
PG_DATA=""      # set once a cluster was initialised by us
MQTT_PID=""     # set once a broker was started by us
STATUS=""       # COMMAND's exit status, once it has run
APT_UPDATED=""

say() { printf 'test-services: %s\n' "$*" >&2; }
die() {
    say "ERROR: $*"
    exit 1
}

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

# ---------------------------------------------------------------------------------------------------- helpers

# parse_url URL DEFAULT_PORT: sets U_USER, U_HOST, U_PORT, U_DB (scheme://[user[:password]@]host[:port][/db][?query])
parse_url() {
    local url=$1 rest hostpart hostport
    rest=${url#*://}
    [[ $rest != "$url" ]] || return 1
    hostpart=${rest%%[/?]*}
    U_DB=""
    if [[ $rest == */* ]]; then
        U_DB=${rest#*/}
        U_DB=${U_DB%%\?*}
    fi
    U_USER=""
    hostport=$hostpart
    if [[ $hostpart == *@* ]]; then
        U_USER=${hostpart%@*}
        U_USER=${U_USER%%:*}
        hostport=${hostpart##*@}
    fi
    if [[ $hostport =~ ^\[([^]]+)\](:([0-9]+))?$ ]] || [[ $hostport =~ ^([^:]*)(:([0-9]+))?$ ]]; then
        U_HOST=${BASH_REMATCH[1]:-127.0.0.1}
        U_PORT=${BASH_REMATCH[3]:-$2}
    else
        return 1
    fi
}

# answers HOST PORT: does something accept TCP connections there?
answers() {
    if command -v timeout >/dev/null; then
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
    else
        bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
    fi
}

is_local() { [[ $1 == localhost || $1 == 127.* || $1 == ::1 ]]; }

# as_pg CMD...: PostgreSQL refuses to run as root; as root, run as the `postgres` user.
as_pg() {
    if [[ $EUID -ne 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

apt_install() {
    local sudo=()
    if [[ $EUID -ne 0 ]]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            die "package(s) $* missing; install them (sudo apt-get install $*) or set the service URL to a running server"
        fi
    fi
    command -v apt-get >/dev/null || die "package(s) $* missing and apt-get not available; install them by hand"
    if [[ -z $APT_UPDATED ]]; then
        say "apt-get update"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

new_run_dir() {
    [[ -z $RUN_DIR ]] || return 0
    mkdir -p "$VAR"
    RUN_DIR=$(mktemp -d "$VAR/${RUN_PREFIX}XXXXXX")
    chmod 755 "$RUN_DIR" # PostgreSQL runs as another user when we are root
    echo $$ >"$RUN_DIR/owner.pid"
}

# ---------------------------------------------------------------------------------------------------- cleanup

stop_pg() { # stop_pg DATADIR
    [[ -f $1/postmaster.pid ]] || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        as_pg "$PG_BIN/pg_ctl" -D "$1" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

stop_mqtt() { # stop_mqtt PID
    kill "$1" 2>/dev/null || return 0
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $MQTT_PID ]]; then
        say "stopping the throwaway Mosquitto (pid $MQTT_PID)"
        stop_mqtt "$MQTT_PID"
        wait "$MQTT_PID" 2>/dev/null || true
    fi
    if [[ -n $PG_DATA ]]; then
        say "stopping the throwaway PostgreSQL"
        stop_pg "$PG_DATA"
    fi
    [[ -z $PG_ROOT ]] || rm -rf "$PG_ROOT"
    [[ -z $RUN_DIR ]] || rm -rf "$RUN_DIR"
    [[ -z $STATUS ]] || say "command exited with status $STATUS"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Directories of earlier runs whose script is gone (killed): stop what they left running, remove them.
clean_stale_runs() {
    local dir owner pid data
    for dir in "$VAR/$RUN_PREFIX"*; do
        [[ -d $dir ]] || continue
        owner=$(cat "$dir/owner.pid" 2>/dev/null || true)
        if [[ -n $owner ]] && kill -0 "$owner" 2>/dev/null &&
            tr '\0' ' ' <"/proc/$owner/cmdline" 2>/dev/null | grep -q test-services; then
            continue # another run is live
        fi
        say "removing leftovers of an earlier run: $dir"
        pid=$(cat "$dir/mosquitto.pid" 2>/dev/null || true)
        if [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$dir/mosquitto.conf"; then
            stop_mqtt "$pid"
        fi
        data=$(cat "$dir/pg.datadir" 2>/dev/null || true)
        if [[ -n $data && -f $data/postmaster.pid ]]; then
            PG_BIN=${PG_BIN:-$(find_pg_bin || true)}
            [[ -z $PG_BIN ]] || stop_pg "$data"
        fi
        [[ -z $data ]] || rm -rf "$(dirname "$data")"
        rm -rf "$dir"
    done
}

# ---------------------------------------------------------------------------------------------------- PostgreSQL

find_pg_bin() {
    local d
    while read -r d; do
        [[ -x $d/initdb && -x $d/pg_ctl ]] && {
            echo "$d"
            return 0
        }
    done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r)
    d=$(command -v initdb 2>/dev/null) && [[ -x $(dirname "$d")/pg_ctl ]] && {
        dirname "$d"
        return 0
    }
    return 1
}

install_postgresql() {
    # Debian's postgresql package creates and starts a system cluster ("main") on 5432 with password
    # authentication, which would then shadow the throwaway one. Switch that off for the install only.
    local conf=/etc/postgresql-common/createcluster.conf saved="" rc=0
    dpkg-query -W -f '${Status}' postgresql-common 2>/dev/null | grep -q 'ok installed' ||
        apt_install postgresql-common
    if [[ -f $conf ]]; then
        saved=$(mktemp)
        cat "$conf" >"$saved"
        say "installing without creating a system cluster (create_main_cluster = false during the install)"
        { grep -v '^[[:space:]]*create_main_cluster' "$saved" || true; echo "create_main_cluster = false"; } |
            as_root tee "$conf" >/dev/null
    fi
    ( apt_install postgresql ) || rc=$?
    if [[ -n $saved ]]; then
        as_root tee "$conf" <"$saved" >/dev/null
        rm -f "$saved"
    fi
    return "$rc"
}

# Directory for the cluster: under var/ when the postgres user can reach it, else under /tmp.
pg_root() {
    PG_ROOT="$RUN_DIR/pg"
    mkdir -p "$PG_ROOT"
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$PG_ROOT"
        if ! as_pg test -w "$PG_ROOT"; then
            rm -rf "$PG_ROOT"
            PG_ROOT=$(mktemp -d /tmp/clapas-test-pg.XXXXXX)
            chmod 755 "$PG_ROOT"
            chown postgres: "$PG_ROOT"
            say "the postgres user cannot reach $RUN_DIR; cluster goes to $PG_ROOT"
        fi
    fi
}

start_postgres() {
    local host=$1 port=$2 user=$3 db=$4
    is_local "$host" || die "PostgreSQL does not answer at $host:$port, and a throwaway one can only run locally"
    if ! PG_BIN=$(find_pg_bin); then
        say "PostgreSQL server binaries (initdb, pg_ctl) not found"
        install_postgresql
        PG_BIN=$(find_pg_bin) || die "PostgreSQL binaries still not found after installing"
        if answers "$host" "$port"; then
            say "PostgreSQL answers at $host:$port since the install; using it"
            return 0
        fi
    fi
    if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        die "running as root, PostgreSQL must run as the 'postgres' user, which does not exist"
    fi
    new_run_dir
    pg_root
    PG_DATA="$PG_ROOT/data"
    echo "$PG_DATA" >"$RUN_DIR/pg.datadir"
    say "starting a throwaway PostgreSQL ($("$PG_BIN/postgres" --version 2>/dev/null | awk '{print $3}')) on $host:$port in $PG_ROOT"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U "$user" -E UTF8 --no-locale --no-sync \
        >"$PG_ROOT/initdb.log" 2>&1; then
        tail -n 30 "$PG_ROOT/initdb.log" >&2
        PG_DATA=""
        die "initdb failed"
    fi
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# throwaway test server (scripts/test-services.sh): TCP only, no durability
listen_addresses = '$host'
port = $port
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_ROOT/server.log" -w -t 60 start >/dev/null 2>&1; then
        tail -n 30 "$PG_ROOT/server.log" >&2 2>/dev/null || true
        die "PostgreSQL did not start (is port $port taken by something that does not accept connections?)"
    fi
    if [[ -n $db && $db != postgres && $db != template1 ]]; then
        PGCONNECT_TIMEOUT=5 "$PG_BIN/createdb" -h "$host" -p "$port" -U "$user" -w -- "$db" ||
            die "could not create database $db"
    fi
    say "PostgreSQL ready: $CLAPAS_TEST_PG"
}

# A server answers but may still refuse us (wrong auth, no such database): say so early, clearly.
check_existing_postgres() {
    local psql out
    psql=$(command -v psql 2>/dev/null) || return 0
    if ! out=$(PGCONNECT_TIMEOUT=5 "$psql" -X -w -q -tA -d "$CLAPAS_TEST_PG" -c 'select 1' 2>&1 </dev/null); then
        say "WARNING: PostgreSQL answers at $1:$2 but connecting to $CLAPAS_TEST_PG fails:"
        printf '    %s\n' "$out" >&2
        say "WARNING: tests needing PostgreSQL will fail; fix the server or point CLAPAS_TEST_PG at a free port"
    fi
}

# ---------------------------------------------------------------------------------------------------- Mosquitto

find_mosquitto() {
    command -v mosquitto 2>/dev/null && return 0
    [[ -x /usr/sbin/mosquitto ]] && echo /usr/sbin/mosquitto && return 0
    return 1
}

start_mosquitto() {
    local host=$1 port=$2 bin conf i
    is_local "$host" || die "MQTT broker does not answer at $host:$port, and a throwaway one can only run locally"
    if ! bin=$(find_mosquitto); then
        say "mosquitto not found"
        apt_install mosquitto
        bin=$(find_mosquitto) || die "mosquitto still not found after installing"
        if answers "$host" "$port"; then
            say "an MQTT broker answers at $host:$port since the install (the system service); using it"
            return 0
        fi
    fi
    new_run_dir
    conf="$RUN_DIR/mosquitto.conf"
    cat >"$conf" <<EOF
# throwaway test broker (scripts/test-services.sh)
listener $port $host
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
EOF
    chmod 644 "$conf"
    say "starting a throwaway Mosquitto ($("$bin" -h 2>/dev/null | head -n 1 | awk '{print $NF}')) on $host:$port"
    "$bin" -c "$conf" >"$RUN_DIR/mosquitto.log" 2>&1 </dev/null &
    MQTT_PID=$!
    echo "$MQTT_PID" >"$RUN_DIR/mosquitto.pid"
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$MQTT_PID" 2>/dev/null; then
            MQTT_PID=""
            tail -n 30 "$RUN_DIR/mosquitto.log" >&2
            die "Mosquitto exited at start"
        fi
        answers "$host" "$port" && break
        sleep 0.1
    done
    answers "$host" "$port" || die "Mosquitto does not answer on $host:$port after 10 s"
    say "MQTT broker ready: $CLAPAS_TEST_MQTT"
}

# ---------------------------------------------------------------------------------------------------- main

clean_stale_runs

parse_url "$CLAPAS_TEST_PG" 5432 || die "cannot read CLAPAS_TEST_PG=$CLAPAS_TEST_PG (want postgresql://user@host:port/db)"
pg_host=$U_HOST pg_port=$U_PORT pg_user=${U_USER:-${PGUSER:-$(id -un)}} pg_db=${U_DB:-$pg_user}
parse_url "$CLAPAS_TEST_MQTT" 1883 || die "cannot read CLAPAS_TEST_MQTT=$CLAPAS_TEST_MQTT (want mqtt://host:port)"
mqtt_host=$U_HOST mqtt_port=$U_PORT

if answers "$pg_host" "$pg_port"; then
    say "PostgreSQL answers at $pg_host:$pg_port; using it ($CLAPAS_TEST_PG)"
    check_existing_postgres "$pg_host" "$pg_port"
else
    say "nothing answers at $pg_host:$pg_port ($CLAPAS_TEST_PG)"
    start_postgres "$pg_host" "$pg_port" "$pg_user" "$pg_db"
fi

if answers "$mqtt_host" "$mqtt_port"; then
    say "an MQTT broker answers at $mqtt_host:$mqtt_port; using it ($CLAPAS_TEST_MQTT)"
else
    say "nothing answers at $mqtt_host:$mqtt_port ($CLAPAS_TEST_MQTT)"
    start_mosquitto "$mqtt_host" "$mqtt_port"
fi

# The dashboard tests drive a headless Chromium: install it when missing (a failed install is not fatal, those
# tests then skip and say why). CLAPAS_CHROMIUM names another browser binary.
if [[ -z ${CLAPAS_CHROMIUM:-} ]] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    say "no Chromium for the dashboard tests"
    ( apt_install chromium ) || say "Chromium could not be installed: the dashboard tests will skip"
fi

# The partitioned-mode tests (issue 15) use RabbitMQ: a throwaway virtual host of the broker at CLAPAS_TEST_AMQP
# when one answers, else private nodes of this machine's rabbitmq-server, which they start and stop themselves.
if ! command -v rabbitmq-server >/dev/null && [[ ! -x /usr/sbin/rabbitmq-server ]]; then
    say "rabbitmq-server not found (partitioned-mode tests)"
    apt_install rabbitmq-server
fi

# The broker contract also runs against NATS JetStream: the server at CLAPAS_TEST_NATS when one answers, else a
# private nats-server the tests start themselves.
if ! command -v nats-server >/dev/null && [[ ! -x /usr/sbin/nats-server ]]; then
    say "nats-server not found (broker contract tests)"
    apt_install nats-server || say "nats-server could not be installed: the NATS tests will fail"
fi

say "running: $*"
rc=0
"$@" || rc=$?
STATUS=$rc
exit "$rc"
