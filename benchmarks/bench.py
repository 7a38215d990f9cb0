#!/usr/bin/env python3
"""botmaker benchmarks: every figure is measured side by side in the same run and printed as a ratio.

Run through benchmarks/run (it installs, starts the engine, builds). Prints Markdown to stdout.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

COMPOSE_TIMEOUT = 300
IMAGE = os.environ.get("BOTMAKER_TEST_IMAGE", "botmaker-test/busybox:latest")
ENV = ["GREETING=hello", "MODEL=openclaw-small"]


def sh(args, check=True, capture=True, **kw):
    r = subprocess.run(args, capture_output=capture, text=True, **kw)
    if check and r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(args)}\n{r.stdout}\n{r.stderr}")
    return r


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def remove_label(label):
    ids = sh(["docker", "ps", "-aq", "--filter", f"label={label}"]).stdout.split()
    for i in range(0, len(ids), 50):
        sh(["docker", "rm", "-f"] + ids[i:i + 50])


def count_running(label):
    return len(sh(["docker", "ps", "-q", "--filter", f"label={label}", "--filter", "status=running"]).stdout.split())


class Botmaker:
    def __init__(self, binary, workdir, instance):
        self.binary, self.instance = binary, instance
        self.db = os.path.join(workdir, f"{instance}.db")
        self.secrets = os.path.join(workdir, f"{instance}-secrets")
        self.args = ["--db", self.db, "--secrets-dir", self.secrets, "--instance", instance]
        self.run(["migrate"])

    def run(self, args, check=True):
        return sh([self.binary] + args + self.args, check=check)

    def sql(self, statement):
        return sh(["sqlite3", "-cmd", ".timeout 10000", self.db, statement]).stdout.strip()

    def add(self, names, env=ENV, state="running"):
        env_json = json.dumps(env).replace("'", "''")
        rows = ",".join(f"('{n}', '{IMAGE}', '{env_json}', '{state}')" for n in names)
        self.sql(f"BEGIN; INSERT INTO bots (id, image, environment, desired_state) VALUES {rows}; COMMIT;")

    def secrets_dir(self, name):
        path = os.path.join(self.secrets, name)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path


def docker_run_args(name, instance, secrets, env):
    args = ["docker", "run", "-d", "--name", name, "--label", "botmaker.managed=true", "--label", f"botmaker.bot-id={name}",
            "--label", f"botmaker.instance={instance}", "--restart", "unless-stopped", "--network", "bridge", "--init",
            "-v", f"{secrets}:/run/secrets:ro"]
    for e in env:
        args += ["-e", e]
    return args + [IMAGE]


def compose_file(path, names, instance, secrets_root, env):
    lines = ["version: '2.4'", "services:"]
    for n in names:
        os.makedirs(os.path.join(secrets_root, n), mode=0o700, exist_ok=True)
        lines += [f"  {n}:", f"    image: {IMAGE}", f"    container_name: compose-{n}", "    restart: unless-stopped",
                  "    network_mode: bridge", "    init: true", "    labels:", "      botmaker.managed: 'true'",
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


def api_floor(work, names, instance):
    """The engine's own floor: create + start over the API, 4 at a time, no CLI and no bookkeeping."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name):
        secrets = os.path.join(work, instance, name)
        os.makedirs(secrets, exist_ok=True)
        created = api("POST", f"/containers/create?name=floor-{name}", {
            "Image": IMAGE, "Env": ENV,
            "Labels": {"botmaker.managed": "true", "botmaker.bot-id": name, "botmaker.instance": instance},
            "HostConfig": {"Binds": [f"{secrets}:/run/secrets:ro"], "RestartPolicy": {"Name": "unless-stopped"},
                           "NetworkMode": "bridge", "Init": True}})
        api("POST", f"/containers/{created['Id']}/start")

    with ThreadPoolExecutor(4) as pool:
        seconds = timed(lambda: list(pool.map(one, names)))
    assert count_running(f"botmaker.instance={instance}") == len(names)
    remove_label(f"botmaker.instance={instance}")
    return seconds


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
    results["botmaker_recreate"] = timed(lambda: bm.run(["reconcile"]))
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
    proc = subprocess.Popen([binary, "run", "--log-level", "warning", "--metrics-addr", f"127.0.0.1:{port}"] + bm.args,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5)
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_ticks():
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def rss_kib():
        with open(f"/proc/{proc.pid}/status") as f:
            return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])

    m0 = scrape(port)
    c0, t0 = cpu_ticks(), time.perf_counter()
    time.sleep(idle_seconds)
    c1, t1 = cpu_ticks(), time.perf_counter()
    m1 = scrape(port)
    rss = rss_kib()
    service_passes = m1.get("botmaker_reconcile_passes_total", 0) - m0.get("botmaker_reconcile_passes_total", 0)
    service_requests = m1.get("botmaker_docker_requests_total", 0) - m0.get("botmaker_docker_requests_total", 0)
    proc.terminate()
    proc.wait(timeout=30)
    bm.sql("DELETE FROM bots")
    bm.run(["reconcile"])
    return {
        "pass_wall": statistics.median(p[0] for p in passes), "pass_cpu": statistics.median(p[1] for p in passes),
        "stats": passes[-1][2], "db_unchanged": unchanged, "dry_wall": statistics.median(dry),
        "idle_cpu_percent": 100.0 * (c1 - c0) / tick / (t1 - t0), "idle_rss_mib": rss / 1024, "idle_seconds": idle_seconds,
        "service_passes": service_passes, "service_requests": service_requests,
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
    """`docker events` for one instance label, with arrival of start events by container name."""

    def __init__(self, instance):
        self.starts = {}
        self.cv = threading.Condition()
        self.proc = subprocess.Popen(["docker", "events", "--filter", "type=container", "--filter", f"label=botmaker.instance={instance}",
                                      "--filter", "event=start", "--format", "{{json .}}"], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self.read, daemon=True).start()
        time.sleep(0.5)

    def read(self):
        for line in self.proc.stdout:
            event = json.loads(line)
            with self.cv:
                self.starts.setdefault(event["Actor"]["Attributes"]["name"], []).append(event["timeNano"])
                self.cv.notify_all()

    def wait_start(self, name, after_ns, timeout=60):
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for t in self.starts.get(name, []):
                    if t >= after_ns:
                        return (t - after_ns) / 1e9
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise SystemExit(f"no start event for {name}")
                self.cv.wait(remaining)

    def close(self):
        self.proc.terminate()


def pct(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def latency(binary, work, trials):
    bm = Botmaker(binary, work, "bench-lat")
    events = Events(bm.instance)
    floor_events = Events("bench-floor")
    proc = subprocess.Popen([binary, "run", "--log-level", "warning"] + bm.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        proc.terminate()
        proc.wait(timeout=30)
        events.close()
        floor_events.close()
        remove_label("botmaker.instance=bench-floor")
        bm.sql("DELETE FROM bots")
        bm.run(["reconcile"])
    return edit, recreate, floor


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--sizes", default="50,100")
    parser.add_argument("--idle-bots", type=int, default=1000)
    parser.add_argument("--idle-running", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--no-compose", action="store_true")
    args = parser.parse_args()
    compose = not args.no_compose and shutil.which("docker-compose") is not None
    work = tempfile.mkdtemp(prefix="botmaker-bench-")
    version = sh(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]).stdout.strip()
    cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][:1] or ["?"]
    print(f"# botmaker benchmarks\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"- machine: {os.cpu_count()} cores ({cpu[0]}), {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, {platform.platform()}")
    print(f"- Docker engine {version}; docker-compose {sh(['docker-compose', 'version', '--short']).stdout.strip() if compose else 'not installed'}")
    print(f"- botmaker binary: {args.binary}; image {IMAGE}; {len(ENV)} env entries, read-only secrets mount, --init, unless-stopped, bridge\n")

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

    idle = idle_and_dry_run(args.binary, work, args.idle_bots, args.idle_running, args.idle_seconds)
    print(f"\n## Idle cost: {args.idle_bots} bots ({args.idle_running} running, {args.idle_bots - args.idle_running} stopped)\n")
    print("| measure | value |\n|---|---|")
    print(f"| no-op `reconcile` pass, wall (median of 5, whole process) | {idle['pass_wall'] * 1000:.0f} ms |")
    print(f"| no-op pass, CPU user+sys (median of 5, whole process) | {idle['pass_cpu'] * 1000:.0f} ms |")
    print(f"| no-op pass, botmaker's own count | `{idle['stats']}` |")
    print(f"| database file unchanged by 5 no-op passes | {'yes' if idle['db_unchanged'] else 'NO'} |")
    if idle["service_passes"] > 0:
        print(f"| `botmaker run`: Docker requests per idle pass (from its /metrics; {idle['service_passes']:.0f} passes) | "
              f"{idle['service_requests'] / idle['service_passes']:.2f} |")
    print(f"| `botmaker run` idle CPU over {idle['idle_seconds']:.0f} s | {idle['idle_cpu_percent']:.2f} % of one core |")
    print(f"| `botmaker run` RSS after {idle['idle_seconds']:.0f} s idle | {idle['idle_rss_mib']:.1f} MiB |")
    print(f"\n## Dry run at scale\n\n`reconcile --dry-run` with {args.idle_bots} rows and {args.idle_running} containers: "
          f"{idle['dry_wall'] * 1000:.0f} ms wall (median of 5, whole process).")

    edit, recreate, floor = latency(args.binary, work, args.trials)
    print(f"\n## Reaction latency ({args.trials} trials each, to Docker's `start` event)\n")
    print("| from | p50 | p95 | p50 / floor |\n|---|---|---|---|")
    f50 = pct(floor, 0.5)
    print(f"| floor: `docker run -d` (create + start) | {pct(floor, .5) * 1000:.0f} ms | {pct(floor, .95) * 1000:.0f} ms | 1.00× |")
    print(f"| `sqlite3` insert → container started (`botmaker run`) | {pct(edit, .5) * 1000:.0f} ms | {pct(edit, .95) * 1000:.0f} ms | {pct(edit, .5) / f50:.2f}× |")
    print(f"| `docker rm -f` → recreated and started | {pct(recreate, .5) * 1000:.0f} ms | {pct(recreate, .95) * 1000:.0f} ms | {pct(recreate, .5) / f50:.2f}× |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
