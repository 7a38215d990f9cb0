#!/usr/bin/env python3
"""botmaker benchmarks: every figure is measured side by side in the same run and printed as a ratio.

Run through benchmarks/run (it installs, starts the engine, builds). Prints Markdown to stdout.
"""
import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

COMPOSE_TIMEOUT = 300
IMAGE = os.environ.get("BOTMAKER_TEST_IMAGE", "botmaker-test/busybox:latest")
# Like IMAGE, but its process ignores SIGTERM: a stop takes the whole grace period (--init forwards TERM to sh, which ignores it).
STUBBORN_IMAGE = IMAGE.rsplit(":", 1)[0] + "-ignore-term:latest"
STUBBORN_CMD = ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
ENV = ["GREETING=hello", "MODEL=openclaw-small"]
GATEWAY_IMAGE = os.environ.get("BOTMAKER_GATEWAY_IMAGE", "botmaker-test/gateway:latest")
# What botmaker gives every container since spec version 2; the baselines get the same, so they do the same work.
NETWORK = "botmaker"
HARDENING = ["--pids-limit", "512", "--cap-drop", "NET_RAW", "--cap-drop", "NET_ADMIN", "--security-opt", "no-new-privileges",
             "--log-opt", "max-size=10m", "--log-opt", "max-file=3"]

# Everything a run starts, so that main's `finally` can clean it up whatever failed: processes and instance labels.
PROCS = []
LABELS = set()


def spawn(args, **kw):
    proc = subprocess.Popen(args, **kw)
    PROCS.append(proc)
    return proc


def stop_proc(proc, timeout=30):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def track(instance):
    LABELS.add(instance)
    return instance


def cleanup_everything():
    for proc in PROCS:
        stop_proc(proc)
    for instance in sorted(LABELS):
        remove_label(f"botmaker.instance={instance}", check=False)
        # botmaker claims its instance on the engine with a named volume.
        subprocess.run(["docker", "volume", "rm", "-f", f"botmaker.claim.{instance}"], capture_output=True)


def sh(args, check=True, capture=True, **kw):
    r = subprocess.run(args, capture_output=capture, text=True, **kw)
    if check and r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(args)}\n{r.stdout}\n{r.stderr}")
    return r


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def remove_label(label, check=True):
    ids = sh(["docker", "ps", "-aq", "--filter", f"label={label}"], check=check).stdout.split()
    for i in range(0, len(ids), 50):
        sh(["docker", "rm", "-f"] + ids[i:i + 50], check=check)


def count_running(label):
    return len(sh(["docker", "ps", "-q", "--filter", f"label={label}", "--filter", "status=running"]).stdout.split())


class Botmaker:
    def __init__(self, binary, workdir, instance):
        self.binary, self.instance = binary, track(instance)
        self.db = os.path.join(workdir, f"{instance}.db")
        self.secrets = os.path.join(workdir, f"{instance}-secrets")
        self.data = os.path.join(workdir, f"{instance}-data")
        self.args = ["--db", self.db, "--secrets-dir", self.secrets, "--data-dir", self.data, "--instance", instance]
        # A claim left by an earlier, interrupted run would refuse this new database: the bench owns these instances.
        subprocess.run(["docker", "volume", "rm", "-f", f"botmaker.claim.{instance}"], capture_output=True)
        self.run(["migrate"])

    def run(self, args, check=True):
        return sh([self.binary] + args + self.args, check=check)

    def sql(self, statement):
        # On stdin, not argv: one argument is capped at 128 KiB, and 10,000 rows in one INSERT are more.
        return sh(["sqlite3", "-bail", "-cmd", ".timeout 10000", self.db], input=statement).stdout.strip()

    def add(self, names, env=ENV, state="running"):
        env_json = json.dumps(env).replace("'", "''")
        rows = ",".join(f"('{n}', '{IMAGE}', '{env_json}', '{state}')" for n in names)
        self.sql(f"BEGIN; INSERT INTO bots (id, image, environment, desired_state) VALUES {rows}; COMMIT;")

    def secrets_dir(self, name):
        path = os.path.join(self.secrets, name)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path


def docker_run_args(name, instance, secrets, env):
    track(instance)
    args = ["docker", "run", "-d", "--name", name, "--label", "botmaker.managed=true", "--label", f"botmaker.bot-id={name}",
            "--label", f"botmaker.instance={instance}", "--restart", "unless-stopped", "--network", NETWORK, "--init",
            "-v", f"{secrets}:/run/secrets:ro"] + HARDENING
    for e in env:
        args += ["-e", e]
    return args + [IMAGE]


def compose_file(path, names, instance, secrets_root, env):
    track(instance)
    lines = ["version: '2.4'", "services:"]
    for n in names:
        os.makedirs(os.path.join(secrets_root, n), mode=0o700, exist_ok=True)
        lines += [f"  {n}:", f"    image: {IMAGE}", f"    container_name: compose-{n}", "    restart: unless-stopped",
                  f"    network_mode: {NETWORK}", "    init: true", "    pids_limit: 512", "    cap_drop: [NET_RAW, NET_ADMIN]",
                  "    security_opt: [no-new-privileges]", "    logging:", "      driver: json-file",
                  "      options: {max-size: 10m, max-file: '3'}", "    labels:", "      botmaker.managed: 'true'",
                  f"      botmaker.bot-id: {n}", f"      botmaker.instance: {instance}", "    environment:"]
        lines += [f"      - {e}" for e in env]
        lines += ["    volumes:", f"      - {os.path.join(secrets_root, n)}:/run/secrets:ro"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def fmt(seconds):
    return f"{seconds:.2f} s" if seconds != float("inf") else f"hung (> {COMPOSE_TIMEOUT} s)"


def ratio(other, ours):
    if other == float("inf"):
        return "∞"
    return f"{other / ours:.2f}×" if ours > 0 else "n/a"


class UnixHTTP(__import__("http.client").client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        import socket
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def api(method, path, body=None):
    conn = UnixHTTP("/var/run/docker.sock")
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json", "Host": "localhost"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status >= 300 and response.status != 304:
        raise SystemExit(f"{method} {path}: {response.status} {data[:200]}")
    return json.loads(data) if data else None


def api_create_start(work, name, instance, managed="true"):
    """Create + start straight over the Engine API: the same container botmaker makes, no CLI, no bookkeeping.

    managed="false" keeps every running `botmaker run` from reacting to it (they follow events of all managed
    containers, whatever their instance), so a floor measured beside a live service is not slowed by its passes."""
    track(instance)
    secrets = os.path.join(work, instance, name)
    os.makedirs(secrets, exist_ok=True)
    created = api("POST", f"/containers/create?name=floor-{name}", {
        "Image": IMAGE, "Env": ENV,
        "Labels": {"botmaker.managed": managed, "botmaker.bot-id": name, "botmaker.instance": instance},
        "HostConfig": {"Binds": [f"{secrets}:/run/secrets:ro"], "RestartPolicy": {"Name": "unless-stopped"},
                       "NetworkMode": NETWORK, "Init": True, "PidsLimit": 512, "CapDrop": ["NET_RAW", "NET_ADMIN"],
                       "SecurityOpt": ["no-new-privileges"],
                       "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}}})
    api("POST", f"/containers/{created['Id']}/start")


def api_floor(work, names, instance):
    """The engine's own floor: create + start over the API, 4 at a time, no CLI and no bookkeeping."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        seconds = timed(lambda: list(pool.map(lambda name: api_create_start(work, name, instance), names)))
    assert count_running(f"botmaker.instance={instance}") == len(names)
    remove_label(f"botmaker.instance={instance}")
    return seconds


def ensure_network():
    """botmaker's network, as botmaker makes it (labelled, no traffic between containers), so the baselines can join it."""
    if subprocess.run(["docker", "network", "inspect", NETWORK], capture_output=True).returncode != 0:
        sh(["docker", "network", "create", "-o", "com.docker.network.bridge.enable_icc=false", "--label", "botmaker.managed=true", NETWORK])


def gateway_run_args(name, instance, work, port, env):
    """`docker run` of an OpenClaw-like gateway exactly as botmaker makes it: state and config mounts given to uid 1000,
    a published port, a memory limit, the hardening, the secrets mount."""
    track(instance)
    base = os.path.join(work, instance, name)
    for d in ("secrets", "state", "config"):
        os.makedirs(os.path.join(base, d), mode=0o700, exist_ok=True)
    os.chown(os.path.join(base, "state"), 1000, 1000)
    os.chown(os.path.join(base, "config"), 1000, 1000)
    args = ["docker", "run", "-d", "--name", name, "--label", "botmaker.managed=true", "--label", f"botmaker.bot-id={name}",
            "--label", f"botmaker.instance={instance}", "--restart", "unless-stopped", "--network", NETWORK, "--init",
            "-v", f"{base}/secrets:/run/secrets:ro", "--mount", f"type=bind,src={base}/state,dst=/home/node/.openclaw",
            "--mount", f"type=bind,src={base}/config,dst=/home/node/.config/openclaw", "-p", f"127.0.0.1:{port}:18789",
            "--user", "1000:1000", "--memory", "2g"] + HARDENING
    for e in env:
        args += ["-e", e]
    return args + [GATEWAY_IMAGE]


def wait_healthy(label, n, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        healthy = sh(["docker", "ps", "-q", "--filter", f"label={label}", "--filter", "health=healthy"]).stdout.split()
        if len(healthy) == n:
            return
        time.sleep(0.1)
    raise SystemExit(f"{label}: not all {n} healthy within {timeout} s")


def workloads(binary, work, n):
    """OpenClaw-like gateways (two state mounts, a port, uid 1000, 2 GiB, hardening, a token from a secret):
    botmaker's `reconcile --wait` against a `docker run` loop doing the same plus polling `docker ps` for health;
    then an env change on all of them, paced (1 at a time, the default) and unpaced (4), against `docker rm -f` +
    `docker run` sequentially."""
    names = [f"gw{n}-{i:03d}" for i in range(n)]
    results = {}
    inst = f"bench-gwseq{n}"
    label = f"botmaker.instance={inst}"
    ports = list(range(29000, 29000 + n))
    env = ["OPENCLAW_DISABLE_BONJOUR=1", "NODE_OPTIONS=--max-old-space-size=1536", "OPENCLAW_GATEWAY_TOKEN=0123456789abcdef"]

    def loop(env):
        for x, port in zip(names, ports):
            sh(gateway_run_args(f"seq-{x}", inst, work, port, env))
        wait_healthy(label, n)
    results["seq"] = timed(lambda: loop(env))
    def redo():
        for x, port in zip(names, ports):
            sh(["docker", "rm", "-f", f"seq-{x}"])
            sh(gateway_run_args(f"seq-{x}", inst, work, port, env + ["MODEL=large"]))
        wait_healthy(label, n)
    results["seq_update"] = timed(redo)
    remove_label(label)

    bm = Botmaker(binary, work, f"bench-gwbm{n}")
    mounts = json.dumps([{"name": "state", "target": "/home/node/.openclaw"}, {"name": "config", "target": "/home/node/.config/openclaw"}])
    bm_env = json.dumps(env[:2] + ["OPENCLAW_GATEWAY_TOKEN=@secret:gateway_token"])
    for x in names:
        path = bm.secrets_dir(x)
        with open(os.path.join(path, "gateway_token"), "w") as f:
            f.write("0123456789abcdef")
    rows = ",".join(f"('{x}', '{GATEWAY_IMAGE}', '{bm_env}', '{mounts}', '[\"18789\"]', '1000:1000', 2147483648)" for x in names)
    bm.sql(f"BEGIN; INSERT INTO bots (id, image, environment, mounts, ports, user, memory_bytes) VALUES {rows}; COMMIT;")
    results["botmaker"] = timed(lambda: bm.run(["reconcile", "--wait", "--port-range", "29100-29999"]))
    for parallel, key in ((1, "botmaker_paced"), (4, "botmaker_update4")):
        changed = json.dumps(env[:2] + ["OPENCLAW_GATEWAY_TOKEN=@secret:gateway_token", f"MODEL=large{parallel}"])
        bm.sql(f"UPDATE bots SET environment = '{changed}'")
        results[key] = timed(lambda: bm.run(["reconcile", "--wait", "--port-range", "29100-29999", "--max-parallel-updates", str(parallel)]))
        # Switched over and confirmed healthy, one by one (update_strategy rollback, the default).
        assert bm.sql("SELECT count(*) FROM bot_status WHERE last_action = 'confirm' AND last_error_code IS NULL") == str(n)
    assert count_running(f"botmaker.instance={bm.instance}") == n
    bm.sql("DELETE FROM bots")
    bm.run(["reconcile"])
    return results


def free_tcp_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def image_pulls(references, since):
    """Pull events the engine recorded for `references` since `since` (unix seconds)."""
    out = sh(["docker", "events", "--since", str(int(since) - 1), "--until", str(int(time.time()) + 1), "--filter", "type=image",
              "--filter", "event=pull", "--format", "{{.ID}}"]).stdout.split()
    return sum(1 for r in out if r in references)


def cold_start(binary, work, n, compose):
    """N bots on 2 images that are only in a local registry: botmaker vs `docker-compose up -d` vs a `docker pull` +
    `docker run` loop; time to all running, and the pulls each made."""
    import random
    port = free_tcp_port()
    root = os.path.join(work, "registry")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "config.yml"), "w") as f:
        f.write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\nhttp:\n  addr: 127.0.0.1:{port}\n")
    registry = spawn(["docker-registry", "serve", os.path.join(root, "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/v2/"], capture_output=True).returncode != 0:
        if time.time() > deadline:
            raise SystemExit("the benchmark registry did not start")
        time.sleep(0.1)
    references = []
    for index in range(2):
        context = os.path.join(root, f"context{index}")
        os.makedirs(context, exist_ok=True)
        with open(os.path.join(context, "blob"), "wb") as f:
            f.write(random.randbytes(4 << 20))
        with open(os.path.join(context, "Dockerfile"), "w") as f:
            f.write(f"FROM {IMAGE}\nCOPY blob /blob\n")
        reference = f"127.0.0.1:{port}/bench/bot{index}:1"
        sh(["docker", "build", "-q", "-t", reference, context])
        sh(["docker", "push", reference])
        references.append(reference)

    def forget():
        for reference in references:
            sh(["docker", "rmi", reference], check=False)

    names = [f"cold{n}-{i:03d}" for i in range(n)]
    image_of = {name: references[i % 2] for i, name in enumerate(names)}
    results = {}
    forget()
    # (a) docker pull + docker run, bot by bot
    inst = f"bench-coldloop{n}"
    dirs = os.path.join(work, inst)
    since = time.time()

    def loop():
        for name in names:
            os.makedirs(os.path.join(dirs, name), exist_ok=True)
            sh(["docker", "pull", "-q", image_of[name]])
            args = docker_run_args(f"loop-{name}", inst, os.path.join(dirs, name), ENV)
            sh(args[:-1] + [image_of[name]])
    results["loop"] = timed(loop)
    results["loop_pulls"] = image_pulls(references, since)
    remove_label(f"botmaker.instance={inst}")
    forget()
    # (b) docker-compose up -d (it pulls what is missing)
    if compose:
        inst = f"bench-coldcompose{n}"
        path = os.path.join(work, f"compose-cold-{n}.yml")
        compose_file(path, names, inst, os.path.join(work, inst), ENV)
        text = open(path).read()
        for name in names:
            text = text.replace(f"  {name}:\n    image: {IMAGE}\n", f"  {name}:\n    image: {image_of[name]}\n")
        open(path, "w").write(text)
        since = time.time()
        project = ["docker-compose", "-p", inst, "-f", path]
        try:
            results["compose"] = timed(lambda: sh(project + ["up", "-d"], timeout=COMPOSE_TIMEOUT, env=dict(os.environ, COMPOSE_HTTP_TIMEOUT="120")))
        except subprocess.TimeoutExpired:
            results["compose"] = float("inf")
        results["compose_pulls"] = image_pulls(references, since)
        sh(project + ["down", "-t", "1"], check=False, timeout=COMPOSE_TIMEOUT)
        remove_label(f"botmaker.instance={inst}")
        forget()
    # botmaker
    bm = Botmaker(binary, work, f"bench-coldbm{n}")
    rows = ",".join(f"('{name}', '{image_of[name]}')" for name in names)
    bm.sql(f"BEGIN; INSERT INTO bots (id, image) VALUES {rows}; COMMIT;")
    since = time.time()
    results["botmaker"] = timed(lambda: bm.run(["reconcile"]))
    results["botmaker_pulls"] = image_pulls(references, since)
    assert count_running(f"botmaker.instance={bm.instance}") == n
    bm.sql("DELETE FROM bots")
    bm.run(["reconcile"])
    forget()
    stop_proc(registry)
    return results


def converge(binary, work, n, compose):
    names = [f"b{n}-{i:03d}" for i in range(n)]
    results = {"floor": api_floor(work, names, f"bench-floor{n}")}
    # (a) sequential docker run
    inst = f"bench-seq{n}"
    root = os.path.join(work, inst)
    for x in names:
        os.makedirs(os.path.join(root, x), exist_ok=True)
    results["seq"] = timed(lambda: [sh(docker_run_args(f"seq-{x}", inst, os.path.join(root, x), ENV)) for x in names])
    assert count_running(f"botmaker.instance={inst}") == n
    remove_label(f"botmaker.instance={inst}")
    # (b) xargs -P4
    inst = f"bench-par{n}"
    root = os.path.join(work, inst)
    for x in names:
        os.makedirs(os.path.join(root, x), exist_ok=True)
    script = " ".join(docker_run_args("par-{}", inst, os.path.join(root, "{}"), ENV)) + " >/dev/null"
    listing = "\n".join(names) + "\n"
    results["xargs"] = timed(lambda: sh(["bash", "-c", f"xargs -P4 -I{{}} {script}"], input=listing))
    assert count_running(f"botmaker.instance={inst}") == n
    remove_label(f"botmaker.instance={inst}")
    # (c) docker-compose up -d, then the same env change
    if compose:
        inst = f"bench-compose{n}"
        path = os.path.join(work, f"compose-{n}.yml")
        compose_file(path, names, inst, os.path.join(work, inst), ENV)
        project = ["docker-compose", "-p", inst, "-f", path]
        # docker-compose 1.29 was seen to hang for good midway through `up` of 100 services: bound it.
        env = dict(os.environ, COMPOSE_HTTP_TIMEOUT="120")
        try:
            results["compose"] = timed(lambda: sh(project + ["up", "-d"], timeout=COMPOSE_TIMEOUT, env=env))
            assert count_running(f"botmaker.instance={inst}") == n
            compose_file(path, names, inst, os.path.join(work, inst), ENV[:1] + ["MODEL=openclaw-large"])
            results["compose_recreate"] = timed(lambda: sh(project + ["up", "-d"], timeout=COMPOSE_TIMEOUT, env=env))
            assert count_running(f"botmaker.instance={inst}") == n
        except subprocess.TimeoutExpired:
            results.setdefault("compose", float("inf"))
            results.setdefault("compose_recreate", float("inf"))
        sh(project + ["down", "-t", "1"], check=False, timeout=COMPOSE_TIMEOUT)
        remove_label(f"botmaker.instance={inst}")
    # botmaker
    bm = Botmaker(binary, work, f"bench-bm{n}")
    bm.add(names)
    results["botmaker"] = timed(lambda: bm.run(["reconcile"]))
    assert count_running(f"botmaker.instance={bm.instance}") == n
    bm.sql("UPDATE bots SET environment = '[\"GREETING=hello\",\"MODEL=openclaw-large\"]'")
    # Compose recreates every changed service at once: compared with botmaker unpaced (the default paces updates to 1).
    results["botmaker_recreate"] = timed(lambda: bm.run(["reconcile", "--max-parallel-updates", "4"]))
    assert count_running(f"botmaker.instance={bm.instance}") == n
    bm.sql("DELETE FROM bots")
    bm.run(["reconcile"])
    return results


def rusage_run(args):
    """Runs a command; returns (wall, user+sys CPU seconds, stdout, stderr)."""
    before = os.times()
    t = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, r


def checksum(path):
    return sh(["sha256sum", path]).stdout.split()[0]


def idle_and_dry_run(binary, work, total, running, idle_seconds):
    bm = Botmaker(binary, work, "bench-idle")
    names = [f"idle-{i:04d}" for i in range(total)]
    bm.add(names[:running])
    bm.add(names[running:], state="stopped")
    bm.run(["reconcile", "--concurrency", "4"])
    assert count_running(f"botmaker.instance={bm.instance}") == running
    before = checksum(bm.db)
    passes = []
    for _ in range(5):
        wall, cpu, r = rusage_run([binary, "reconcile", "--stats"] + bm.args)
        stats = [l for l in r.stderr.splitlines() if l.startswith("stats:")][0]
        passes.append((wall, cpu, stats))
    unchanged = checksum(bm.db) == before
    dry = []
    for _ in range(5):
        wall, cpu, r = rusage_run([binary, "reconcile", "--dry-run"] + bm.args)
        assert r.returncode == 0, r.stderr
        dry.append(wall)
    # The service idle over a window, after its first pass.
    port = free_port()
    proc = spawn([binary, "run", "--log-level", "warning", "--metrics-addr", f"127.0.0.1:{port}"] + bm.args,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5)
    wait_idle(port, proc)
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_ticks():
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def rss_kib():
        with open(f"/proc/{proc.pid}/status") as f:
            return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])

    def files():
        return [checksum(bm.db + suffix) if os.path.exists(bm.db + suffix) else None for suffix in ("", "-wal")]

    m0 = scrape(port)
    f0 = files()
    c0, t0 = cpu_ticks(), time.perf_counter()
    time.sleep(idle_seconds)
    c1, t1 = cpu_ticks(), time.perf_counter()
    m1 = scrape(port)
    service_db_unchanged = files() == f0
    rss = rss_kib()
    service_passes = m1.get("botmaker_resyncs_total", 0) - m0.get("botmaker_resyncs_total", 0)
    service_requests = m1.get("botmaker_docker_requests_total", 0) - m0.get("botmaker_docker_requests_total", 0)
    stop_proc(proc)
    bm.sql("DELETE FROM bots")
    bm.run(["reconcile"])
    return {
        "pass_wall": statistics.median(p[0] for p in passes), "pass_cpu": statistics.median(p[1] for p in passes),
        "stats": passes[-1][2], "db_unchanged": unchanged, "dry_wall": statistics.median(dry),
        "idle_cpu_percent": 100.0 * (c1 - c0) / tick / (t1 - t0), "idle_rss_mib": rss / 1024, "idle_seconds": idle_seconds,
        "service_passes": service_passes, "service_requests": service_requests, "service_db_unchanged": service_db_unchanged,
    }


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    """Sums each metric family over its labels from the service's /metrics."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    sums = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{")[0].split(" ")[0]
        sums[name] = sums.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return sums


class Events:
    """`docker events` for one instance label: arrival times (Docker's own timeNano) of the chosen actions, by container name."""

    def __init__(self, instance, actions=("start",)):
        self.seen = {}
        self.cv = threading.Condition()
        args = ["docker", "events", "--since", f"{time.time():.9f}", "--filter", "type=container",
                "--filter", f"label=botmaker.instance={instance}", "--format", "{{json .}}"]
        for action in actions:
            args += ["--filter", f"event={action}"]
        # --since replays anything that happens before the stream is connected; the pause is only a margin.
        self.proc = spawn(args, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self.read, daemon=True).start()
        time.sleep(0.5)

    def read(self):
        for line in self.proc.stdout:
            event = json.loads(line)
            attributes = event["Actor"]["Attributes"]
            with self.cv:
                self.seen.setdefault((event["Action"], attributes["name"]), []).append((event["timeNano"], attributes))
                self.cv.notify_all()

    def wait(self, action, name, after_ns, timeout=60, match=lambda attributes: True):
        """Seconds from after_ns (time.time_ns()) to the first such event at or after it."""
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for t, attributes in self.seen.get((action, name), []):
                    if t >= after_ns and match(attributes):
                        return (t - after_ns) / 1e9
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise SystemExit(f"no {action} event for {name} within {timeout:.0f} s")
                self.cv.wait(remaining)

    def wait_start(self, name, after_ns, timeout=60):
        return self.wait("start", name, after_ns, timeout)

    def close(self):
        stop_proc(self.proc)


def pct(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def latency(binary, work, trials):
    bm = Botmaker(binary, work, "bench-lat")
    events = Events(bm.instance)
    floor_events = Events("bench-floor")
    proc = spawn([binary, "run", "--log-level", "warning"] + bm.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    edit, recreate, floor = [], [], []
    try:
        for i in range(trials):
            name = f"lat-{i:02d}"
            t0 = time.time_ns()
            bm.add([name])
            edit.append(events.wait_start(f"botmaker-{name}", t0))
        for i in range(trials):
            name = f"botmaker-lat-{i:02d}"
            time.sleep(0.3)
            t0 = time.time_ns()
            sh(["docker", "rm", "-f", name])
            recreate.append(events.wait_start(name, t0))
        for i in range(trials):
            name = f"floor-{i:02d}"
            t0 = time.time_ns()
            sh(docker_run_args(name, "bench-floor", bm.secrets_dir(name), ENV))
            floor.append(floor_events.wait_start(name, t0))
    finally:
        stop_proc(proc)
        events.close()
        floor_events.close()
        remove_label("botmaker.instance=bench-floor")
        bm.sql("DELETE FROM bots")
        bm.run(["reconcile"])
    return edit, recreate, floor

def proc_cpu_seconds(pid):
    """utime + stime of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith(key + ":")][0].split()[1])


def wait_idle(port, proc, quiet=1.5, timeout=600):
    """Waits until the service is idle: its Docker request, pass and action counters unchanged and under 10 % of a
    core used for `quiet` seconds (the CPU test covers a long pass that makes no Docker request for a while)."""
    deadline = time.time() + timeout
    last, since, cpu_since = None, time.time(), proc_cpu_seconds(proc.pid)
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"botmaker run exited with {proc.returncode}")
        try:
            m = scrape(port)
            now = tuple(m.get(k, 0) for k in ("botmaker_docker_requests_total", "botmaker_reconcile_total",
                                               "botmaker_resyncs_total", "botmaker_actions_total"))
        except OSError:
            now = None  # metrics server not listening yet
        elapsed = time.time() - since
        if now is not None and now == last:
            if elapsed >= quiet:
                if proc_cpu_seconds(proc.pid) - cpu_since < 0.1 * elapsed:
                    return
                since, cpu_since = time.time(), proc_cpu_seconds(proc.pid)
        else:
            last, since, cpu_since = now, time.time(), proc_cpu_seconds(proc.pid)
        time.sleep(0.25)
    raise SystemExit(f"botmaker run not idle within {timeout} s")


def wait_cpu_quiet(pid, quiet=1.0, max_fraction=0.05, timeout=600):
    """Waits until a process has used under max_fraction of a core over the last `quiet` seconds."""
    deadline = time.time() + timeout
    samples = [(time.perf_counter(), proc_cpu_seconds(pid))]
    while time.time() < deadline:
        time.sleep(0.1)
        now = (time.perf_counter(), proc_cpu_seconds(pid))
        samples.append(now)
        old = [x for x in samples if now[0] - x[0] >= quiet]
        if old and now[1] - old[-1][1] < max_fraction * (now[0] - old[-1][0]):
            return
    raise SystemExit(f"process {pid} still busy after {timeout} s")


def ensure_stubborn_image():
    """STUBBORN_IMAGE from Debian's busybox-static, the way scripts/lib.sh builds the test image: no registry."""
    r = sh(["docker", "image", "inspect", "--format", "{{json .Config.Cmd}}", STUBBORN_IMAGE], check=False)
    if r.returncode == 0 and json.loads(r.stdout) == STUBBORN_CMD:
        return
    root = tempfile.mkdtemp(prefix="botmaker-bench-image-")
    try:
        for d in ("bin", "tmp", "run/secrets", "etc"):
            os.makedirs(os.path.join(root, d))
        shutil.copy2("/bin/busybox", os.path.join(root, "bin", "busybox"))
        for applet in ("sh", "sleep", "cat", "ls", "echo", "true", "false", "touch", "test", "env", "id", "kill"):
            os.symlink("busybox", os.path.join(root, "bin", applet))
        with open(os.path.join(root, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/:/bin/sh\n")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        sh(["docker", "import", "--change", "ENV PATH=/bin", "--change", "CMD " + json.dumps(STUBBORN_CMD), "-", STUBBORN_IMAGE],
           stdin=tar.stdout)
        tar.stdout.close()
        tar.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def service(binary, bm, log_path, extra=()):
    """Starts `botmaker run` with /metrics on a loopback port; returns (process, port, log file)."""
    port = free_port()
    log = open(log_path, "w")
    proc = spawn([binary, "run", "--log-level", "warning", "--metrics-addr", f"127.0.0.1:{port}"] + list(extra) + bm.args,
                 stdout=subprocess.DEVNULL, stderr=log)
    return proc, port, log


def log_tail(path, lines=15):
    try:
        with open(path) as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def head_of_line(binary, work, grace, trials):
    """Bot A ignores SIGTERM, so its stop takes the whole grace period; while it is under way, bot B's container is
    removed. How long until B runs again, against `docker run -d` timed the same way in the same run?"""
    ensure_stubborn_image()
    bm = Botmaker(binary, work, "bench-hol")
    a, b = "hol-a", "hol-b"
    ca, cb = f"botmaker-{a}", f"botmaker-{b}"
    env_json = json.dumps(ENV).replace("'", "''")
    bm.sql(f"INSERT INTO bots (id, image, environment, desired_state) VALUES "
           f"('{a}', '{STUBBORN_IMAGE}', '{env_json}', 'running'), ('{b}', '{IMAGE}', '{env_json}', 'running');")
    floor_instance = track("bench-hol-floor")
    events = Events(bm.instance, ("start", "kill", "die", "destroy"))
    floor_events = Events(floor_instance)
    log_path = os.path.join(work, "hol.log")
    t = time.time_ns()
    proc, port, log = service(binary, bm, log_path, ["--stop-grace", str(grace)])
    r = {"repair": [], "floor": [], "to_term": [], "stop": [], "overlap": 0, "removed": []}
    try:
        events.wait_start(ca, t, 120)
        events.wait_start(cb, t, 120)
        wait_idle(port, proc)
        for i in range(trials):
            t_edit = time.time_ns()
            bm.sql(f"UPDATE bots SET desired_state = 'stopped' WHERE id = '{a}'")
            # The stop of A is under way once Docker has sent it SIGTERM.
            to_term = events.wait("kill", ca, t_edit, 60, match=lambda attributes: attributes.get("signal", "15") == "15")
            t_term = t_edit + int(to_term * 1e9)
            t0 = time.time_ns()
            sh(["docker", "rm", "-f", cb])
            repair = events.wait_start(cb, t0, grace + 120)
            removed = events.wait("destroy", cb, t0, grace + 60)  # Docker's own removal, inside the repair time
            stop = events.wait("die", ca, t_term, grace + 60)
            r["removed"].append(removed)
            r["to_term"].append(to_term)
            r["repair"].append(repair)
            r["stop"].append(stop)
            r["overlap"] += t0 + repair * 1e9 < t_term + stop * 1e9
            # Back to both running and the service idle, then the floor under the same conditions.
            t1 = time.time_ns()
            bm.sql(f"UPDATE bots SET desired_state = 'running' WHERE id = '{a}'")
            events.wait_start(ca, t1, grace + 120)
            wait_idle(port, proc)
            name = f"floor-hol-{i:02d}"
            t2 = time.time_ns()
            sh(docker_run_args(name, floor_instance, bm.secrets_dir(name), ENV))
            r["floor"].append(floor_events.wait_start(name, t2))
            wait_idle(port, proc)
    except BaseException:
        sys.stderr.write(f"head-of-line: botmaker run's log ends with:\n{log_tail(log_path)}")
        raise
    finally:
        stop_proc(proc)
        log.close()
        events.close()
        floor_events.close()
        remove_label(f"botmaker.instance={floor_instance}", check=False)
        remove_label(f"botmaker.instance={bm.instance}", check=False)
    return r


def scale(binary, work, size, trials, edits, running=5):
    """A fleet of `size` rows, all stopped but `running`: the reaction to one insert against the engine's own
    create+start, and the service's CPU per single-row edit against its own idle CPU over as long a window."""
    instance = f"bench-scale{size}"
    bm = Botmaker(binary, work, instance)
    floor_instance = track(f"bench-scale{size}-floor")
    env_json = json.dumps(ENV).replace("'", "''")
    r = {}
    r["insert_rows"] = timed(lambda: bm.sql(
        f"BEGIN; WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {size - 1}) "
        f"INSERT INTO bots (id, image, environment, desired_state) SELECT printf('s-%06d', i), '{IMAGE}', '{env_json}', "
        f"CASE WHEN i < {running} THEN 'running' ELSE 'stopped' END FROM seq; COMMIT;"))
    assert bm.sql("SELECT count(*) FROM bots") == str(size)
    events = Events(bm.instance)
    floor_events = Events(floor_instance)
    log_path = os.path.join(work, f"scale{size}.log")
    t = time.time_ns()
    # The periodic resync is the idle section's subject; here it would land in one CPU window and not the other.
    proc, port, log = service(binary, bm, log_path, extra=("--resync-interval", "3600"))
    ours, floor = [], []
    try:
        r["startup"] = max(events.wait_start(f"botmaker-s-{i:06d}", t, 600) for i in range(running))
        wait_idle(port, proc)
        r["startup_idle"] = (time.time_ns() - t) / 1e9
        # (a) one insert → its container started, against the engine's own create+start.
        for i in range(trials):
            name = f"n-{i:03d}"
            t0 = time.time_ns()
            bm.sql(f"INSERT INTO bots (id, image, environment, desired_state) VALUES ('{name}', '{IMAGE}', '{env_json}', 'running');")
            ours.append(events.wait_start(f"botmaker-{name}", t0))
            wait_idle(port, proc)
            name = f"scale{size}-{i:03d}"
            t0 = time.time_ns()
            api_create_start(work, name, floor_instance, managed="false")
            floor.append(floor_events.wait_start(f"floor-{name}", t0))
            wait_idle(port, proc)
        r["ours"], r["floor"] = ours, floor
        # (b) CPU per single-row edit of a stopped bot (no Docker work), against an idle window as long.
        target = f"s-{size - 1:06d}"
        m0, c0, t0 = scrape(port), proc_cpu_seconds(proc.pid), time.perf_counter()
        for k in range(edits):
            time.sleep(max(0.0, t0 + 0.3 * k - time.perf_counter()))
            bm.sql(f"UPDATE bots SET environment = '[\"GREETING=hello\",\"MODEL=edit-{k}\"]' WHERE id = '{target}';")
        wait_cpu_quiet(proc.pid)  # the last edit's work done; reading /proc does not wake the service, a scrape would
        c1, t1 = proc_cpu_seconds(proc.pid), time.perf_counter()
        m1 = scrape(port)
        window = t1 - t0
        c2 = proc_cpu_seconds(proc.pid)
        time.sleep(window)
        c3 = proc_cpu_seconds(proc.pid)
        r.update(window=window, edit_cpu=c1 - c0, idle_cpu=c3 - c2, per_edit=((c1 - c0) - (c3 - c2)) / edits,
                 edit_passes=m1["botmaker_reconcile_total"] - m0.get("botmaker_reconcile_total", 0)
                 if "botmaker_reconcile_total" in m1 else None,
                 edit_requests=m1.get("botmaker_docker_requests_total", 0) - m0.get("botmaker_docker_requests_total", 0),
                 rss_mib=proc_status_kib(proc.pid, "VmRSS") / 1024, hwm_mib=proc_status_kib(proc.pid, "VmHWM") / 1024)
    except BaseException:
        sys.stderr.write(f"scale {size}: botmaker run's log ends with:\n{log_tail(log_path)}")
        raise
    finally:
        stop_proc(proc)
        log.close()
        events.close()
        floor_events.close()
        remove_label(f"botmaker.instance={floor_instance}", check=False)
        remove_label(f"botmaker.instance={bm.instance}", check=False)
        for suffix in ("", "-wal", "-shm", ".lock"):
            if os.path.exists(bm.db + suffix):
                os.remove(bm.db + suffix)
        shutil.rmtree(bm.secrets, ignore_errors=True)
        shutil.rmtree(os.path.join(work, floor_instance), ignore_errors=True)
    return r


# A bad update's images, built FROM the gateway stand-in: one whose health check always fails (its httpd still answers),
# one whose process exits at once. Tagged apart from the integration tests' botmaker-test/gateway-* variants (the same
# engine may run both), and untagged again at the end of the section.
BAD_GATEWAY_IMAGES = {
    "unhealthy": ("botmaker-bench/gateway-unhealthy:latest", 'HEALTHCHECK --interval=1s --timeout=10s --retries=2 CMD ["/bin/false"]'),
    "exits": ("botmaker-bench/gateway-exits:latest", 'CMD ["/bin/false"]'),
}
# A request to the gateway answers in about a millisecond; one that hangs (while the port's forwarding is set up or
# torn down) holds up the next probe this long at most.
PROBE_TIMEOUT = 0.1
RECONCILE_TIMEOUT = 300


def build_bad_gateway_images(work):
    for kind, (tag, line) in BAD_GATEWAY_IMAGES.items():
        context = os.path.join(work, f"gateway-{kind}")
        os.makedirs(context, exist_ok=True)
        with open(os.path.join(context, "Dockerfile"), "w") as f:
            f.write(f"FROM {GATEWAY_IMAGE}\n{line}\n")
        sh(["docker", "build", "-q", "-t", tag, context])


def remove_bad_gateway_images():
    for tag, _ in BAD_GATEWAY_IMAGES.values():
        sh(["docker", "rmi", tag], check=False)


class Prober:
    """GET http://127.0.0.1:PORT/healthz every `interval` seconds from a thread (a new connection each, `timeout` to
    answer); keeps (time.time() of the answer, ok) samples."""

    def __init__(self, port, interval=0.005, timeout=None):
        self.port, self.interval, self.timeout = port, interval, timeout or PROBE_TIMEOUT
        self.samples, self.last_error = [], None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def probe(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                self.last_error = f"HTTP {response.status}"
            return response.status == 200
        except (OSError, http.client.HTTPException) as error:
            self.last_error = repr(error)
            return False
        finally:
            conn.close()

    def loop(self):
        while not self.done.is_set():
            t = time.time()
            ok = self.probe()
            self.samples.append((time.time(), ok))
            self.done.wait(max(0.0, t + self.interval - time.time()))

    def wait_steady(self, seconds=0.5, timeout=120):
        """Waits until every answer over the last `seconds` was OK; returns when."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            now = time.time()
            steady = False
            for t, ok in reversed(self.samples):
                if not ok:
                    break
                if t <= now - seconds:
                    steady = True
                    break
            if steady:
                return now
            time.sleep(0.05)
        raise SystemExit(f"port {self.port}: no steady OK answers within {timeout} s (last failure: {self.last_error})")

    def outages(self, since):
        """Runs of failed answers after `since`: (last OK answer before, first OK answer after or None)."""
        result, last_ok, down = [], None, False
        for t, ok in list(self.samples):
            if t < since:
                last_ok = t if ok else last_ok
                continue
            if ok:
                if down:
                    result.append((last_ok, t))
                    down = False
                last_ok = t
            else:
                down = True
        if down:
            result.append((last_ok, None))
        return result

    def close(self):
        self.done.set()
        self.thread.join(timeout=5)


def container_field(name, template):
    return sh(["docker", "inspect", "--format", template, name]).stdout.strip()


def docker_time(text):
    """Docker's RFC 3339 time with nanoseconds (2026-11-29T17:22:03.123456789Z) as unix seconds."""
    import datetime
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
    return seconds + (float("0." + fraction) if fraction else 0.0)


def host_port(container):
    """The host port of the container's 18789/tcp (`docker port`: 127.0.0.1:19000)."""
    return int(sh(["docker", "port", container, "18789/tcp"]).stdout.split()[0].rsplit(":", 1)[1])


def outage_stats(r, prober, t0):
    """Adds the outages seen by `prober` since just before `t0` to r (downtime: their total length)."""
    gaps = prober.outages(t0 - 0.5)
    r["down"].append(sum(b - a for a, b in gaps))
    r["outages"] += len(gaps)
    return gaps


def watched(port, action):
    """Runs action(prober) with a Prober on `port` once it answers steadily; returns what it returns. The prober runs
    only around the measurement: each answer forks an httpd child, and 200 of them a second are load of their own."""
    prober = Prober(port)
    try:
        prober.wait_steady()
        return action(prober)
    finally:
        prober.close()


class UpdatedBot:
    """One gateway bot, alone in its own database, with update_strategy `strategy` and its host port from `port_range`;
    the same container `gateway_run_args` makes."""

    def __init__(self, binary, work, strategy, port_range):
        self.bm = Botmaker(binary, work, f"bench-upd-{strategy}")
        self.strategy, self.id, self.name, self.x = strategy, f"upd-{strategy}", f"botmaker-upd-{strategy}", 0
        self.port_range = port_range
        self.bm.run(["bot", "add", self.id, "--image", GATEWAY_IMAGE, "--env", "OPENCLAW_DISABLE_BONJOUR=1", "--env", "X=0",
                     "--update-strategy", strategy, "--port", "18789", "--mount", "state=/home/node/.openclaw",
                     "--mount", "config=/home/node/.config/openclaw", "--user", "1000:1000", "--memory", "2g"])
        self.bm.run(["reconcile", "--wait", "--port-range", port_range])
        self.port = host_port(self.name)

    def set(self, image, x):
        self.x = x
        self.bm.run(["bot", "set", self.id, "--image", image, "--env", "OPENCLAW_DISABLE_BONJOUR=1", "--env", f"X={x}"])

    def reconcile(self, wait=False):
        """A one-shot `botmaker reconcile`: (start time, wall seconds, completed process). Bounded: one that follows a
        switch-over is over within --update-timeout (120 s) and a stop grace, or it hangs."""
        t0 = time.time()
        try:
            p = subprocess.run([self.bm.binary, "reconcile", "--port-range", self.port_range] + (["--wait"] if wait else []) + self.bm.args,
                               capture_output=True, text=True, timeout=RECONCILE_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            out = [x.decode(errors="replace") if isinstance(x, bytes) else x or "" for x in (e.stdout, e.stderr)]
            raise SystemExit(f"updates ({self.strategy}): `botmaker reconcile` still running after {RECONCILE_TIMEOUT} s (killed)\n"
                             f"{out[0]}\n{out[1]}\n{self.container('{{.Name}} {{.State.Status}}')}")
        return t0, time.time() - t0, p

    def container(self, template="{{.Id}}"):
        return container_field(self.name, template)

    def good_update(self, r, prober):
        old = self.container()
        self.set(GATEWAY_IMAGE, self.x + 1)
        t0, wall, p = self.reconcile()
        if p.returncode != 0:
            raise SystemExit(f"updates ({self.strategy}): reconcile exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        prober.wait_steady()
        assert self.container() != old, "the update made no new container"
        assert host_port(self.name) == self.port, "the update moved the published port"
        r["wall"].append(wall)
        outage_stats(r, prober, t0)

    def bad_update(self, b, image, prober, observe):
        old, good = self.container(), self.x
        self.set(image, self.x + 1)
        t0, wall, p = self.reconcile()
        b["wall"].append(wall)
        b["codes"].append(p.returncode)
        b["rolled_back"] += "UPDATE_ROLLED_BACK" in p.stdout + p.stderr
        if self.strategy == "rollback":
            prober.wait_steady(timeout=60)
            if self.container() == old:
                b["restored"] += 1
                started = docker_time(self.container("{{.State.StartedAt}}"))
                b["to_answer"].append(next(t for t, ok in list(prober.samples) if ok and t >= started) - t0)
            outage_stats(b, prober, t0)
            assert not sh(["docker", "ps", "-aq", "--filter", f"name=^/{self.name}.previous$"]).stdout.strip(), "a .previous container was left"
            assert host_port(self.name) == self.port, "the rollback moved the published port"
            # Back to the spec the old container runs: nothing to do, the same container goes on.
            self.set(GATEWAY_IMAGE, good)
            _, _, p = self.reconcile()
            if p.returncode != 0 or self.container() != old:
                raise SystemExit(f"updates: going back to the running spec after a rollback failed ({p.returncode}) or touched the "
                                 f"container\n{p.stdout}\n{p.stderr}")
        else:
            # No safety net: does anything answer over the `observe` seconds after reconcile returned?
            time.sleep(observe)
            gaps = prober.outages(t0 - 0.5)
            if gaps and gaps[-1][1] is None:
                b["down_after"] += 1
                b["silent"].append(time.time() - gaps[-1][0])
            else:
                b["answers_after"] += 1
                b["down"].append(sum(y - x for x, y in gaps))
            b["outages"] += len(gaps)
            b["state_after"].append(self.container(
                "{{.State.Status}}{{if .State.Health}}, {{.State.Health.Status}}{{end}}, restarted {{.RestartCount}}×"))
            # Someone acts: back to the good image (a new target).
            self.set(GATEWAY_IMAGE, self.x + 1)
            _, _, p = self.reconcile(wait=True)
            if p.returncode != 0:
                raise SystemExit(f"updates ({self.strategy}): repair after a bad update exited {p.returncode}\n{p.stdout}\n{p.stderr}")

    def close(self):
        self.bm.sql("DELETE FROM bots")
        self.bm.run(["reconcile"], check=False)
        remove_label(f"botmaker.instance={self.bm.instance}", check=False)


def updates(binary, work, trials, bad_trials, observe):
    """(1) `trials` env changes of one gateway: the floor (`docker stop` + `docker rm` + `docker run` by the CLI) and a bot
    of each update_strategy, interleaved trial by trial in a rotating order, so that load from elsewhere falls on all
    alike; (2) per bad image, `bad_trials` updates of each bot to it, interleaved the same way."""
    # A fixed port outside the ephemeral range (like the workloads' baselines): the probes' own connections use that range.
    floor_instance, floor_name, floor_port = track("bench-upd-floor"), "upd-floor", 29600
    floor_env = ["OPENCLAW_DISABLE_BONJOUR=1"]
    bots = {}
    r = {"floor": {"down": [], "wall": [], "outages": 0}}

    def floor_update(prober, x):
        t0 = time.time()
        sh(["docker", "stop", floor_name])
        sh(["docker", "rm", floor_name])
        sh(gateway_run_args(floor_name, floor_instance, work, floor_port, floor_env + [f"X={x}"]))
        r["floor"]["wall"].append(time.time() - t0)
        prober.wait_steady()
        outage_stats(r["floor"], prober, t0)

    try:
        sh(gateway_run_args(floor_name, floor_instance, work, floor_port, floor_env + ["X=0"]))
        # Separate ranges: neither database knows the other's ports.
        for strategy, port_range in (("rollback", "29500-29549"), ("recreate", "29550-29599")):
            bots[strategy] = UpdatedBot(binary, work, strategy, port_range)
            r[strategy] = {"down": [], "wall": [], "outages": 0,
                           "bad": {kind: {"wall": [], "codes": [], "rolled_back": 0, "restored": 0, "to_answer": [], "down": [],
                                          "outages": 0, "down_after": 0, "silent": [], "state_after": [], "answers_after": 0}
                                   for kind in BAD_GATEWAY_IMAGES}}
        sides = ["floor", "rollback", "recreate"]
        for i in range(trials):
            for side in sides[i % 3:] + sides[:i % 3]:
                if side == "floor":
                    watched(floor_port, lambda prober: floor_update(prober, i + 1))
                else:
                    watched(bots[side].port, lambda prober: bots[side].good_update(r[side], prober))
        for kind, (image, _) in BAD_GATEWAY_IMAGES.items():
            for i in range(bad_trials):
                for side in list(bots)[i % 2:] + list(bots)[:i % 2]:
                    watched(bots[side].port, lambda prober: bots[side].bad_update(r[side]["bad"][kind], image, prober, observe))
    finally:
        for bot in bots.values():
            bot.close()
        remove_label(f"botmaker.instance={floor_instance}", check=False)
    return r


# --- Swarm (--engine swarm) on the 3-node lab of scripts/swarm-lab -------------------------------------------------------

SWARM_LAB = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "scripts", "swarm-lab"))
SWARM_LAB_ROOT = os.environ.get("SWARM_LAB_ROOT", "/run/swlab").rstrip("/")
SWARM_POLL = 0.2  # seconds between looks at the manager's tasks (the same for every contender)


def swarm_lab(*args, check=True):
    return sh(["bash", SWARM_LAB] + [str(a) for a in args], check=check)


def swarm_lab_env():
    env = {}
    with open(os.path.join(SWARM_LAB_ROOT, "env")) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if key:
                env[key] = value.strip("'")
    return env


def sock_of(host):
    assert host.startswith("unix://"), host
    return host[len("unix://"):]


def swarm_api(sock, method, path, body=None, ok=(), timeout=60):
    """One Engine API call over a node's socket; statuses in `ok` (e.g. 404 on a removal) are not errors."""
    conn = UnixHTTP(sock)
    conn.timeout = timeout
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json", "Host": "localhost"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status >= 300 and response.status != 304 and response.status not in ok:
        raise SystemExit(f"{method} {path} on {sock}: {response.status} {data[:300]}")
    return json.loads(data) if data and response.status < 300 else None


def filters(**f):
    import urllib.parse
    return urllib.parse.quote(json.dumps({k.replace("_", "-"): v for k, v in f.items()}))


class SwarmLab:
    """The lab's sockets and node ids; starts the lab when none is up (and then takes it down in close())."""

    def __init__(self):
        self.started = False
        self.killed, self.partitioned = set(), set()
        if not os.path.exists(os.path.join(SWARM_LAB_ROOT, "env")):
            self.started = True
            try:
                swarm_lab("up")
                self.read()
            except BaseException:
                swarm_lab("down", check=False)
                raise
        else:
            self.read()

    def read(self):
        env = swarm_lab_env()
        self.count = int(env["SWARM_LAB_COUNT"])
        if self.count < 3:
            raise SystemExit(f"the swarm section needs a lab of 3 nodes or more (this one has {self.count})")
        self.manager_host = env["SWARM_LAB_MANAGER"]
        self.manager = sock_of(self.manager_host)
        self.node_sock = {k: sock_of(env[f"SWARM_LAB_NODE_{k}_HOST"]) for k in range(1, self.count + 1)}
        self.node_id = {k: env[f"SWARM_LAB_NODE_{k}_ID"] for k in range(1, self.count + 1)}
        self.hostname = {k: env[f"SWARM_LAB_NODE_{k}_HOSTNAME"] for k in range(1, self.count + 1)}
        nodes = swarm_api(self.manager, "GET", "/nodes")
        ready = [n for n in nodes if n["Status"]["State"] == "ready"]
        if len(ready) != self.count:
            raise SystemExit(f"swarm lab: {len(ready)} of {self.count} nodes ready ({SWARM_LAB} status)")
        self.version = swarm_api(self.manager, "GET", "/version")
        others = swarm_api(self.manager, "GET", "/services")
        if others:
            print(f"warning: the swarm lab already runs {len(others)} services (e.g. {others[0]['Spec']['Name']}): "
                  f"they share the nodes with this measurement", file=sys.stderr)

    def api(self, method, path, body=None, ok=()):
        return swarm_api(self.manager, method, path, body, ok)

    def kill(self, k):
        self.killed.add(k)
        swarm_lab("kill-node", k)

    def start(self, k):
        swarm_lab("start-node", k)
        self.killed.discard(k)

    def partition(self, k):
        self.partitioned.add(k)
        swarm_lab("partition", k)

    def heal(self, k):
        swarm_lab("heal", k)
        self.partitioned.discard(k)

    def node_state(self, k):
        node = self.api("GET", f"/nodes/{self.node_id[k]}")
        return node["Status"]["State"]

    def running_by_service(self, instance, exclude_node=None):
        """The manager's view: service id → node id of a task of ours in state running (desired running), ignoring
        tasks on `exclude_node` (a dead node's tasks still read `running` until the manager gives up on it)."""
        running = {}
        for task in self.api("GET", f"/tasks?filters={filters(desired_state=['running'])}"):
            labels = task.get("Spec", {}).get("ContainerSpec", {}).get("Labels") or {}
            if labels.get("botmaker.instance") != instance or task["Status"]["State"] != "running":
                continue
            if exclude_node is not None and task.get("NodeID") == exclude_node:
                continue
            running[task["ServiceID"]] = task.get("NodeID")
        return running

    def wait_running(self, instance, n, t0, timeout=300, exclude_node=None):
        """Seconds from t0 (perf_counter) until n services of the instance each have a running task (off exclude_node)."""
        deadline = time.perf_counter() + timeout
        while True:
            running = self.running_by_service(instance, exclude_node)
            now = time.perf_counter()
            if len(running) >= n:
                return now - t0
            if now > deadline:
                raise SystemExit(f"swarm: {len(running)} of {n} services of {instance} running after {timeout} s")
            time.sleep(SWARM_POLL)

    def our_containers(self, k, instance, running_only=True):
        """Node k's own containers of the instance (its socket: the witness, whatever the manager believes)."""
        flt = {"label": [f"botmaker.instance={instance}"]}
        if running_only:
            flt["status"] = ["running"]
        return swarm_api(self.node_sock[k], "GET", f"/containers/json?all=1&filters={filters(**flt)}")

    def clean(self, instance, stack=None, timeout=120):
        """Removes the instance's services (and the stack), then its networks, secrets and configs, and waits until no
        container of it is left on any node: the next measurement starts from an empty cluster."""
        if stack:
            sh(["docker", "-H", self.manager_host, "stack", "rm", stack], check=False)
        label = filters(label=[f"botmaker.instance={instance}"])
        for service in self.api("GET", f"/services?filters={label}"):
            self.api("DELETE", f"/services/{service['ID']}", ok=(404,))
        # botmaker's claim on the instance (a Swarm config), and any config of ours.
        configs = self.api("GET", f"/configs?filters={label}") + self.api("GET", f"/configs?filters={filters(name=[f'botmaker.claim.{instance}'])}")
        for obj in configs:
            self.api("DELETE", f"/configs/{obj['ID']}", ok=(404,))
        deadline = time.time() + timeout
        while True:
            left = sum(len(self.our_containers(k, instance, running_only=False)) for k in self.node_sock if k not in self.killed)
            networks = self.api("GET", f"/networks?filters={label}")
            if stack:
                networks += self.api("GET", f"/networks?filters={filters(label=[f'com.docker.stack.namespace={stack}'])}")
            for network in networks:
                self.api("DELETE", f"/networks/{network['Id']}", ok=(404, 403, 409, 500))  # in use: again next time round
            if left == 0 and not networks:
                break
            if time.time() > deadline:
                raise SystemExit(f"swarm: {left} containers and {len(networks)} networks of {instance} still there after {timeout} s")
            time.sleep(0.5)
        for obj in self.api("GET", f"/secrets?filters={label}"):
            self.api("DELETE", f"/secrets/{obj['ID']}", ok=(404,))

    def restore(self, timeout=90):
        """Heals and restarts what the section partitioned or killed, and waits until every node is ready again."""
        if not self.partitioned and not self.killed:
            return
        for k in sorted(self.partitioned):
            swarm_lab("heal", k, check=False)
        for k in sorted(self.killed):
            swarm_lab("start-node", k, check=False)
        self.partitioned, self.killed = set(), set()
        deadline = time.time() + timeout
        while any(self.node_state(k) != "ready" for k in self.node_id):
            if time.time() > deadline:
                print(f"warning: not every node of the swarm lab is ready {timeout} s after heal/start-node", file=sys.stderr)
                return
            time.sleep(0.5)

    def close(self):
        if self.started:
            swarm_lab("down", check=False)
        else:
            self.restore()


class SwarmBotmaker(Botmaker):
    """botmaker with --engine swarm against the lab's manager."""

    def __init__(self, binary, workdir, instance, lab):
        self.env = dict(os.environ, DOCKER_HOST=lab.manager_host, BOTMAKER_ENGINE="swarm", BOTMAKER_SWARM_ALLOW_PRIVILEGE_ESCALATION="1")
        super().__init__(binary, workdir, instance)

    def run(self, args, check=True):
        return sh([self.binary] + args + self.args, check=check, env=self.env)

    def spawn(self, args, **kw):
        return spawn([self.binary] + args + self.args, env=self.env, **kw)


def swarm_labels(name, instance):
    return {"botmaker.managed": "true", "botmaker.bot-id": name, "botmaker.instance": instance}


def swarm_floor_spec(name, instance, network_id):
    """The service spec botmaker writes for a bot of IMAGE and ENV on its own network (SwarmServiceSpec.make, API 1.41,
    privilege escalation allowed), with the same labels in number and size."""
    labels = dict(swarm_labels(name, instance), **{"botmaker.owner": "0" * 32, "botmaker.spec-hash": "0" * 64, "botmaker.spec-version": "2"})
    service_labels = dict(labels, **{"botmaker.service-digest": "0" * 64})
    return {
        "Name": f"floor-{name}", "Labels": service_labels,
        "TaskTemplate": {
            "ContainerSpec": {"Image": IMAGE, "Labels": labels, "Env": ENV, "Init": True, "StopGracePeriod": 10 * 10**9,
                              "CapabilityDrop": ["NET_ADMIN", "NET_RAW"], "Secrets": [], "Mounts": []},
            "Resources": {"Limits": {"Pids": 512}},
            "RestartPolicy": {"Condition": "any", "Delay": 2 * 10**9},
            "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m", "max-file": "3"}},
            "ForceUpdate": 0,
            "Networks": [{"Target": network_id}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "rollback", "Monitor": 10 * 10**9},
        "RollbackConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "pause"},
        "EndpointSpec": {"Mode": "dnsrr", "Ports": []},
    }


def swarm_stack_file(path, names, instance, per_service_network):
    """A compose file for `docker stack deploy` of the same services: everything of botmaker's spec that stack deploy
    can express (it ignores security_opt; botmaker sets no no-new-privileges on API 1.41 either)."""
    lines = ["version: '3.9'", "services:"]
    for n in names:
        labels = swarm_labels(n, instance)
        lines += [f"  {n}:", f"    image: {IMAGE}", "    init: true", "    cap_drop: [NET_ADMIN, NET_RAW]",
                  "    stop_grace_period: 10s", "    logging:", "      driver: json-file",
                  "      options: {max-size: 10m, max-file: '3'}", "    environment:"]
        lines += [f"      - {e}" for e in ENV]
        lines += ["    labels:"] + [f"      {k}: '{v}'" for k, v in labels.items()]
        if per_service_network:
            lines += [f"    networks: [net-{n}]"]
        lines += ["    deploy:", "      mode: replicated", "      replicas: 1", "      endpoint_mode: dnsrr",
                  "      resources: {limits: {pids: 512}}", "      restart_policy: {condition: any, delay: 2s}",
                  "      update_config: {parallelism: 1, order: stop-first, failure_action: rollback, monitor: 10s}",
                  "      rollback_config: {parallelism: 1, order: stop-first, failure_action: pause}", "      labels:"]
        lines += [f"        {k}: '{v}'" for k, v in labels.items()]
    if per_service_network:
        lines += ["networks:"]
        for n in names:
            lines += [f"  net-{n}:", "    driver: overlay", f"    labels: {{botmaker.instance: '{instance}'}}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def watch_exit(proc, t0):
    """Records when proc exits, in seconds from t0, and its stderr: returns a dict filled in by a thread."""
    result = {}

    def wait():
        result["stderr"] = proc.communicate()[1] or ""
        result["seconds"] = time.perf_counter() - t0
    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    result["thread"] = thread
    return result


def finish(proc, exited, what, timeout=300):
    exited["thread"].join(timeout)
    if proc.returncode is None:
        raise SystemExit(f"{what} did not exit within {timeout} s")
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}): {exited['stderr'][-2000:]}")
    return exited["seconds"]


def swarm_converge_botmaker(binary, work, lab, names, instance):
    """`botmaker reconcile` from an empty cluster: until every bot's task runs (reconcile returns once the services are
    created; Swarm then places and starts the tasks)."""
    bm = SwarmBotmaker(binary, work, instance, lab)
    bm.add(names)
    t0 = time.perf_counter()
    proc = bm.spawn(["reconcile", "--stats"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    exited = watch_exit(proc, t0)
    running = lab.wait_running(instance, len(names), t0)
    command = finish(proc, exited, "botmaker reconcile on the swarm")
    stats = [l for l in exited["stderr"].splitlines() if l.startswith("stats:")]
    return {"running": running, "command": command, "stats": stats[-1] if stats else "", "bm": bm}


def swarm_converge_stack(work, lab, names, instance, per_service_network):
    path = os.path.join(work, f"{instance}.yml")
    swarm_stack_file(path, names, instance, per_service_network)
    t0 = time.perf_counter()
    proc = spawn(["docker", "-H", lab.manager_host, "stack", "deploy", "--resolve-image", "never", "-c", path, instance],
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    exited = watch_exit(proc, t0)
    running = lab.wait_running(instance, len(names), t0)
    return {"running": running, "command": finish(proc, exited, "docker stack deploy")}


def swarm_converge_floor(lab, names, instance):
    """The engine's floor: the same network + service per bot created over the manager's API, 4 at a time (botmaker's
    default --concurrency), no CLI and no bookkeeping."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name):
        network = lab.api("POST", "/networks/create", {"Name": f"floor-{name}", "Driver": "overlay", "CheckDuplicate": True,
                                                       "Labels": swarm_labels(name, instance)})
        lab.api("POST", "/services/create", swarm_floor_spec(name, instance, network["Id"]))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, names))
    command = time.perf_counter() - t0
    return {"running": lab.wait_running(instance, len(names), t0), "command": command}


def metrics_by_label(port, family, label):
    """One metric family from the service's /metrics, summed by the value of one label."""
    import re
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    sums = {}
    for line in text.splitlines():
        if not line.startswith(family + "{") and not line.startswith(family + " "):
            continue
        m = re.search(label + r'="([^"]*)"', line)
        key = m.group(1) if m else ""
        sums[key] = sums.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return sums


def swarm_service(bm, work, name, extra=()):
    """`botmaker run` on the swarm with /metrics on a loopback port; returns (process, port, log path)."""
    port = free_port()
    log_path = os.path.join(work, f"{name}.log")
    with open(log_path, "w") as log:
        proc = bm.spawn(["run", "--log-level", "warning", "--metrics-addr", f"127.0.0.1:{port}"] + list(extra),
                        stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"botmaker run exited with {proc.returncode}: {log_tail(log_path)}")
        try:
            if metrics_by_label(port, "botmaker_resyncs_total", "result").get("ok", 0) >= 1:
                return proc, port, log_path
        except OSError:
            pass
        if time.time() > deadline:
            raise SystemExit(f"botmaker run: no resync within 60 s: {log_tail(log_path)}")
        time.sleep(0.2)


def db_nodes(db):
    """The bots' rows as `botmaker status` shows them: (actual_state, node) per bot, from bot_overview."""
    import sqlite3
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0]: (row[1], row[2]) for row in conn.execute("SELECT id, actual_state, node FROM bot_overview")}
    finally:
        conn.close()


def wait_status_settled(db, n, timeout=120):
    deadline = time.time() + timeout
    while True:
        rows = db_nodes(db)
        if sum(1 for state, node in rows.values() if state == "running" and node) == n:
            return
        if time.time() > deadline:
            raise SystemExit(f"botmaker status: not all {n} bots running with a node after {timeout} s: {rows}")
        time.sleep(0.2)


def swarm_idle(bm, work, n, seconds):
    """`botmaker run --resync-interval 1` over a converged fleet: Docker requests per idle resync, by operation."""
    proc, port, log_path = swarm_service(bm, work, "swarm-idle", ["--resync-interval", "1"])
    try:
        time.sleep(2)  # past the start-up pass and its status writes
        files = lambda: [checksum(bm.db + s) if os.path.exists(bm.db + s) else None for s in ("", "-wal")]
        r0 = metrics_by_label(port, "botmaker_resyncs_total", "trigger").get("resync", 0)
        q0 = metrics_by_label(port, "botmaker_docker_requests_total", "endpoint")
        a0 = sum(metrics_by_label(port, "botmaker_actions_total", "kind").values())
        f0 = files()
        time.sleep(seconds)
        r1 = metrics_by_label(port, "botmaker_resyncs_total", "trigger").get("resync", 0)
        q1 = metrics_by_label(port, "botmaker_docker_requests_total", "endpoint")
        a1 = sum(metrics_by_label(port, "botmaker_actions_total", "kind").values())
        unchanged = files() == f0
    finally:
        stop_proc(proc)
    by_op = {k: q1.get(k, 0) - q0.get(k, 0) for k in set(q0) | set(q1) if q1.get(k, 0) != q0.get(k, 0)}
    noop = bm.run(["reconcile", "--stats"]).stderr
    return {"resyncs": r1 - r0, "requests": sum(by_op.values()), "by_op": by_op, "actions": a1 - a0, "db_unchanged": unchanged,
            "noop_stats": ([l for l in noop.splitlines() if l.startswith("stats:")] or [""])[-1]}


def swarm_node_loss(lab, bm, work, n, k):
    """kill-node k (a worker; SIGKILL of its dockerd, containerd and containers): how long until every bot runs on a live
    node (the manager's tasks, those on node k ignored), until the manager marks k down, and until `botmaker status`
    (its rows, with `botmaker run` running) shows no bot on k. Then start-node k."""
    instance, node_id, host = bm.instance, lab.node_id[k], lab.hostname[k]
    proc, port, log_path = swarm_service(bm, work, "swarm-kill")
    try:
        wait_status_settled(bm.db, n)
        on_k = [s for s, node in lab.running_by_service(instance).items() if node == node_id]
        per_service = {}
        t0 = time.perf_counter()
        lab.kill(k)
        killed = time.perf_counter() - t0
        r = {"on_node": len(on_k), "kill_command": killed}
        deadline = t0 + 240
        while "rescheduled" not in r or "down" not in r or "status" not in r or "status_not_running" not in r:
            now = time.perf_counter()
            if now > deadline:
                raise SystemExit(f"node loss: not settled after 240 s ({r}); {log_tail(log_path)}")
            if "rescheduled" not in r:
                running = lab.running_by_service(instance, exclude_node=node_id)
                for s in running:
                    per_service.setdefault(s, now - t0)
                if len(running) >= n:
                    r["rescheduled"] = now - t0
            if "down" not in r and lab.node_state(k) == "down":
                r["down"] = now - t0
            rows = db_nodes(bm.db)
            if "status_not_running" not in r and not any(node == host and state == "running" for state, node in rows.values()):
                r["status_not_running"] = now - t0
            if "status" not in r and not any(node == host for _, node in rows.values()) \
                    and sum(1 for state, _ in rows.values() if state == "running") == n:
                r["status"] = now - t0
            time.sleep(SWARM_POLL)
        moved = sorted(per_service[s] for s in on_k if s in per_service)
        r["first_moved"], r["last_moved"] = (moved[0], moved[-1]) if moved else (0, 0)
        t1 = time.perf_counter()
        lab.start(k)
        r["start_node"] = time.perf_counter() - t1
    finally:
        stop_proc(proc)
    return r


def swarm_partition(lab, bm, work, n, k):
    """partition k: how long until replacements run elsewhere, while node k's own socket (the witness) shows the old
    containers still running; then heal k: how long until the old copies stop. Two copies of a bot run from its
    replacement's start to its old container's stop."""
    instance, node_id, host = bm.instance, lab.node_id[k], lab.hostname[k]
    proc, port, log_path = swarm_service(bm, work, "swarm-partition")
    try:
        wait_status_settled(bm.db, n)
        on_k = [s for s, node in lab.running_by_service(instance).items() if node == node_id]
        witness = lambda: {c["Labels"].get("com.docker.swarm.service.id") for c in lab.our_containers(k, instance)}
        assert witness() >= set(on_k), "node 3's own view disagrees with the manager's"
        replaced, stopped = {}, {}
        t0 = time.perf_counter()
        lab.partition(k)
        r = {"on_node": len(on_k)}
        deadline = t0 + 240
        while "replaced" not in r or "down" not in r or "status" not in r or "status_not_running" not in r:
            now = time.perf_counter()
            if now > deadline:
                raise SystemExit(f"partition: not settled after 240 s ({r}); {log_tail(log_path)}")
            if "replaced" not in r:
                running = lab.running_by_service(instance, exclude_node=node_id)
                for s in running:
                    replaced.setdefault(s, now - t0)
                if len(running) >= n:
                    r["replaced"] = now - t0
                    r["old_running_then"] = len(witness() & set(on_k))
            if "down" not in r and lab.node_state(k) == "down":
                r["down"] = now - t0
            rows = db_nodes(bm.db)
            if "status_not_running" not in r and not any(node == host and state == "running" for state, node in rows.values()):
                r["status_not_running"] = now - t0
            if "status" not in r and not any(node == host for _, node in rows.values()) \
                    and sum(1 for state, _ in rows.values() if state == "running") == n:
                r["status"] = now - t0
            time.sleep(SWARM_POLL)
        moved = sorted(replaced[s] for s in on_k if s in replaced)
        r["first_moved"], r["last_moved"] = (moved[0], moved[-1]) if moved else (0, 0)
        r["old_running_before_heal"] = len(witness() & set(on_k))
        t_heal = time.perf_counter()
        lab.heal(k)
        deadline = t_heal + 240
        while True:
            now = time.perf_counter()
            still = witness() & set(on_k)
            for s in set(on_k) - still:
                stopped.setdefault(s, now - t0)
            if not still:
                break
            if now > deadline:
                raise SystemExit(f"partition: {len(still)} old copies still run on node {k} 240 s after the heal")
            time.sleep(SWARM_POLL)
        r["heal_to_stopped"] = max(stopped.values()) - (t_heal - t0) if stopped else 0
        r["heal_to_first_stopped"] = min(stopped.values()) - (t_heal - t0) if stopped else 0
        r["two_copies"] = sorted(stopped[s] - replaced[s] for s in on_k if s in stopped and s in replaced)
        r["partitioned_for"] = t_heal - t0
        # Back to a whole cluster before anything else: node k Ready in the manager's view.
        deadline = time.time() + 120
        while lab.node_state(k) != "ready":
            if time.time() > deadline:
                raise SystemExit(f"node {k} not ready 120 s after the heal")
            time.sleep(0.2)
        # Each node's own socket: exactly one running container per bot on the whole cluster again.
        r["containers_after"] = sum(len(lab.our_containers(j, instance)) for j in lab.node_sock)
    finally:
        stop_proc(proc)
    return r


SWARM_CONTENDERS = ("floor", "stack", "stack1", "botmaker")


def swarm(binary, work, lab, n, trials, failover, idle_seconds):
    """Converge n bots from empty through botmaker, `docker stack deploy` (one network per service, and the stack's one
    default network) and the engine's floor, `trials` times in turns; then, on botmaker's last fleet, the idle cost and
    (failover) the loss of node 3 and a partition of node 3 (on a second botmaker fleet, spread over the 3 nodes again)."""
    names = [f"sw{i:03d}" for i in range(n)]
    r = {c: [] for c in SWARM_CONTENDERS}
    live = []  # (instance, stack) of what is on the cluster now, removed whatever fails

    def clean(instance, stack=None):
        lab.clean(instance, stack)
        live.remove((instance, stack))

    try:
        fleet = None
        for t in range(trials):
            order = list(SWARM_CONTENDERS[t % 4:] + SWARM_CONTENDERS[:t % 4])
            if t == trials - 1:  # botmaker last, so that its fleet stays for the idle and failure measurements
                order.remove("botmaker")
                order.append("botmaker")
            for c in order:
                if c == "botmaker":
                    instance, stack = f"bench-sw-bm{t}", None
                    live.append((instance, stack))
                    m = swarm_converge_botmaker(binary, work, lab, names, instance)
                    r["stats"] = m["stats"]
                elif c == "floor":
                    instance, stack = f"bench-sw-floor{t}", None
                    live.append((instance, stack))
                    m = swarm_converge_floor(lab, names, instance)
                else:
                    instance = stack = f"bswstk{t}" if c == "stack" else f"bswone{t}"
                    live.append((instance, stack))
                    m = swarm_converge_stack(work, lab, names, instance, per_service_network=(c == "stack"))
                r[c].append((m["running"], m["command"]))
                if c == "botmaker" and t == trials - 1:
                    fleet = m["bm"]
                else:
                    clean(instance, stack)
        r["idle"] = swarm_idle(fleet, work, n, idle_seconds)
        if failover:
            r["kill"] = swarm_node_loss(lab, fleet, work, n, 3)
            clean(fleet.instance)
            # A second fleet, spread over the three nodes again (after the kill every task is on nodes 1 and 2).
            instance = f"bench-sw-bm{trials}"
            live.append((instance, None))
            m = swarm_converge_botmaker(binary, work, lab, names, instance)
            r["reconverge"] = m["running"]
            r["partition"] = swarm_partition(lab, m["bm"], work, n, 3)
    finally:
        if not lab.started:  # a lab this run started goes down whole; one it found is healed and cleaned
            lab.restore()
        for instance, stack in list(live) if not lab.started else ():
            try:
                lab.clean(instance, stack)
            except SystemExit as e:
                print(f"warning: cleaning {instance} on the swarm: {e}", file=sys.stderr)
    return r


def section_swarm(args, compose, work):
    n, trials = args.swarm_bots, args.swarm_trials
    lab = SwarmLab()
    try:
        r = swarm(args.binary, work, lab, n, trials, not args.swarm_skip_failover, args.swarm_idle_seconds)
    finally:
        lab.close()
    v = lab.version
    med = lambda c, i: statistics.median(x[i] for x in r[c])
    span = lambda c: f"{min(x[0] for x in r[c]):.2f}–{max(x[0] for x in r[c]):.2f} s"
    print(f"\n## Swarm: {n} bots on a 3-node lab\n")
    print(f"`scripts/swarm-lab`: {lab.count} dockerd {v['Version']} (API {v['ApiVersion']}) on this machine, each in its own "
          f"network namespace, node 1 the only manager, Swarm's default heartbeat (5 s). Every bot: {IMAGE}, {len(ENV)} env "
          f"entries, init, NET_ADMIN/NET_RAW dropped, pids limit 512, json-file 10m × 3, restart any (2 s), endpoint mode "
          f"dnsrr, update order stop-first. The manager's tasks are looked at every {SWARM_POLL:g} s, the same for every "
          f"contender.\n")
    print(f"### Converge from empty (every service with a task running; median of {trials} trial{'s' if trials != 1 else ''}, in turns)\n")
    print("| contender | every task running (median) | range | command returned (median) | botmaker / this |")
    print("|---|---|---|---|---|")
    rows = [("botmaker", "botmaker `reconcile` (one overlay network per bot)"),
            ("stack", "`docker stack deploy --resolve-image never`, one overlay network per service"),
            ("stack1", "`docker stack deploy --resolve-image never`, the stack's one default network"),
            ("floor", "engine floor: the same network + service per bot over the API, 4 at a time")]
    ours = med("botmaker", 0)
    for c, label in rows:
        print(f"| {label} | {fmt(med(c, 0))} | {span(c)} | {fmt(med(c, 1))} | {ratio(ours, med(c, 0))} |")
    print(f"\nbotmaker's own count for its converging pass (last trial): `{r['stats']}`")
    i = r["idle"]
    ops = ", ".join(f"{k} {v / i['resyncs']:.2f}" for k, v in sorted(i["by_op"].items())) if i["resyncs"] else "n/a"
    print(f"\n### Idle cost ({n} bots converged)\n")
    print("| measure | value |\n|---|---|")
    print(f"| `botmaker run --resync-interval 1`: resyncs in the window | {i['resyncs']:.0f} |")
    print(f"| Docker requests per idle resync (from /metrics) | {i['requests'] / i['resyncs']:.2f} |" if i["resyncs"] else "| requests per resync | n/a |")
    print(f"| by operation, per resync | {ops} |")
    print(f"| actions taken in the window | {i['actions']:.0f} |")
    print(f"| database file and WAL unchanged over the window | {'yes' if i['db_unchanged'] else 'NO'} |")
    print(f"| a no-op `reconcile --stats` (whole process: ping, info, claim, one pass, garbage check) | `{i['noop_stats']}` |")
    if "kill" not in r:
        sys.stdout.flush()
        return
    k, p = r["kill"], r["partition"]
    host = lab.hostname[3]
    print(f"\n### A worker dies (`swarm-lab kill-node 3`: SIGKILL of its dockerd, containerd and containers), `botmaker run` running\n")
    print("| measure | value |\n|---|---|")
    print(f"| bots whose task ran on node 3 | {k['on_node']} of {n} |")
    print(f"| kill → the manager marks node 3 down | {fmt(k['down'])} |")
    print(f"| kill → every bot has a running task on a live node (the manager's tasks; node 3's ignored) | {fmt(k['rescheduled'])} |")
    print(f"| of which the first and the last bot of node 3 running elsewhere | {fmt(k['first_moved'])} / {fmt(k['last_moved'])} |")
    print(f"| kill → `botmaker status` (bot_overview) shows no bot running on {host} | {fmt(k['status_not_running'])} |")
    print(f"| kill → `botmaker status` shows all {n} running and none on {host} | {fmt(k['status'])} |")
    print(f"| `swarm-lab start-node 3` → node 3 Ready again | {fmt(k['start_node'])} |")
    print(f"\n### A partition (`swarm-lab partition 3`, then `heal 3`), node 3's own socket as the witness\n")
    print(f"On a new fleet spread over the 3 nodes again (botmaker converged it in {fmt(r['reconverge'])}).\n")
    print("| measure | value |\n|---|---|")
    print(f"| bots whose task ran on node 3 | {p['on_node']} of {n} |")
    print(f"| partition → the manager marks node 3 down | {fmt(p['down'])} |")
    print(f"| partition → every bot has a running task off node 3 | {fmt(p['replaced'])} |")
    print(f"| of which the first and the last bot of node 3 running elsewhere | {fmt(p['first_moved'])} / {fmt(p['last_moved'])} |")
    print(f"| old containers still running on node 3 at that moment (node 3's socket) | {p['old_running_then']} of {p['on_node']} |")
    print(f"| partition → `botmaker status` shows no bot running on {host} | {fmt(p['status_not_running'])} |")
    print(f"| partition → `botmaker status` shows all {n} running and none on {host} | {fmt(p['status'])} |")
    print(f"| old containers still running on node 3 when healed ({fmt(p['partitioned_for'])} after the cut) | {p['old_running_before_heal']} of {p['on_node']} |")
    print(f"| heal → the first / the last old container stopped | {fmt(p['heal_to_first_stopped'])} / {fmt(p['heal_to_stopped'])} |")
    tc = p["two_copies"]
    if tc:
        print(f"| two copies of a bot running (its replacement running → its old container stopped): median / max | "
              f"{fmt(statistics.median(tc))} / {fmt(max(tc))} |")
    print(f"| containers of the fleet running on the 3 nodes once node 3 is Ready again (each node's socket) | {p['containers_after']} for {n} bots |")
    sys.stdout.flush()


# --- console: logs, exec, stats; and Podman -------------------------------------------------------------------------

PODMAN_SOCK = os.environ.get("PODMAN_SOCK", "/run/podman/podman.sock")
PODMAN_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "podman.sh")
# The log bot writes 1,700 lines of 1,000 bytes: every 17th to stderr (100 kB), the rest to stdout (1.6 MB); then sleeps.
LOG_LINES, LOG_EVERY_STDERR, LOG_LINE_BYTES = 1700, 17, 1000
LOG_COMMAND = ["sh", "-c", "awk 'BEGIN{for(i=1;i<=%d;i++) if(i%%%d==0) printf \"%%06d %%0%dd\\n\", i, 0 > \"/dev/stderr\"; "
               "else printf \"%%06d %%0%dd\\n\", i, 0}'; exec sleep 600"
               % (LOG_LINES, LOG_EVERY_STDERR, LOG_LINE_BYTES - 8, LOG_LINE_BYTES - 8)]
LOG_STDERR_BYTES = LOG_LINES // LOG_EVERY_STDERR * LOG_LINE_BYTES
LOG_STDOUT_BYTES = LOG_LINES * LOG_LINE_BYTES - LOG_STDERR_BYTES


def raw(args, stdin=None):
    """Runs a command with bytes in and out (no decoding): for byte-for-byte comparisons."""
    r = subprocess.run(args, input=stdin, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(args)}\n{r.stderr[-2000:].decode(errors='replace')}")
    return r


def quiet(args, stdin=None):
    """Runs a command with its output thrown away (as `> /dev/null 2>&1` would)."""
    return lambda: sh(args, capture=False, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def in_turns(trials, contenders):
    """Times each contender `trials` times, taking turns trial by trial; returns name → list of seconds."""
    times = {name: [] for name in contenders}
    for _ in range(trials):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
    return times


def stats_url(container, one_shot):
    return f"http://localhost/containers/{container}/stats?stream=false" + ("&one-shot=true" if one_shot else "")


def stats_api(sock, ids, trials):
    """The Engine API's stats over `sock` with curl: one request at a time (curl's own time_total), and one request per
    container all at once (one curl process, a connection each; wall time). Also whether the engine filled precpu_stats."""
    r = {}
    for one_shot, key in ((False, "stream"), (True, "oneshot")):
        single = []
        for i in range(trials):
            out = sh(["curl", "-sf", "--unix-socket", sock, "-o", "/dev/null", "-w", "%{time_total}",
                      stats_url(ids[i % len(ids)], one_shot)]).stdout
            single.append(float(out))
        batch = ["curl", "-sf", "--parallel", "--parallel-immediate", "--parallel-max", "64", "--unix-socket", sock]
        for cid in ids:
            batch += ["-o", "/dev/null", stats_url(cid, one_shot)]
        r[key] = single
        r[key + "_all"] = [timed(lambda: sh(batch)) for _ in range(trials)]
        sample = json.loads(sh(["curl", "-sf", "--unix-socket", sock, stats_url(ids[0], one_shot)]).stdout)
        r[key + "_precpu"] = bool((sample.get("precpu_stats") or {}).get("system_cpu_usage"))
    return r


def status_stats_count(bm):
    """How many bots `status --stats --json` gave a CPU figure (a check that the timed command did its work)."""
    bots = json.loads(bm.run(["status", "--stats", "--json"]).stdout)
    return sum(1 for b in bots if b.get("cpuPercent", b.get("cpu_percent")) is not None)


def wait_log_bot(name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = raw(["docker", "logs", name])
        if len(r.stdout) >= LOG_STDOUT_BYTES and len(r.stderr) >= LOG_STDERR_BYTES:
            return
        time.sleep(0.2)
    raise SystemExit(f"{name} did not write its {LOG_STDOUT_BYTES + LOG_STDERR_BYTES} bytes of logs within {timeout} s")


def console_docker(binary, work, n, trials):
    """logs, exec and status --stats of botmaker against the docker CLI on the same containers, and the raw stats API."""
    bm = Botmaker(binary, work, "bench-console")
    log_bot = "con-log"
    others = [f"con-{i:02d}" for i in range(1, n)]
    command = json.dumps(LOG_COMMAND).replace("'", "''")
    bm.sql(f"INSERT INTO bots (id, image, command) VALUES ('{log_bot}', '{IMAGE}', '{command}');")
    if others:
        bm.add(others)
    bm.run(["reconcile"])
    assert count_running(f"botmaker.instance={bm.instance}") == n
    container = f"botmaker-{log_bot}"
    wait_log_bot(container)
    r = {}
    # logs: byte for byte, stdout and stderr apart, plain and with options; then timed (both to /dev/null).
    r["logs_same"] = []
    for extra in ([], ["--timestamps"], ["--tail", "100"]):
        ours, theirs = raw([binary, "logs", log_bot] + extra + bm.args), raw(["docker", "logs"] + extra + [container])
        r["logs_same"].append((" ".join(extra) or "(none)", ours.stdout == theirs.stdout, ours.stderr == theirs.stderr,
                               len(ours.stdout), len(ours.stderr), len(theirs.stdout), len(theirs.stderr)))
    r["logs"] = in_turns(trials, {"botmaker": quiet([binary, "logs", log_bot] + bm.args),
                                  "docker": quiet(["docker", "logs", container])})
    # exec: a no-op command, then 1 MiB through cat on stdin.
    r["exec"] = in_turns(2 * trials, {"botmaker": quiet([binary, "exec", log_bot] + bm.args + ["--", "true"]),
                                      "docker": quiet(["docker", "exec", container, "true"])})
    payload = os.path.join(work, "stdin-1mib")
    with open(payload, "wb") as f:
        f.write(os.urandom(1 << 20))
    data = open(payload, "rb").read()
    r["exec_i_same"] = (raw([binary, "exec", "-i", log_bot] + bm.args + ["--", "cat"], stdin=data).stdout == data,
                        raw(["docker", "exec", "-i", container, "cat"], stdin=data).stdout == data)
    r["exec_i"] = {"botmaker": [], "docker": []}
    for _ in range(trials):
        for name, args in (("botmaker", [binary, "exec", "-i", log_bot] + bm.args + ["--", "cat"]),
                           ("docker", ["docker", "exec", "-i", container, "cat"])):
            with open(payload, "rb") as f:
                r["exec_i"][name].append(timed(quiet(args, stdin=f)))
    # stats of all n running bots.
    names = [f"botmaker-{b}" for b in [log_bot] + others]
    r["stats_with_cpu"] = status_stats_count(bm)
    r["stats"] = in_turns(trials, {"botmaker": quiet([binary, "status", "--stats"] + bm.args),
                                   "docker": quiet(["docker", "stats", "--no-stream"] + names),
                                   "status": quiet([binary, "status"] + bm.args)})
    ids = sh(["docker", "inspect", "--format", "{{.Id}}"] + names).stdout.split()
    r["api"] = stats_api("/var/run/docker.sock", ids, trials)
    bm.sql("DELETE FROM bots")
    bm.run(["reconcile"])
    return r


def podman_cleanup(instances):
    """Everything of these instances on Podman: containers, networks, the instance claim."""
    for instance in instances:
        label = f"label=botmaker.instance={instance}"
        ids = sh(["podman", "ps", "-aq", "--filter", label], check=False).stdout.split()
        if ids:
            sh(["podman", "rm", "-f", "-t", "0"] + ids, check=False)
        nets = sh(["podman", "network", "ls", "-q", "--filter", label], check=False).stdout.split()
        if nets:
            sh(["podman", "network", "rm", "-f"] + nets, check=False)
        sh(["podman", "volume", "rm", "-f", f"botmaker.claim.{instance}"], check=False)


def podman_count_running(instance):
    return len(sh(["podman", "ps", "-q", "--filter", f"label=botmaker.instance={instance}", "--filter", "status=running"]).stdout.split())


def podman_run_args(name, instance, secrets, network):
    """`podman run -d` of the container botmaker makes on Podman (its labels, init, secrets mount, hardening)."""
    args = ["podman", "run", "-d", "--name", name, "--label", "botmaker.managed=true", "--label", f"botmaker.bot-id={name}",
            "--label", f"botmaker.instance={instance}", "--restart", "unless-stopped", "--init",
            "-v", f"{secrets}:/run/secrets:ro"] + HARDENING
    if network:
        args += ["--network", network]
    for e in ENV:
        args += ["-e", e]
    return args + [IMAGE]


def console_podman(binary, work, n, trials, converge_trials):
    """On Podman's Docker-compatible API: converge n bots from empty, botmaker vs `podman run -d` loops (a network stack
    of its own per bot, `slirp4netns`, as botmaker makes, one at a time and 4 at a time; and on Podman's default
    network), in turns; then status --stats against `podman stats --no-stream`, and the raw stats API."""
    from concurrent.futures import ThreadPoolExecutor

    instances = {"bm": "bench-podman", "net": "bench-podslirp", "net4": "bench-podslirp4", "plain": "bench-podplain"}
    podman_cleanup(instances.values())
    names = [f"pod-{i:02d}" for i in range(n)]
    r = {"botmaker": [], "net": [], "net4": [], "plain": []}
    try:
        bm = Botmaker(binary, work, instances["bm"])
        bm.args += ["--docker-host", f"unix://{PODMAN_SOCK}"]
        for x in names:
            for key in ("net", "net4", "plain"):
                os.makedirs(os.path.join(work, instances[key], x), exist_ok=True)

        def one(key, x):
            inst = instances[key]
            network = None if key == "plain" else "slirp4netns"
            sh(podman_run_args(f"{key}-{x}", inst, os.path.join(work, inst, x), network))

        def loop(key):
            if key == "net4":
                # As many at a time as botmaker's default --concurrency.
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(lambda x: one(key, x), names))
            else:
                for x in names:
                    one(key, x)
        # In turns, botmaker last: its fleet of the last trial stays for the stats below.
        for t in range(converge_trials):
            for key in ("net", "net4", "plain"):
                r[key].append(timed(lambda: loop(key)))
                assert podman_count_running(instances[key]) == n
                podman_cleanup([instances[key]])
            bm.add(names)
            r["botmaker"].append(timed(lambda: bm.run(["reconcile"])))
            assert podman_count_running(instances["bm"]) == n
            if t < converge_trials - 1:
                bm.sql("DELETE FROM bots")
                bm.run(["reconcile"])
        # Stats on botmaker's n running bots.
        r["stats_with_cpu"] = status_stats_count(bm)
        cnames = [f"botmaker-{x}" for x in names]
        r["stats"] = in_turns(trials, {"botmaker": quiet([binary, "status", "--stats"] + bm.args),
                                       "podman": quiet(["podman", "stats", "--no-stream"] + cnames)})
        ids = sh(["podman", "inspect", "--format", "{{.Id}}"] + cnames).stdout.split()
        r["api"] = stats_api(PODMAN_SOCK, ids, trials)
        bm.sql("DELETE FROM bots")
        bm.run(["reconcile"])
        r["left_networks"] = len(sh(["podman", "network", "ls", "-q", "--filter", f"label=botmaker.instance={instances['bm']}"]).stdout.split())
    finally:
        podman_cleanup(instances.values())
    return r


def podman_answers():
    return subprocess.run(["curl", "-sf", "--max-time", "2", "--unix-socket", PODMAN_SOCK, "http://d/_ping"], capture_output=True).returncode == 0


def section_console(args, compose, work):
    n, trials = args.console_bots, args.console_trials
    if n < 1 or trials < 1:
        raise SystemExit("--console-bots and --console-trials must be 1 or more")
    d = console_docker(args.binary, work, n, trials)
    med = lambda values: statistics.median(values)
    ms = lambda values: f"{med(values) * 1000:.0f} ms"
    print(f"\n## Console (logs, exec, stats) and Podman\n")
    print(f"### Docker: botmaker's console commands against the docker CLI on the same containers\n")
    print(f"{n} running bot{'s' if n != 1 else ''} of {IMAGE}. One of them (`con-log`) writes {LOG_LINES:,} lines of "
          f"{LOG_LINE_BYTES:,} bytes with awk, every {LOG_EVERY_STDERR}th to stderr: {LOG_STDOUT_BYTES:,} bytes on stdout "
          f"and {LOG_STDERR_BYTES:,} on stderr, then sleeps. Every command's output goes to /dev/null; the contenders take turns trial by "
          f"trial; times are the median wall time of the whole process.\n")
    print("| command | trials | botmaker | docker CLI | docker / botmaker |\n|---|---|---|---|---|")
    rows = [("logs", "`logs con-log` vs `docker logs botmaker-con-log`", trials),
            ("exec", "`exec con-log -- true` vs `docker exec botmaker-con-log true`", 2 * trials),
            ("exec_i", "`exec -i con-log -- cat` vs `docker exec -i … cat`, 1 MiB on stdin", trials),
            ("stats", f"`status --stats` vs `docker stats --no-stream` of the {n} containers", trials)]
    for key, label, t in rows:
        b, o = d[key]["botmaker"], d[key]["docker"]
        print(f"| {label} | {t} | {ms(b)} | {ms(o)} | {ratio(med(o), med(b))} |")
    print(f"| `status` (no stats: the database only), for reference | {trials} | {ms(d['stats']['status'])} | | |")
    print(f"\n`status --stats --json` gave a CPU figure for {d['stats_with_cpu']} of {n} bots.\n")
    print("| `logs` options | stdout identical | stderr identical | botmaker bytes (stdout / stderr) | docker bytes (stdout / stderr) |")
    print("|---|---|---|---|---|")
    yes = lambda ok: "yes" if ok else "NO"
    for opts, same_out, same_err, bo, be, do, de in d["logs_same"]:
        print(f"| {opts} | {yes(same_out)} | {yes(same_err)} | {bo:,} / {be:,} | {do:,} / {de:,} |")
    print(f"\n`exec -i … cat` gave back the 1 MiB byte for byte: botmaker {yes(d['exec_i_same'][0])}, docker {yes(d['exec_i_same'][1])}.")
    podman = None
    if not args.console_skip_podman:
        was_serving = podman_answers()
        ready = sh(["bash", "-c", f"source '{PODMAN_SH}' && ensure_podman && ensure_podman_images"], check=False)
        try:
            if ready.returncode == 0:
                podman = console_podman(args.binary, work, n, trials, args.console_podman_trials)
                v = json.loads(sh(["curl", "-sf", "--unix-socket", PODMAN_SOCK, "http://d/version"]).stdout)
                podman["version"] = f"{v.get('Version', '?')} (API {v.get('ApiVersion', '?')})"
            else:
                why = (ready.stderr + ready.stdout).strip().splitlines()
                print(f"\nPodman: not available ({why[-1] if why else 'ensure_podman failed'}); its part is skipped.")
        finally:
            if not was_serving:
                sh(["bash", "-c", f"source '{PODMAN_SH}' && stop_podman"], check=False)
    print(f"\n### The Engine API's stats: one-shot or not, one at a time or all at once\n")
    print(f"`curl --unix-socket`: one `GET /containers/{{id}}/stats?stream=false[&one-shot=true]` at a time ({trials} "
          f"request{'s' if trials != 1 else ''}, curl's own `time_total`, median), and one request per running container all at once ({n} "
          f"connections from one `curl --parallel`, wall time of the process, median of {trials}). botmaker's `status --stats` "
          f"makes the stream=false requests concurrently (32 at a time); `run --stats-interval` makes one-shot requests and "
          f"compares each sample with the one of the interval before.\n")
    engines = [("Docker", d["api"])] + ([("Podman", podman["api"])] if podman else [])
    print("| request | " + " | ".join(e for e, _ in engines) + " |")
    print("|---|" + "---|" * len(engines))
    for key, label in (("stream", "one `stream=false`"), ("oneshot", "one `stream=false&one-shot=true`"),
                       ("stream_all", f"{n} × `stream=false` at once"), ("oneshot_all", f"{n} × `one-shot=true` at once")):
        print(f"| {label} | " + " | ".join(ms(a[key]) for _, a in engines) + " |")
    print("| `precpu_stats` filled (a CPU % from one answer): stream=false / one-shot | "
          + " | ".join(f"{yes(a['stream_precpu'])} / {yes(a['oneshot_precpu'])}" for _, a in engines) + " |")
    if podman:
        p, pt = podman, args.console_podman_trials
        print(f"\n### Podman {p['version']} through its Docker-compatible API\n")
        print(f"botmaker with `--docker-host unix://{PODMAN_SOCK}`; the baselines with the `podman` CLI, on the same "
              f"containers botmaker makes ({IMAGE}, {len(ENV)} env entries, labels, `--init`, a read-only secrets mount, "
              f"restart unless-stopped, the hardening). On Podman botmaker gives each bot a network stack of its own "
              f"(`slirp4netns`). Converge from empty: {pt} trial{'s' if pt != 1 else ''} each (median).\n")
        print(f"| converge {n} bots from empty | wall | this / botmaker |\n|---|---|---|")
        ours = med(p["botmaker"])
        for key, label in (("botmaker", "botmaker `reconcile` (`slirp4netns` per bot)"),
                           ("net", "`podman run -d --network slirp4netns` loop"),
                           ("net4", "the same, 4 bots at a time (botmaker's default `--concurrency`)"),
                           ("plain", "`podman run -d` loop (Podman's default network)")):
            print(f"| {label} | {fmt(med(p[key]))} | {ratio(med(p[key]), ours)} |")
        print(f"\n| command ({trials} trial{'s' if trials != 1 else ''}, in turns) | botmaker | podman CLI | podman / botmaker |\n|---|---|---|---|")
        b, o = p["stats"]["botmaker"], p["stats"]["podman"]
        print(f"| `status --stats` vs `podman stats --no-stream` of the {n} containers | {ms(b)} | {ms(o)} | {ratio(med(o), med(b))} |")
        print(f"\n`status --stats --json` gave a CPU figure for {p['stats_with_cpu']} of {n} bots; botmaker networks left "
              f"after removing the bots: {p['left_networks']}.")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--sizes", default="50,100")
    parser.add_argument("--idle-bots", type=int, default=10000)
    parser.add_argument("--idle-running", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--no-compose", action="store_true")
    parser.add_argument("--hol-grace", type=int, default=10, help="--stop-grace of the head-of-line run, seconds")
    parser.add_argument("--hol-trials", type=int, default=5)
    parser.add_argument("--scale-sizes", default="10000,50000")
    parser.add_argument("--scale-trials", type=int, default=10, help="inserts timed per size")
    parser.add_argument("--scale-edits", type=int, default=20, help="single-row edits in the CPU window per size")
    parser.add_argument("--workload-bots", type=int, default=20, help="gateway bots in the workloads section")
    parser.add_argument("--cold-bots", type=int, default=20, help="bots in the images (cold start) section")
    parser.add_argument("--update-trials", type=int, default=5, help="env-change updates timed per strategy and for the floor")
    parser.add_argument("--update-bad-trials", type=int, default=3, help="updates to each bad image per strategy")
    parser.add_argument("--update-observe", type=float, default=10,
                        help="seconds a recreate-strategy bot is watched for an answer after a bad update")
    parser.add_argument("--swarm-bots", type=int, default=50, help="bots of the swarm section (on the 3-node lab)")
    parser.add_argument("--swarm-trials", type=int, default=1, help="converge-from-empty trials per contender in the swarm section")
    parser.add_argument("--swarm-idle-seconds", type=float, default=10, help="idle window of `botmaker run --resync-interval 1` on the swarm")
    parser.add_argument("--swarm-skip-failover", action="store_true", help="swarm section: skip the node loss and the partition")
    parser.add_argument("--console-bots", type=int, default=20, help="running bots of the console section (stats, and the Podman converge)")
    parser.add_argument("--console-trials", type=int, default=5,
                        help="console section: timed runs per command and contender (exec -- true: twice as many)")
    parser.add_argument("--console-podman-trials", type=int, default=1, help="console section: converge-from-empty trials per contender on Podman")
    parser.add_argument("--console-skip-podman", action="store_true", help="console section: Docker only (no Podman install or service)")
    parser.add_argument("--sections", default="converge,idle,latency,hol,scale,workloads,images,updates,swarm,console",
                        help="comma-separated subset of converge,idle,latency,hol,scale,workloads,images,updates,swarm,console, run in that order")
    args = parser.parse_args()
    unknown = set(args.sections.split(",")) - {"converge", "idle", "latency", "hol", "scale", "workloads", "images", "updates", "swarm", "console"}
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    compose = not args.no_compose and shutil.which("docker-compose") is not None
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so every `finally` removes its containers and processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="botmaker-bench-")
    try:
        report(args, compose, work)
    finally:
        cleanup_everything()
        shutil.rmtree(work, ignore_errors=True)


def report(args, compose, work):
    version = sh(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]).stdout.strip()
    cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][:1] or ["?"]
    print(f"# botmaker benchmarks\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"- machine: {os.cpu_count()} cores ({cpu[0]}), {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, {platform.platform()}")
    print(f"- Docker engine {version}; docker-compose {sh(['docker-compose', 'version', '--short']).stdout.strip() if compose else 'not installed'}")
    print(f"- botmaker binary: {args.binary}; image {IMAGE}; {len(ENV)} env entries, read-only secrets mount, --init, unless-stopped, network botmaker, standard hardening on every side\n")
    ensure_network()
    sections = {"converge": section_converge, "idle": section_idle, "latency": section_latency,
                "hol": section_head_of_line, "scale": section_scale, "workloads": section_workloads, "images": section_images,
                "updates": section_updates, "swarm": section_swarm, "console": section_console}
    for name in args.sections.split(","):
        sections[name](args, compose, work)


def section_converge(args, compose, work):
    print("## Converge from empty and recreate after an env change\n")
    print("| N | botmaker | (a) sequential `docker run` | (b) `xargs -P4 docker run` | (c) `docker-compose up -d` | a / botmaker | b / botmaker | c / botmaker | engine floor (API, 4-way) | botmaker / floor | recreate: botmaker | recreate: compose | compose / botmaker |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in [int(x) for x in args.sizes.split(",")]:
        r = converge(args.binary, work, n, compose)
        c = r.get("compose", 0)
        cr = r.get("compose_recreate", 0)
        print(f"| {n} | {fmt(r['botmaker'])} | {fmt(r['seq'])} | {fmt(r['xargs'])} | {fmt(c) if compose else 'n/a'} | "
              f"{ratio(r['seq'], r['botmaker'])} | {ratio(r['xargs'], r['botmaker'])} | {ratio(c, r['botmaker']) if compose else 'n/a'} | "
              f"{fmt(r['floor'])} | {ratio(r['botmaker'], r['floor'])} | "
              f"{fmt(r['botmaker_recreate'])} | {fmt(cr) if compose else 'n/a'} | {ratio(cr, r['botmaker_recreate']) if compose else 'n/a'} |", flush=True)


def section_idle(args, compose, work):
    idle = idle_and_dry_run(args.binary, work, args.idle_bots, args.idle_running, args.idle_seconds)
    print(f"\n## Idle cost: {args.idle_bots} bots ({args.idle_running} running, {args.idle_bots - args.idle_running} stopped)\n")
    print("| measure | value |\n|---|---|")
    print(f"| no-op `reconcile` pass, wall (median of 5, whole process) | {idle['pass_wall'] * 1000:.0f} ms |")
    print(f"| no-op pass, CPU user+sys (median of 5, whole process) | {idle['pass_cpu'] * 1000:.0f} ms |")
    print(f"| no-op pass, botmaker's own count | `{idle['stats']}` |")
    print(f"| database file unchanged by 5 no-op passes | {'yes' if idle['db_unchanged'] else 'NO'} |")
    if idle["service_passes"] > 0:
        print(f"| `botmaker run`: Docker requests per idle resync (from its /metrics; {idle['service_passes']:.0f} resyncs) | "
              f"{idle['service_requests'] / idle['service_passes']:.2f} |")
    print(f"| `botmaker run`: database file and WAL unchanged over the idle window | {'yes' if idle['service_db_unchanged'] else 'NO'} |")
    print(f"| `botmaker run` idle CPU over {idle['idle_seconds']:.0f} s | {idle['idle_cpu_percent']:.2f} % of one core |")
    print(f"| `botmaker run` RSS after {idle['idle_seconds']:.0f} s idle | {idle['idle_rss_mib']:.1f} MiB |")
    print(f"\n## Dry run at scale\n\n`reconcile --dry-run` with {args.idle_bots} rows and {args.idle_running} containers: "
          f"{idle['dry_wall'] * 1000:.0f} ms wall (median of 5, whole process).")


def section_latency(args, compose, work):
    edit, recreate, floor = latency(args.binary, work, args.trials)
    print(f"\n## Reaction latency ({args.trials} trials each, to Docker's `start` event)\n")
    print("| from | p50 | p95 | p50 / floor |\n|---|---|---|---|")
    f50 = pct(floor, 0.5)
    print(f"| floor: `docker run -d` (create + start) | {pct(floor, .5) * 1000:.0f} ms | {pct(floor, .95) * 1000:.0f} ms | 1.00× |")
    print(f"| `sqlite3` insert → container started (`botmaker run`) | {pct(edit, .5) * 1000:.0f} ms | {pct(edit, .95) * 1000:.0f} ms | {pct(edit, .5) / f50:.2f}× |")
    print(f"| `docker rm -f` → recreated and started | {pct(recreate, .5) * 1000:.0f} ms | {pct(recreate, .95) * 1000:.0f} ms | {pct(recreate, .5) / f50:.2f}× |", flush=True)


def section_head_of_line(args, compose, work):
    g, n = args.hol_grace, args.hol_trials
    h = head_of_line(args.binary, work, g, n)
    print(f"\n## Head-of-line blocking: a slow stop of one bot vs the repair of another ({n} trial{'s' if n != 1 else ''}, `--stop-grace {g}`)\n")
    print(f"Bot A's process ignores SIGTERM ({STUBBORN_IMAGE}), so its stop lasts the whole grace period. A is set "
          f"`stopped`; once Docker has sent it SIGTERM (its `kill` event), bot B's container is removed with "
          f"`docker rm -f`, timed to B's new `start` event. The floor is `docker run -d` timed the same way.\n")
    print("| measure | median | max | median / floor |\n|---|---|---|---|")
    h50 = statistics.median(h["floor"])
    print(f"| floor: `docker run -d` (create + start) | {h50 * 1000:.0f} ms | {max(h['floor']) * 1000:.0f} ms | 1.00× |")
    print(f"| B: `docker rm -f` during A's stop → B started | {statistics.median(h['repair']) * 1000:.0f} ms | "
          f"{max(h['repair']) * 1000:.0f} ms | {statistics.median(h['repair']) / h50:.2f}× |")
    reaction = [p - d for p, d in zip(h["repair"], h["removed"])]
    print(f"| of which Docker removing B (`docker rm -f` → `destroy` event) | {statistics.median(h['removed']) * 1000:.0f} ms | "
          f"{max(h['removed']) * 1000:.0f} ms | |")
    print(f"| B: `destroy` event → B started (botmaker's reaction + create + start) | {statistics.median(reaction) * 1000:.0f} ms | "
          f"{max(reaction) * 1000:.0f} ms | {statistics.median(reaction) / h50:.2f}× |")
    print(f"| A: `sqlite3` edit → SIGTERM (`kill` event) | {statistics.median(h['to_term']) * 1000:.0f} ms | {max(h['to_term']) * 1000:.0f} ms | |")
    print(f"| A: SIGTERM → `die` (grace {g} s) | {statistics.median(h['stop']):.2f} s | {max(h['stop']):.2f} s | |")
    print(f"| B running again before A's stop ended | {h['overlap']} of {n} trials | | |", flush=True)


def section_scale(args, compose, work):
    print(f"\n## Scale: a fleet of stopped rows, 5 running\n")
    print(f"Per size: one `sqlite3` insert of a running bot timed to its `start` event ({args.scale_trials} trials), "
          f"against create + start of the same container over the Engine API timed the same way (labelled so that no "
          f"service reacts to it); then {args.scale_edits} single-row edits of a stopped bot, 0.3 s apart, and the "
          f"service's CPU (utime + stime) over that window minus its CPU over an idle window as long.\n")
    print("| rows | insert of rows | start to 5 running + idle | insert → started p50 | engine floor p50 | ours − floor p50 | "
          "insert p95 | floor p95 | CPU per edit | edit window: CPU / idle CPU / length | bots worked during edits | RSS (peak) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in [int(x) for x in args.scale_sizes.split(",") if x]:
        r = scale(args.binary, work, size, args.scale_trials, args.scale_edits)
        o50, f50 = pct(r["ours"], .5), pct(r["floor"], .5)
        passes = "n/a" if r["edit_passes"] is None else f"{r['edit_passes']:.0f}"
        print(f"| {size} | {fmt(r['insert_rows'])} | {fmt(r['startup_idle'])} | {o50 * 1000:.0f} ms | {f50 * 1000:.0f} ms | "
              f"{o50 - f50:+.3f} s | {pct(r['ours'], .95) * 1000:.0f} ms | {pct(r['floor'], .95) * 1000:.0f} ms | "
              f"{r['per_edit'] * 1000:.1f} ms | {r['edit_cpu']:.2f} s / {r['idle_cpu']:.2f} s / {r['window']:.1f} s | "
              f"{passes} | {r['rss_mib']:.1f} MiB ({r['hwm_mib']:.1f}) |", flush=True)


def section_workloads(args, compose, work):
    n = args.workload_bots
    print(f"## OpenClaw-like workloads ({n} gateways: 2 state mounts, a published port, uid 1000, 2 GiB, hardening, a token from a secret)\n")
    print("Each side waits until every gateway is healthy (its image checks /healthz every second).\n")
    print("| N | botmaker `reconcile --wait` | `docker run` loop + health polling | loop / botmaker | env change, paced 1 at a time (default) | env change, 4 at a time | `docker rm -f` + `docker run` loop | loop / botmaker (4) | loop / botmaker (paced) |")
    print("|---|---|---|---|---|---|---|---|---|")
    r = workloads(args.binary, work, n)
    print(f"| {n} | {fmt(r['botmaker'])} | {fmt(r['seq'])} | {ratio(r['seq'], r['botmaker'])} | {fmt(r['botmaker_paced'])} | "
          f"{fmt(r['botmaker_update4'])} | {fmt(r['seq_update'])} | {ratio(r['seq_update'], r['botmaker_update4'])} | "
          f"{ratio(r['seq_update'], r['botmaker_paced'])} |", flush=True)



def section_images(args, compose, work):
    n = args.cold_bots
    print(f"## Cold start from a registry ({n} bots on 2 images of about 4 MB each, only in a local registry)\n")
    print("| N | botmaker `reconcile` | pulls | `docker pull` + `docker run` loop | pulls | loop / botmaker | `docker-compose up -d` | pulls | compose / botmaker |")
    print("|---|---|---|---|---|---|---|---|---|")
    r = cold_start(args.binary, work, n, compose)
    c = r.get("compose", 0)
    print(f"| {n} | {fmt(r['botmaker'])} | {r['botmaker_pulls']} | {fmt(r['loop'])} | {r['loop_pulls']} | {ratio(r['loop'], r['botmaker'])} | "
          f"{fmt(c) if compose else 'n/a'} | {r.get('compose_pulls', 'n/a')} | {ratio(c, r['botmaker']) if compose else 'n/a'} |", flush=True)


def section_updates(args, compose, work):
    n, nb = args.update_trials, args.update_bad_trials
    build_bad_gateway_images(work)
    try:
        r = updates(args.binary, work, n, nb, args.update_observe)
    finally:
        remove_bad_gateway_images()
    ms = lambda values: f"{statistics.median(values) * 1000:.0f} ms"
    mx = lambda values: f"{max(values) * 1000:.0f} ms"
    print(f"\n## Updates: downtime of one update, and recovery from a bad one\n")
    print(f"One gateway ({GATEWAY_IMAGE}: 2 state mounts, a published port, uid 1000, 2 GiB, hardening; its Docker health "
          f"check runs every 1 s). A thread asks http://127.0.0.1:PORT/healthz every 5 ms (a new connection each, "
          f"{PROBE_TIMEOUT * 1000:.0f} ms to answer); the downtime is the gap between the last OK answer before an outage "
          f"and the first OK answer after it, summed over the outages of the trial. The update is an env change "
          f"(`bot set --env`) applied by a one-shot `botmaker reconcile` (default --stop-grace 10; with rollback it returns "
          f"once the new container is confirmed healthy). The floor is `docker stop` + `docker rm` + `docker run` of the "
          f"same container by the CLI. Floor and both strategies take turns trial by trial.\n")
    print(f"| env change ({n} trials each) | downtime median | downtime max | median / floor | outages | command wall median | command wall max |")
    print("|---|---|---|---|---|---|---|")
    floor = r["floor"]
    f50 = statistics.median(floor["down"])
    print(f"| floor: `docker stop` + `docker rm` + `docker run` | {ms(floor['down'])} | {mx(floor['down'])} | 1.00× | "
          f"{floor['outages']} | {ms(floor['wall'])} | {mx(floor['wall'])} |")
    for strategy in ("rollback", "recreate"):
        b = r[strategy]
        print(f"| botmaker, update_strategy {strategy}: `reconcile` | {ms(b['down'])} | {mx(b['down'])} | "
              f"{statistics.median(b['down']) / f50:.2f}× | {b['outages']} | {ms(b['wall'])} | {mx(b['wall'])} |")
    print(f"\nA bad update ({nb} trials each): the bot is set to an image built FROM the stand-in whose health check always "
          f"fails (`HEALTHCHECK --interval=1s --timeout=10s --retries=2 CMD [\"/bin/false\"]`; its httpd still answers) or "
          f"whose process exits at once (`CMD [\"/bin/false\"]`), with an env change. Times are from the start of "
          f"`botmaker reconcile`. With recreate there is no old container to go back to: the table says whether anything "
          f"answered over the {args.update_observe:g} s after `reconcile` returned.\n")
    print("| bad image | strategy | `reconcile` wall median (max) | exit codes | UPDATE_ROLLED_BACK reported | → first answer of the restored old container, median (max) | downtime median (max) | outages | outcome |")
    print("|---|---|---|---|---|---|---|---|---|")
    labels = {"unhealthy": "always unhealthy", "exits": "exits at once"}
    for kind in BAD_GATEWAY_IMAGES:
        for strategy in ("rollback", "recreate"):
            b = r[strategy]["bad"][kind]
            wall = f"{statistics.median(b['wall']):.2f} s ({max(b['wall']):.2f} s)"
            codes = ", ".join(f"{c} ×{b['codes'].count(c)}" for c in sorted(set(b["codes"])))
            if strategy == "rollback":
                answer = f"{statistics.median(b['to_answer']):.2f} s ({max(b['to_answer']):.2f} s)" if b["to_answer"] else "never"
                down = f"{ms(b['down'])} ({mx(b['down'])})"
                outcome = f"old container back in {b['restored']} of {nb}"
            else:
                answer = "n/a (the old container is gone)"
                parts = []
                if b["down_after"]:
                    parts.append(f"down until someone acts ({b['down_after']} of {nb}: no answer for {min(b['silent']):.1f} s and on)")
                if b["answers_after"]:
                    parts.append(f"{ms(b['down'])} ({mx(b['down'])}), then the bad container answers ({b['answers_after']} of {nb})")
                down = "; ".join(parts)
                outcome = (f"not restored; {args.update_observe:g} s after `reconcile` returned the container is "
                           + "; ".join(sorted(set(b["state_after"]))))
            print(f"| {labels[kind]} | {strategy} | {wall} | {codes} | {b['rolled_back']} of {nb} | {answer} | {down} | {b['outages']} | {outcome} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
