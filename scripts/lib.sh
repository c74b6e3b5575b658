# shellcheck shell=bash
#
# Helpers shared by scripts/test and scripts/run. Source it; do not run it.
# The caller sets `set -euo pipefail` and QC_REPO (the repository root).
#
# Environment variables read here:
#   QCERT_TEST_PG_URL               use this PostgreSQL (admin database) as is
#   QCERT_TEST_PG_FORCE_THROWAWAY=1 ignore QCERT_TEST_PG_URL and any server on
#                                   127.0.0.1:5432; always start a throwaway
#                                   cluster (used to test that code path)
#   QCERT_PYTHON                    interpreter the venv is made from
#                                   (default: /usr/bin/python3, else python3)

QC_LOG_PREFIX="${QC_LOG_PREFIX:-qcert}"

qc_log() { printf '%s: %s\n' "$QC_LOG_PREFIX" "$*" >&2; }
qc_warn() { printf '%s: warning: %s\n' "$QC_LOG_PREFIX" "$*" >&2; }
qc_die() {
    printf '%s: error: %s\n' "$QC_LOG_PREFIX" "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# Cleanup on exit: handlers run in reverse order of registration, on normal
# exit, on error (set -e) and on SIGINT/SIGTERM/SIGHUP.
QC_CLEANUPS=()
qc__run_cleanups() {
    local rc=$? i
    set +e
    for ((i = ${#QC_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${QC_CLEANUPS[i]}"
    done
    QC_CLEANUPS=()
    return "$rc"
}
qc_on_exit() { QC_CLEANUPS+=("$1"); }
trap qc__run_cleanups EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Privileges and Debian packages

# Run a command as root: directly when we are root, else through sudo
# (sudo -n when there is no terminal to type a password on).
qc_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [ -t 0 ]; then sudo "$@"; else sudo -n "$@"; fi
    else
        qc_die "need root to run '$*', and sudo is not installed; run this script as root"
    fi
}

qc_pkg_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

# qc_apt_install PKG...: install the packages that are not installed yet.
# apt-get update runs only if something is missing.
qc_apt_install() {
    local missing=() p
    command -v dpkg >/dev/null 2>&1 ||
        qc_die "dpkg not found: this script expects Debian (install these by hand: $*)"
    for p in "$@"; do
        qc_pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    qc_log "installing Debian packages: ${missing[*]}"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -y
        -o DPkg::Lock::Timeout=300
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    qc_as_root "${apt[@]}" update </dev/null >&2 ||
        qc_die "apt-get update failed"
    qc_as_root "${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null >&2 ||
        qc_die "apt-get install ${missing[*]} failed"
    for p in "${missing[@]}"; do
        qc_pkg_installed "$p" || qc_die "package $p is still not installed after apt-get install"
    done
}

# ---------------------------------------------------------------------------
# Rust

qc_require_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/nonexistent}/.cargo/bin/cargo" ]; then
        PATH="$HOME/.cargo/bin:$PATH"
        export PATH
    fi
    command -v cargo >/dev/null 2>&1 ||
        qc_die "cargo not found in PATH: install Rust (https://rustup.rs) or add ~/.cargo/bin to PATH"
}

# ---------------------------------------------------------------------------
# Python venv with the pinned test tools

# qc_setup_venv VENV_DIR REQUIREMENTS_FILE
# Creates the venv, or recreates it from scratch when the requirements file
# (or the interpreter) changed since the last successful install. The hash of
# both is kept in VENV_DIR/.qcert-requirements.sha256.
qc_setup_venv() {
    local venv=$1 req=$2 py stamp want have=""
    [ -f "$req" ] || qc_die "requirements file $req not found"
    py=${QCERT_PYTHON:-}
    if [ -z "$py" ]; then
        if [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; else py=$(command -v python3 || true); fi
    fi
    if [ -z "$py" ] || ! "$py" -c 'import sys' 2>/dev/null; then
        qc_die "no working python3 found (install python3-venv, or set QCERT_PYTHON)"
    fi
    stamp="$venv/.qcert-requirements.sha256"
    want=$({
        cat "$req"
        "$py" -c 'import sys; print(sys.executable, sys.version)'
    } | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        have=$(cat "$stamp")
    fi
    if [ "$have" = "$want" ]; then
        qc_log "python venv $venv is up to date"
        return 0
    fi
    qc_log "creating python venv $venv from $py with $(basename "$req")"
    rm -f "$stamp"
    "$py" -m venv --clear "$venv" >&2 ||
        qc_die "'$py -m venv' failed (on Debian: apt-get install python3-venv)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        -r "$req" </dev/null >&2 ||
        qc_die "pip install -r $req into $venv failed"
    "$venv/bin/python" -c 'import pkilint, pyhanko_certvalidator, aiosmtpd, pyhanko' ||
        qc_die "the venv's packages do not import"
    [ -x "$venv/bin/lint_etsi_cert" ] || qc_die "$venv/bin/lint_etsi_cert missing after install"
    [ -x "$venv/bin/pyhanko" ] || qc_die "$venv/bin/pyhanko missing after install"
    printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------------------
# PostgreSQL for the tests
#
# qc_pg_setup sets and exports QCERT_TEST_PG_URL (an admin database on a
# server where the role may CREATE/DROP DATABASE) and sets QC_PG_SOURCE to a
# one-line description. Order:
#   1. QCERT_TEST_PG_URL if set;
#   2. a server on 127.0.0.1:5432 with trust auth, database "test", role
#      postgres or the current user (the first that connects and may create
#      databases);
#   3. a throwaway cluster in a mktemp -d directory, on a free port, stopped
#      and deleted when the calling script exits.
# It never skips: if none works, the script fails.
# It must run in the calling shell (not in $(...)) so that the exit trap and
# the export stay.

QC_PG_SOURCE=""
QC_PG_LOCAL_HOST=127.0.0.1
QC_PG_LOCAL_PORT=5432

qc_pg_forced_throwaway() { [ "${QCERT_TEST_PG_FORCE_THROWAWAY:-0}" = 1 ]; }

# The URL with any password replaced by ***.
qc_pg_redact() {
    printf '%s\n' "$1" | sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#; s#([?&]password=)[^&]*#\1***#'
}

# qc_pg_port_open HOST PORT
qc_pg_port_open() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$1" -p "$2" -t 3 </dev/null
    else
        # No client tools yet: a bare TCP connect tells whether anything listens.
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
    fi
}

qc_pg_initdb_path() {
    local found=()
    shopt -s nullglob
    found=(/usr/lib/postgresql/*/bin/initdb)
    shopt -u nullglob
    [ "${#found[@]}" -gt 0 ] || return 1
    printf '%s\n' "${found[@]}" | sort -V | tail -n 1
}

# True when scripts must install the postgresql package: no URL given, no
# server on 127.0.0.1:5432 (or throwaway forced) and no initdb on the machine.
qc_pg_needs_server_package() {
    if ! qc_pg_forced_throwaway; then
        [ -z "${QCERT_TEST_PG_URL:-}" ] || return 1
        ! qc_pg_port_open "$QC_PG_LOCAL_HOST" "$QC_PG_LOCAL_PORT" || return 1
    fi
    ! qc_pg_initdb_path >/dev/null
}

# qc_pg_check URL: connects, and the role may create databases.
qc_pg_check() {
    local out
    out=$(PGCONNECT_TIMEOUT=5 psql "$1" -w -X -A -t -q -v ON_ERROR_STOP=1 \
        -c 'select rolsuper or rolcreatedb from pg_roles where rolname = current_user' \
        </dev/null 2>&1) || {
        QC_PG_CHECK_ERROR=$out
        return 1
    }
    if [ "$out" != t ]; then
        QC_PG_CHECK_ERROR="connected, but the role may not create databases"
        return 1
    fi
}

qc_pg_setup() {
    QC_PG_CHECK_ERROR=""
    command -v psql >/dev/null 2>&1 ||
        qc_die "psql not found (Debian package postgresql-client)"

    if qc_pg_forced_throwaway; then
        [ -z "${QCERT_TEST_PG_URL:-}" ] ||
            qc_warn "QCERT_TEST_PG_FORCE_THROWAWAY=1: ignoring QCERT_TEST_PG_URL"
        qc_log "QCERT_TEST_PG_FORCE_THROWAWAY=1: starting a throwaway PostgreSQL cluster"
        qc_pg_start_throwaway
        return 0
    fi

    if [ -n "${QCERT_TEST_PG_URL:-}" ]; then
        qc_pg_check "$QCERT_TEST_PG_URL" ||
            qc_die "QCERT_TEST_PG_URL=$(qc_pg_redact "$QCERT_TEST_PG_URL") does not work: $QC_PG_CHECK_ERROR"
        export QCERT_TEST_PG_URL
        QC_PG_SOURCE="QCERT_TEST_PG_URL from the environment: $(qc_pg_redact "$QCERT_TEST_PG_URL")"
        return 0
    fi

    local hp="$QC_PG_LOCAL_HOST:$QC_PG_LOCAL_PORT" user db url me
    if qc_pg_port_open "$QC_PG_LOCAL_HOST" "$QC_PG_LOCAL_PORT"; then
        me=$(id -un)
        for db in test postgres; do
            for user in postgres "$me"; do
                url="postgres://$user@$hp/$db"
                if qc_pg_check "$url"; then
                    export QCERT_TEST_PG_URL="$url"
                    QC_PG_SOURCE="local server $url"
                    return 0
                fi
                qc_log "PostgreSQL at $url not usable: ${QC_PG_CHECK_ERROR//$'\n'/ }"
            done
        done
        qc_warn "a server listens on $hp but no trust-auth role/database worked; starting a throwaway cluster instead"
    else
        qc_log "no PostgreSQL server on $hp; starting a throwaway cluster"
    fi
    qc_pg_start_throwaway
}

# Run a command as the cluster's owner (QC_PG_OWNER), from / so that a
# directory it may not enter is not the working directory.
qc_pg_as_owner() {
    if [ "$QC_PG_OWNER" = "$(id -un)" ]; then
        (cd / && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd / && runuser -u "$QC_PG_OWNER" -- "$@")
    else
        local q
        q=$(printf '%q ' "$@")
        (cd / && su "$QC_PG_OWNER" -s /bin/sh -c "$q")
    fi
}

qc_pg_stop_throwaway() {
    local dir=$1 bindir=$2
    if [ -f "$dir/data/postmaster.pid" ]; then
        qc_log "stopping the throwaway PostgreSQL cluster"
        qc_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            qc_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
            qc_warn "could not stop the PostgreSQL cluster in $dir"
    fi
    rm -rf -- "$dir"
}

qc_pg_start_throwaway() {
    local initdb bindir dir base port tries=0
    initdb=$(qc_pg_initdb_path) ||
        qc_die "no PostgreSQL server usable and no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)"
    bindir=$(dirname "$initdb")

    # PostgreSQL refuses to run as root.
    if [ "$(id -u)" -eq 0 ]; then
        if id -u postgres >/dev/null 2>&1; then QC_PG_OWNER=postgres; else QC_PG_OWNER=nobody; fi
    else
        QC_PG_OWNER=$(id -un)
    fi

    base=${TMPDIR:-/tmp}
    dir=$(mktemp -d "$base/qcert-pg.XXXXXX") || qc_die "mktemp -d in $base failed"
    # shellcheck disable=SC2016 # expanded by eval at exit, with these values
    qc_on_exit "qc_pg_stop_throwaway $(printf '%q' "$dir") $(printf '%q' "$bindir")"
    chmod 700 "$dir"
    if [ "$QC_PG_OWNER" != "$(id -un)" ]; then
        chown "$QC_PG_OWNER" "$dir"
        if ! qc_pg_as_owner test -w "$dir"; then
            # e.g. TMPDIR under /root, which the postgres user cannot enter
            rm -rf -- "$dir"
            dir=$(mktemp -d /tmp/qcert-pg.XXXXXX) || qc_die "mktemp -d in /tmp failed"
            qc_on_exit "qc_pg_stop_throwaway $(printf '%q' "$dir") $(printf '%q' "$bindir")"
            chmod 700 "$dir"
            chown "$QC_PG_OWNER" "$dir"
            qc_pg_as_owner test -w "$dir" || qc_die "user $QC_PG_OWNER cannot write to $dir"
        fi
    fi

    qc_log "initdb ($bindir) as $QC_PG_OWNER in $dir"
    qc_pg_as_owner "$initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale \
        --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        qc_die "initdb failed"
    }

    port=55432
    while :; do
        tries=$((tries + 1))
        [ "$tries" -le 50 ] || qc_die "could not start PostgreSQL on any port in 55432-55481 (log: see above)"
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            port=$((port + 1))
            continue
        fi
        if qc_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
            -o "-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1; then
            break
        fi
        if grep -q 'could not bind\|already in use\|could not create lock file' "$dir/data/server.log" 2>/dev/null; then
            qc_log "port $port taken, trying the next one"
            : >"$dir/data/server.log"
            port=$((port + 1))
            continue
        fi
        tail -n 30 "$dir/data/server.log" >&2 2>/dev/null || true
        qc_die "pg_ctl start of the throwaway cluster failed"
    done

    PGCONNECT_TIMEOUT=10 psql "postgres://postgres@127.0.0.1:$port/postgres" -w -X -q -v ON_ERROR_STOP=1 \
        -c 'create database test' </dev/null >&2 ||
        qc_die "could not create database test in the throwaway cluster"
    export QCERT_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/test"
    qc_pg_check "$QCERT_TEST_PG_URL" ||
        qc_die "throwaway cluster at $QCERT_TEST_PG_URL does not work: $QC_PG_CHECK_ERROR"
    # shellcheck disable=SC2034 # read by the scripts that source this file
    QC_PG_SOURCE="throwaway cluster $QCERT_TEST_PG_URL ($("$bindir/postgres" --version 2>/dev/null || echo "$bindir"), data in $dir, removed at exit)"
}
