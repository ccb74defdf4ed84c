# shellcheck shell=bash
# Shared helpers for scripts/run, scripts/test, scripts/build-images and
# scripts/start-dockerd. Source it; do not run it.
#
# Functions:
#   bg_log MSG...            progress message on stderr, prefixed "[bg]"
#   bg_die MSG...            message on stderr, exit 1
#   bg_require_root WHAT     exit with a clear message unless running as root
#   bg_install_deps          install missing Debian packages (fast when none is)
#   bg_start_dockerd         make sure a Docker engine answers (start one if needed)
#   bg_build                 configure and build with CMake into $BG_BUILD_DIR
#   bg_build_images [ARGS]   run scripts/build-images ARGS
#   bg_docker ARGS...        the docker CLI, pinned to Engine API 1.41
#   bg_run_logged LOG CMD... run CMD with its output appended to LOG; on failure
#                            print the log's tail and return CMD's status
#
# Environment (all optional):
#   BG_BUILD_DIR    build directory (default $ROOT/build)
#   BG_BUILD_TYPE   CMAKE_BUILD_TYPE (default RelWithDebInfo)
#   BG_CMAKE_ARGS   extra cmake configure arguments, split on whitespace
#   BG_VERBOSE=1    stream apt/debootstrap output instead of only logging it
#   DOCKER_HOST     if set to anything but unix:///var/run/docker.sock, the
#                   engine there is only checked, never started
#   DOCKER_API_VERSION  API version for the docker CLI (default 1.41)

set -euo pipefail

# Repository root: the parent of the directory holding this file.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BG_BUILD_DIR="${BG_BUILD_DIR:-$ROOT/build}"
export BG_BUILD_DIR

BG_DOCKERD_LOG=/var/log/bg-dockerd.log
BG_DEFAULT_SOCK=/var/run/docker.sock

BG_DEPS=(
    build-essential cmake pkg-config git ca-certificates curl python3
    docker.io debootstrap
    liblua5.4-dev libcurl4-openssl-dev libmicrohttpd-dev libcjson-dev
    libcmocka-dev libhiredis-dev libarchive-dev
    musl-tools redis-server clang libclang-rt-14-dev
)

bg_log() {
    printf '[bg] %s\n' "$*" >&2
}

bg_die() {
    printf '[bg] ERROR: %s\n' "$*" >&2
    exit 1
}

bg_require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        bg_die "$1 must run as root (it installs packages, starts dockerd and builds images); try: sudo $1"
    fi
}

# bg_run_logged LOGFILE CMD [ARGS...]
bg_run_logged() {
    local log="$1"
    shift
    mkdir -p "$(dirname "$log")"
    local rc=0
    if [ "${BG_VERBOSE:-0}" = 1 ]; then
        "$@" 2>&1 | tee -a "$log" >&2 || rc=$?
    else
        "$@" >>"$log" 2>&1 || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
        bg_log "command failed (exit $rc): $*"
        bg_log "last lines of $log:"
        tail -n 40 "$log" | sed 's/^/[bg]   | /' >&2 || true
    fi
    return "$rc"
}

# ---------------------------------------------------------------------------
# Packages

bg_missing_packages() {
    local status
    # Packages dpkg does not know at all are absent from the output.
    status="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${BG_DEPS[@]}" 2>/dev/null || true)"
    local p
    for p in "${BG_DEPS[@]}"; do
        if ! awk -v p="$p" '$1 == p && $2 == "ii" { found = 1 } END { exit !found }' <<<"$status"; then
            printf '%s\n' "$p"
        fi
    done
}

bg_install_deps() {
    local missing=()
    local p
    while IFS= read -r p; do
        [ -n "$p" ] && missing+=("$p")
    done < <(bg_missing_packages)

    if [ "${#missing[@]}" -eq 0 ]; then
        bg_log "deps: all ${#BG_DEPS[@]} packages present"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        bg_die "deps: missing packages (${missing[*]}) and not root: cannot install them"
    fi
    local t0=$SECONDS log=/var/log/bg-apt.log
    bg_log "deps: installing ${#missing[@]} missing packages: ${missing[*]} (log: $log)"
    bg_log "deps: apt-get update"
    # Unreachable third-party sources make update complain; that is not fatal.
    bg_run_logged "$log" env DEBIAN_FRONTEND=noninteractive apt-get update || \
        bg_log "deps: apt-get update reported errors (ignored; the install decides)"
    bg_log "deps: apt-get install"
    bg_run_logged "$log" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}" || \
        bg_die "deps: apt-get install failed"
    local still
    still="$(bg_missing_packages | tr '\n' ' ')"
    if [ -n "${still// /}" ]; then
        bg_die "deps: still missing after install: $still"
    fi
    bg_log "deps: done in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------
# Docker

# The docker.io CLI (speaks API 1.41) in preference to any newer one on PATH.
bg_docker_cli() {
    if [ -x /usr/bin/docker ]; then
        printf '%s\n' /usr/bin/docker
    elif command -v docker >/dev/null 2>&1; then
        command -v docker
    else
        bg_die "no docker CLI found (install docker.io)"
    fi
}

bg_docker() {
    local cli
    cli="$(bg_docker_cli)"
    DOCKER_API_VERSION="${DOCKER_API_VERSION:-1.41}" "$cli" "$@"
}

# bg_docker_ping: succeeds when the engine named by DOCKER_HOST (or the
# default socket) answers GET /_ping with OK.
bg_docker_ping() {
    local host="${DOCKER_HOST:-unix://$BG_DEFAULT_SOCK}" out
    case "$host" in
        unix://*)
            out="$(curl -s --max-time 5 --unix-socket "${host#unix://}" http://localhost/_ping 2>/dev/null)" || return 1
            ;;
        tcp://*)
            if [ -n "${DOCKER_TLS_VERIFY:-}" ]; then
                bg_docker version >/dev/null 2>&1
                return
            fi
            out="$(curl -s --max-time 5 "http://${host#tcp://}/_ping" 2>/dev/null)" || return 1
            ;;
        *)
            bg_docker version >/dev/null 2>&1
            return
            ;;
    esac
    [ "$out" = OK ]
}

bg_start_dockerd() {
    if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix://$BG_DEFAULT_SOCK" ]; then
        if bg_docker_ping; then
            bg_log "dockerd: engine at DOCKER_HOST=$DOCKER_HOST answers"
            return 0
        fi
        bg_die "dockerd: DOCKER_HOST=$DOCKER_HOST does not answer /_ping (not starting a local daemon for a remote DOCKER_HOST)"
    fi

    if bg_docker_ping; then
        bg_log "dockerd: already running"
        return 0
    fi

    # A daemon that is still starting: wait for it instead of starting a second.
    local pid=""
    if [ -r /var/run/docker.pid ]; then
        pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
    fi
    # A killed daemon may linger as a zombie (its parent never reaps it):
    # that one will never answer, so it counts as gone.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && \
        [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = dockerd ] && \
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)" != Z ]; then
        bg_log "dockerd: pid $pid exists but does not answer yet; waiting"
    else
        if [ "$(id -u)" -ne 0 ]; then
            if [ -S "$BG_DEFAULT_SOCK" ]; then
                bg_die "dockerd: $BG_DEFAULT_SOCK does not answer (no permission?) and not root: cannot start dockerd"
            fi
            bg_die "dockerd: not running and not root: cannot start it"
        fi
        # A daemon killed with SIGKILL leaves its pid file, and may linger as
        # a zombie whose /proc entry makes a new dockerd refuse to start
        # ("pid file found"): the file names no live daemon, so it goes.
        rm -f /var/run/docker.pid
        # Its containerd outlives a killed dockerd and keeps the socket the
        # new daemon's own containerd needs: stop it first (the containers'
        # shims are separate processes and keep running).
        local cpid
        cpid="$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)"
        if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
            bg_log "dockerd: stopping the containerd a dead dockerd left (pid $cpid)"
            kill -TERM "$cpid" 2>/dev/null || true
            local t1=$SECONDS
            while kill -0 "$cpid" 2>/dev/null && [ $((SECONDS - t1)) -lt 10 ]; do sleep 0.2; done
            kill -KILL "$cpid" 2>/dev/null || true
        fi
        local dockerd
        dockerd="$(command -v dockerd 2>/dev/null || true)"
        [ -n "$dockerd" ] || dockerd=/usr/sbin/dockerd
        [ -x "$dockerd" ] || bg_die "dockerd: $dockerd not found (install docker.io)"
        bg_log "dockerd: starting $dockerd (log: $BG_DOCKERD_LOG)"
        mkdir -p "$(dirname "$BG_DOCKERD_LOG")"
        printf '=== [bg] starting %s at %s\n' "$dockerd" "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" >>"$BG_DOCKERD_LOG"
        # A session of its own, so that signals to our process group (Ctrl-C)
        # do not reach the engine; no inherited fds beyond the log.
        setsid "$dockerd" </dev/null >>"$BG_DOCKERD_LOG" 2>&1 9>&- &
        pid=$!
    fi

    local t0=$SECONDS why="no answer on $BG_DEFAULT_SOCK after 60 s"
    while [ $((SECONDS - t0)) -lt 60 ]; do
        if bg_docker_ping; then
            bg_log "dockerd: answering after $((SECONDS - t0)) s"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null && ! pgrep -x dockerd >/dev/null 2>&1; then
            why="dockerd exited without answering"
            break
        fi
        sleep 0.25
    done
    bg_log "dockerd: $why; last lines of $BG_DOCKERD_LOG:"
    tail -n 30 "$BG_DOCKERD_LOG" 2>/dev/null | sed 's/^/[bg]   | /' >&2 || true
    bg_die "dockerd did not start"
}

# The tests exercise --gvisor/--runtime for real: gVisor cannot be installed
# here, so the name "runsc" is registered as an alias of runc. Only the
# switch is tested, not gVisor's sandbox (docs/SECURITY.md says so).
bg_register_test_runtime() {
    local conf=/etc/docker/daemon.json
    if bg_docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
        return 0
    fi
    if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix://$BG_DEFAULT_SOCK" ]; then
        bg_log "runtime: remote engine without a runsc runtime; the runtime test will fail"
        return 0
    fi
    mkdir -p /etc/docker
    python3 - "$conf" <<'PY'
import json, os, sys
path = sys.argv[1]
conf = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
conf.setdefault("runtimes", {})["runsc"] = {"path": "/usr/sbin/runc"}
json.dump(conf, open(path, "w"), indent=2)
PY
    local pid
    pid="$(pgrep -x dockerd | head -n1 || true)"
    [ -n "$pid" ] && kill -HUP "$pid"
    local t0=$SECONDS
    while [ $((SECONDS - t0)) -lt 20 ]; do
        if bg_docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
            bg_log "runtime: runsc registered (an alias of runc, for tests)"
            return 0
        fi
        sleep 0.25
    done
    bg_log "runtime: could not register runsc; the runtime test will fail"
}

# ---------------------------------------------------------------------------
# Build

bg_build() {
    local extra=()
    if [ -n "${BG_CMAKE_ARGS:-}" ]; then
        read -r -a extra <<<"$BG_CMAKE_ARGS"
    fi
    local t0=$SECONDS
    bg_log "build: configuring $BG_BUILD_DIR (${BG_BUILD_TYPE:-RelWithDebInfo}${extra[*]:+, ${extra[*]}})"
    cmake -S "$ROOT" -B "$BG_BUILD_DIR" \
        -DCMAKE_BUILD_TYPE="${BG_BUILD_TYPE:-RelWithDebInfo}" "${extra[@]}"
    bg_log "build: compiling with $(nproc) jobs"
    cmake --build "$BG_BUILD_DIR" -j"$(nproc)"
    bg_log "build: done in $((SECONDS - t0)) s"
}

bg_build_images() {
    "$ROOT/scripts/build-images" "$@"
}
