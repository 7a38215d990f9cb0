# Podman helpers for botmaker's scripts. Source it; do not run it.
# Installs Podman 4.3 (Debian) with catatonit, configures it for this machine kind (no systemd, cgroup v1, a
# hard nofile limit below Podman's default), serves its Docker-compatible API on a unix socket, and loads the
# test images from the Docker engine. PITFALLS.md "Podman 4.3" lists how its API differs from Docker's.

PODMAN_SOCK="${PODMAN_SOCK:-/run/podman/podman.sock}"
PODMAN_SERVICE_PIDFILE="${PODMAN_SERVICE_PIDFILE:-/run/podman/service.pid}"
PODMAN_SERVICE_LOG="${PODMAN_SERVICE_LOG:-/tmp/botmaker-podman.log}"
# A drop-in that every podman process reads (the service, and `podman load`/`podman healthcheck run` by hand).
PODMAN_CONF_DROPIN="${PODMAN_CONF_DROPIN:-/etc/containers/containers.conf.d/50-botmaker.conf}"
# Docker treats 127.0.0.0/8 registries as insecure (plain HTTP); Podman only those listed here. A host without a port
# matches every port. The service reads this once: write it before it starts.
PODMAN_REGISTRIES_DROPIN="${PODMAN_REGISTRIES_DROPIN:-/etc/containers/registries.conf.d/50-botmaker.conf}"
export PODMAN_SOCK

# lib.sh gives log, ensure_test_image and ensure_gateway_image; it sits next to this file.
if ! declare -F ensure_test_image >/dev/null 2>&1; then
    _podman_sh_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    for _lib in "$_podman_sh_dir/lib.sh"; do
        [ -f "$_lib" ] && { . "$_lib"; break; }
    done
    unset _podman_sh_dir _lib
fi
declare -F log >/dev/null 2>&1 || log() { printf '==> %s\n' "$*" >&2; }

podman_answers() {
    [ -S "$PODMAN_SOCK" ] &&
        curl -sf --max-time 2 --unix-socket "$PODMAN_SOCK" http://d/_ping >/dev/null 2>&1
}

# Prints the pid of the service we started, if it still runs (and is still that process).
_podman_service_pid() {
    local pid
    [ -f "$PODMAN_SERVICE_PIDFILE" ] || return 1
    pid=$(cat "$PODMAN_SERVICE_PIDFILE" 2>/dev/null)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'system service' || return 1
    echo "$pid"
}

_podman_install() {
    local missing=()
    command -v podman >/dev/null 2>&1 || missing+=(podman)
    [ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null 2>&1 || missing+=(catatonit)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Install first from the cached lists; update them only when that fails (fresh machine).
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 && return 0
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Podman (rootful) asks runc for nofile=1048576 and fails with "error setting rlimit type 7" when the hard limit
# here is lower: ask for at most what this process may grant. Without systemd Podman picks cgroupfs and the file
# events logger by itself (podman info); say it anyway so a machine with systemd behaves the same.
_podman_write_conf() {
    local nofile nproc hard
    nofile=20000; hard=$(ulimit -Hn); [ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ] && nofile=$hard
    nproc=32768;  hard=$(ulimit -Hu); [ "$hard" != unlimited ] && [ "$hard" -lt "$nproc" ] && nproc=$hard
    local want
    want=$(cat <<EOF
# Written by botmaker scripts/podman.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
init_path = "/usr/libexec/podman/catatonit"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
)
    _podman_write_if_changed "$PODMAN_CONF_DROPIN" "$want" || return 1
    want=$(cat <<'EOF'
# Written by botmaker scripts/podman.sh: local test registries speak plain HTTP, as Docker allows for 127.0.0.0/8.
[[registry]]
location = "127.0.0.1"
insecure = true

[[registry]]
location = "localhost"
insecure = true
EOF
)
    _podman_write_if_changed "$PODMAN_REGISTRIES_DROPIN" "$want"
}

_podman_write_if_changed() {
    [ -f "$1" ] && [ "$(cat "$1")" = "$2" ] && return 0
    mkdir -p "$(dirname "$1")" && printf '%s\n' "$2" > "$1"
}

# Installs Podman when missing and serves its API on $PODMAN_SOCK. Does nothing when the socket answers already.
ensure_podman() {
    podman_answers && return 0
    _podman_install || { log "cannot install podman"; return 1; }
    _podman_write_conf || return 1
    mkdir -p "$(dirname "$PODMAN_SOCK")" "$(dirname "$PODMAN_SERVICE_PIDFILE")"
    local pid
    if ! pid=$(_podman_service_pid); then
        rm -f "$PODMAN_SOCK" "$PODMAN_SERVICE_PIDFILE"
        log "starting podman system service on $PODMAN_SOCK"
        # setsid -f: own session, our shell does not wait for it; the inner bash closes every inherited fd above 2
        # (a test reading our output through a pipe must see EOF), records its pid and becomes the service.
        (cd / && setsid -f bash -c '
            for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && [ -e "/proc/$$/fd/$fd" ] && eval "exec $fd>&-"; done
            echo $$ > "$1"
            exec podman system service --time=0 "unix://$2"' podman-service \
            "$PODMAN_SERVICE_PIDFILE" "$PODMAN_SOCK" </dev/null >>"$PODMAN_SERVICE_LOG" 2>&1)
    fi
    local i
    for i in $(seq 1 60); do
        podman_answers && { log "podman is up (pid $(cat "$PODMAN_SERVICE_PIDFILE" 2>/dev/null))"; return 0; }
        if [ "$i" -gt 2 ] && ! _podman_service_pid >/dev/null; then
            log "podman system service exited"; tail -20 "$PODMAN_SERVICE_LOG" >&2; return 1
        fi
        sleep 0.5
    done
    log "podman did not answer within 30 s"; tail -20 "$PODMAN_SERVICE_LOG" >&2
    return 1
}

# Copies the test images from the Docker engine into Podman. `podman load` names them localhost/botmaker-test/…;
# the compat API still finds "botmaker-test/busybox:latest" (short-name lookup tries localhost/ first).
ensure_podman_images() {
    local img images=("${BOTMAKER_TEST_IMAGE:-botmaker-test/busybox:latest}" "${BOTMAKER_GATEWAY_IMAGE:-botmaker-test/gateway:latest}")
    for img in "${images[@]}"; do
        if ! docker image inspect "$img" >/dev/null 2>&1; then
            ensure_test_image && ensure_gateway_image || { log "cannot build the test images"; return 1; }
        fi
    done
    for img in "${images[@]}"; do
        # Same config digest = same image: skip the copy when Podman has it already.
        local want have
        want=$(docker image inspect --format '{{.Id}}' "$img")
        have=$(podman image inspect --format '{{.Id}}' "localhost/$img" 2>/dev/null)
        [ "sha256:$have" = "$want" ] && continue
        log "loading $img into podman"
        docker save "$img" | podman load -q >/dev/null || { log "podman load of $img failed"; return 1; }
    done
}

# Stops the service process only: containers keep running under their conmon (remove them first if needed), and
# each exec made through the API leaves two conmon processes that exit by themselves 300 s later.
stop_podman() {
    local pid
    if pid=$(_podman_service_pid); then
        log "stopping podman system service (pid $pid)"
        kill "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && { log "podman service ignored TERM; killing it"; kill -9 "$pid" 2>/dev/null; }
    fi
    rm -f "$PODMAN_SERVICE_PIDFILE" "$PODMAN_SOCK"
}
