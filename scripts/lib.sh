# Shared helpers for botmaker's scripts. Source it; do not run it.
# Installs what the project needs on a fresh Debian machine, starts a Docker
# engine when none answers, and builds the local test image.

BOTMAKER_TEST_IMAGE="${BOTMAKER_TEST_IMAGE:-botmaker-test/busybox:latest}"
export BOTMAKER_TEST_IMAGE
BOTMAKER_GATEWAY_IMAGE="${BOTMAKER_GATEWAY_IMAGE:-botmaker-test/gateway:latest}"
export BOTMAKER_GATEWAY_IMAGE
STARTED_DOCKERD_PID=""

log() { printf '==> %s\n' "$*" >&2; }

need_root_apt() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
    [ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
    command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

docker_answers() {
    curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1
}

# Starts dockerd when no engine answers; records its pid in STARTED_DOCKERD_PID.
ensure_dockerd() {
    if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix:///var/run/docker.sock" ]; then
        docker version >/dev/null 2>&1 && return 0
        log "DOCKER_HOST=$DOCKER_HOST does not answer"; return 1
    fi
    if docker_answers; then return 0; fi
    log "starting dockerd"
    # A stale pid file from an engine that died stops a new one from starting.
    [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null && rm -f /var/run/docker.pid
    start_dockerd_process
    for _ in $(seq 1 120); do
        docker_answers && { log "dockerd is up (pid $STARTED_DOCKERD_PID)"; return 0; }
        kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null || { tail -20 /tmp/botmaker-dockerd.log >&2; return 1; }
        sleep 0.5
    done
    log "dockerd did not answer within 60 s"; tail -20 /tmp/botmaker-dockerd.log >&2
    return 1
}

start_dockerd_process() {
    nohup dockerd >>/tmp/botmaker-dockerd.log 2>&1 &
    STARTED_DOCKERD_PID=$!
}

# Stops the engine this script started (a test may have restarted it: the pid file says which runs now).
stop_started_dockerd() {
    if [ -n "$STARTED_DOCKERD_PID" ]; then
        local pid="$STARTED_DOCKERD_PID"
        [ -f /var/run/docker.pid ] && pid=$(cat /var/run/docker.pid)
        log "stopping the dockerd this script started (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
}

# A tiny image from Debian's static busybox: no registry needed.
ensure_test_image() {
    if docker image inspect "$BOTMAKER_TEST_IMAGE" >/dev/null 2>&1; then return 0; fi
    log "building $BOTMAKER_TEST_IMAGE from busybox-static"
    local root; root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp" "$root/run/secrets" "$root/etc"
    cp /bin/busybox "$root/bin/busybox"
    for applet in sh sleep cat ls echo true false touch test env id kill; do ln -s busybox "$root/bin/$applet"; done
    echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/bin' \
        --change 'CMD ["sh", "-c", "trap \"exit 0\" TERM; while true; do sleep 1 & wait $!; done"]' \
        - "$BOTMAKER_TEST_IMAGE" >/dev/null
    rm -rf "$root"
}

# The OpenClaw gateway stand-in for workload tests: busybox httpd answering /healthz on 18789 as uid 1000, with a
# HEALTHCHECK that fails while /home/node/.openclaw/unhealthy exists, and a start marker written to its state.
ensure_gateway_image() {
    local image="${BOTMAKER_GATEWAY_IMAGE:-botmaker-test/gateway:latest}"
    if docker image inspect "$image" >/dev/null 2>&1; then return 0; fi
    log "building $image (OpenClaw gateway stand-in) from busybox-static"
    local root; root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/www" "$root/home/node/.openclaw"
    cp /bin/busybox "$root/bin/busybox"
    local applet
    for applet in sh httpd wget mkdir date echo cat ls id touch test sleep rm nc true false env timeout; do
        ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnode:x:1000:\n' > "$root/etc/group"
    echo ok > "$root/www/healthz"
    cat > "$root/bin/healthcheck" <<'SH'
#!/bin/sh
test -e /home/node/.openclaw/unhealthy && { echo "unhealthy marker present"; exit 1; }
exec wget -q -O /dev/null http://127.0.0.1:18789/healthz
SH
    cat > "$root/bin/gateway" <<'SH'
#!/bin/sh
echo "started $(date)" >> /home/node/.openclaw/started || echo "cannot write started marker" >&2
exec httpd -f -p 18789 -h /www
SH
    chmod 0755 "$root/bin/healthcheck" "$root/bin/gateway"
    chmod 1777 "$root/tmp"
    chmod 0755 "$root/home/node" "$root/home/node/.openclaw"
    tar -C "$root" --numeric-owner --owner=0 --group=0 --exclude=./home/node -c . > "$root.tar"
    tar -C "$root" --numeric-owner --owner=1000 --group=1000 -r -f "$root.tar" ./home/node
    # --timeout 10s: the probe's clock includes the engine's exec setup, which took over 1 s in CI with ~40 tests running.
    # --start-period omitted: dockerd 20.10 rejects "0s" (Interval "start-period" cannot be less than 1ms); default is 0.
    docker import \
        --change 'ENV PATH=/bin' \
        --change 'USER 1000:1000' \
        --change 'WORKDIR /home/node' \
        --change 'EXPOSE 18789/tcp' \
        --change 'HEALTHCHECK --interval=1s --timeout=10s --retries=2 CMD ["/bin/healthcheck"]' \
        --change 'CMD ["/bin/gateway"]' \
        "$root.tar" "$image" >/dev/null
    local rc=$?
    rm -rf "$root" "$root.tar"
    return $rc
}

# The Swift toolchain lives in /opt/swift on this machine kind.
command -v swift >/dev/null 2>&1 || export PATH="$PATH:/opt/swift/usr/bin"
