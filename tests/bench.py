#!/usr/bin/python3
"""bench.py - the core engine's benchmark (`make bench`): one line per figure

Starts the real processes on loopback and prints, exactly,

    bench zmq_create_per_s <n> tasks/s               pipelined TASK_CREATE over tcp
    bench e2e_callbacks_per_s <n> callbacks/s        create -> worker -> local target
    bench dispatch_p50_ms <x> ms                     due time -> callback received,
    bench dispatch_p99_ms <x> ms                       at 1,000 tasks/s
    bench fill_create_per_s <n> tasks/s              the 1,000,000-task fill itself
    bench broker_rss_mib_1m_delayed <x> MiB          broker VmRSS holding them

Phase 1: aq-broker (fresh data dir) + 2 aq-worker --allow-private-targets +
aq-target; aq-bench create, e2e and latency. Phase 2: a fresh aq-broker and
aq-bench fill with 1,000,000 far-future tasks, then the broker's VmRSS.

A benchmark, not a test: slowness never fails it. A figure whose programs are
missing, or whose run fails or overruns its time budget, is skipped with a
note on stderr. Environment: AQ_BUILD (default build), AQ_BENCH_FILL (tasks
in the fill, default 1000000), AQ_BENCH_SCALE (multiplies the other counts).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("AQ_BUILD", "build")
BIN = os.path.join(BUILD, "bin")
FILL = int(os.environ.get("AQ_BENCH_FILL", "1000000"))
SCALE = float(os.environ.get("AQ_BENCH_SCALE", "1"))

CREATE_COUNT = int(200000 * SCALE)   # ~4 s at the 50,000/s target
E2E_COUNT = int(30000 * SCALE)       # ~3 s at the 10,000/s target
LATENCY_RATE = 1000                  # tasks per second
LATENCY_SECONDS = max(2, int(10 * SCALE))
PIPELINE = 500                       # requests in flight per connection
CONNS = 4                            # connections (threads) per aq-bench


def note(text):
    print("note: " + text, file=sys.stderr, flush=True)


def figure(line):
    print(line, flush=True)


def program(name):
    path = os.path.join(BIN, name)
    return path if os.access(path, os.X_OK) else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return ""


class Procs:
    """The processes of one phase; stop () ends them (SIGTERM, then SIGKILL)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, args, stdout=None):
        log = os.path.join(self.tmp, "%s-%d.log" % (name, len(self.procs)))
        err = open(log, "w")
        proc = subprocess.Popen([program(name)] + args, stdout=stdout or err, stderr=err,
                                stdin=subprocess.DEVNULL)
        proc.log = log
        proc.name = name
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                note("%s did not stop on SIGTERM within 15 s: killed" % proc.name)
                proc.kill()
                proc.wait()
        self.procs = []


def start_broker(procs, data):
    """Starts aq-broker on data with fresh tcp ports; returns (proc, client, workers)."""
    client = "tcp://127.0.0.1:%d" % free_port()
    workers = "tcp://127.0.0.1:%d" % free_port()
    events = "tcp://127.0.0.1:%d" % free_port()
    proc = procs.start("aq-broker", ["--data", data, "--clients", client,
                                     "--workers-endpoint", workers, "--events", events])
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("aq-broker exited with %s: %s" % (proc.returncode, tail(proc.log)))
        if os.path.exists(os.path.join(data, "admin.token")):
            return proc, client, workers
        time.sleep(0.05)
    raise RuntimeError("aq-broker wrote no admin.token within 20 s")


def create_key(data, team):
    """aqctl --data DIR key create: the key, alone on stdout."""
    deadline = time.time() + 20
    while True:
        run = subprocess.run([program("aqctl"), "--data", data, "key", "create", "--team", team],
                             capture_output=True, text=True, timeout=30)
        key = run.stdout.strip()
        if run.returncode == 0 and key and "\n" not in key:
            return key
        if time.time() > deadline:
            raise RuntimeError("aqctl key create failed: %s" % run.stderr.strip())
        time.sleep(0.2)


def bench(args, budget):
    """Runs aq-bench; returns its `bench ...` lines (printed), [] on failure."""
    if not program("aq-bench"):
        note("aq-bench not built: skipped %s" % args[0])
        return []
    try:
        run = subprocess.run([program("aq-bench")] + args, capture_output=True, text=True,
                             timeout=budget)
    except subprocess.TimeoutExpired as e:
        note("aq-bench %s overran its %d s budget: skipped" % (args[0], budget))
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        for line in err.splitlines():
            note(line)
        return [line for line in out.splitlines() if line.startswith("bench ")]
    for line in run.stderr.splitlines():
        note(line)
    if run.returncode != 0:
        note("aq-bench %s exited with %d" % (args[0], run.returncode))
    lines = [line for line in run.stdout.splitlines() if line.startswith("bench ")]
    for line in lines:
        figure(line)
    return lines


def rss_mib(pid):
    """VmRSS (and the anon/file split, for the note) of a process, in MiB."""
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024.0
    return fields


def du_mib(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total / 1048576.0


def phase_traffic(tmp):
    """zmq_create_per_s, e2e_callbacks_per_s, dispatch_p50/p99_ms."""
    need = [p for p in ("aq-broker", "aq-worker", "aq-target", "aqctl") if not program(p)]
    procs = Procs(tmp)
    try:
        if program("aq-broker") is None or program("aqctl") is None:
            note("%s not built: skipped zmq_create_per_s, e2e_callbacks_per_s, dispatch_p99_ms"
                 % ", ".join(need))
            return
        data = os.path.join(tmp, "data-traffic")
        os.mkdir(data)
        broker, client, workers = start_broker(procs, data)
        key = create_key(data, "bench")
        common = ["--broker", client, "--key", key]

        bench(["create"] + common + ["--count", str(CREATE_COUNT), "--pipeline", str(PIPELINE),
                                     "--conns", str(CONNS)], 120)

        if program("aq-worker") is None or program("aq-target") is None:
            note("%s not built: skipped e2e_callbacks_per_s, dispatch_p99_ms" % ", ".join(need))
            return
        target = procs.start("aq-target", ["--port", "0"], stdout=subprocess.PIPE)
        line = target.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "listening":
            raise RuntimeError("aq-target did not say where it listens: %s" % tail(target.log))
        base = "http://127.0.0.1:%s" % line[1]
        for _ in range(2):
            procs.start("aq-worker", ["--broker", workers, "--allow-private-targets"])
        time.sleep(0.5)  # let the workers say READY

        bench(["e2e"] + common + ["--count", str(E2E_COUNT), "--pipeline", str(PIPELINE),
                                  "--conns", str(CONNS), "--target", base + "/ok/e2e",
                                  "--max-seconds", "90"], 150)
        bench(["latency"] + common + ["--rate", str(LATENCY_RATE), "--seconds",
                                      str(LATENCY_SECONDS), "--target", base + "/ok/latency"],
              LATENCY_SECONDS + 60)
        for proc in procs.procs:
            if proc.poll() is not None:
                note("%s exited with %s during the run: %s"
                     % (proc.name, proc.returncode, tail(proc.log)))
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        note("traffic phase stopped: %s" % e)
    finally:
        procs.stop()


def phase_fill(tmp):
    """broker_rss_mib_1m_delayed: a fresh broker holding FILL delayed tasks."""
    missing = [p for p in ("aq-broker", "aqctl", "aq-bench") if not program(p)]
    if missing:
        note("%s not built: skipped broker_rss_mib_1m_delayed" % ", ".join(missing))
        return
    procs = Procs(tmp)
    try:
        data = os.path.join(tmp, "data-fill")
        os.mkdir(data)
        broker, client, _ = start_broker(procs, data)
        key = create_key(data, "fill")
        lines = bench(["fill", "--broker", client, "--key", key, "--count", str(FILL),
                       "--pipeline", str(PIPELINE), "--conns", str(CONNS)], 240)
        if broker.poll() is not None:
            note("aq-broker exited with %s during the fill: %s" % (broker.returncode,
                                                                   tail(broker.log)))
            return
        if not lines:
            note("fill incomplete: skipped broker_rss_mib_1m_delayed")
            return
        time.sleep(1)  # let the last commit settle
        rss = rss_mib(broker.pid)
        name = "broker_rss_mib_1m_delayed" if FILL == 1000000 else "broker_rss_mib_%d_delayed" % FILL
        figure("bench %s %.1f MiB" % (name, rss["VmRSS"]))
        note("broker after the fill: VmRSS %.1f MiB (anon %.1f, file %.1f), peak %.1f MiB, "
             "data dir %.1f MiB" % (rss["VmRSS"], rss.get("RssAnon", 0), rss.get("RssFile", 0),
                                    rss.get("VmHWM", 0), du_mib(data)))
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        note("fill phase stopped: %s" % e)
    finally:
        procs.stop()


def main():
    started = time.time()
    tmp = tempfile.mkdtemp(prefix="aq-bench-")
    try:
        phase_traffic(tmp)
        phase_fill(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    note("benchmark took %.0f s (AQ_BUILD=%s)" % (time.time() - started, BUILD))
    return 0


if __name__ == "__main__":
    sys.exit(main())
