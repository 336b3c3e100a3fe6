#!/usr/bin/python3
"""test_gateway_fake.py - aq-gateway against a fake broker (a pyzmq ROUTER)

Starts the real aq-gateway binary on loopback, pointed at a ROUTER in this
process that records each protocol request and answers with scripted
REPLYs. Checks that HTTP is translated into the right messages and that
replies map back to status, body and headers; that local answers (404, 405,
401, 400, 413) never reach the broker; that long polls are held without
blocking anything else; that slow and oversized clients are cut off while
/healthz keeps answering; that a silent broker gives 503; and the
command line (startup failures, SIGTERM).

Run: AQ_BUILD=build/gw /usr/bin/python3 tests/test_gateway_fake.py [-v]
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import msgpack
import requests
import zmq

BUILD = os.environ.get("AQ_BUILD", "build")
GATEWAY = os.path.join(BUILD, "bin", "aq-gateway")
VERBOSE = "-v" in sys.argv

CMD = {"TASK_CREATE": 1, "TASK_GET": 2, "TASK_LIST": 3, "TASK_CANCEL": 4, "TASK_RETRY": 5,
       "TASK_ATTEMPTS": 6, "STATS": 13, "REPLY": 14, "HEARTBEAT": 15, "ERROR": 24}
NAME = {v: k for k, v in CMD.items()}


def encode(cmd, body):
    return bytes([0xAA, 0xA1, 0x01, CMD[cmd]]) + msgpack.packb(body, use_bin_type=True)


def decode(frame):
    assert frame[:3] == b"\xaa\xa1\x01", frame[:4]
    return NAME.get(frame[3], frame[3]), msgpack.unpackb(frame[4:], raw=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeBroker(threading.Thread):
    """A ROUTER that answers by script. script(cmd, msg) returns
    (delay_seconds, reply_fields) or None to stay silent."""

    def __init__(self, endpoint):
        super().__init__(daemon=True)
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.sndhwm = 0         # a ROUTER drops past its HWM; set before bind
        self.sock.bind(endpoint)
        self.requests = []           # (cmd, msg) in arrival order, heartbeats excluded
        self.heartbeats = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.later = []              # (due, rid, reply)

    def script(self, cmd, msg):
        corr = msg["corr"]
        if cmd == "TASK_CREATE":
            task = dict(msg["task"])
            task.update({"id": "550e8400-e29b-41d4-a716-446655440000", "status": "pending"})
            return 0, {"corr": corr, "status": 200 if msg.get("idem") == "seen" else 201,
                       "body": {"task": task}}
        if cmd == "TASK_GET":
            if msg["id"] == "silent":
                return None
            if msg["id"] == "missing":
                return 0, {"corr": corr, "status": 404, "error": "Task not found"}
            if msg["key"] == "bad":
                return 0, {"corr": corr, "status": 401, "error": "Invalid or revoked API key"}
            return msg.get("wait", 0) * 0.5, {"corr": corr, "status": 200, "body": {
                "task": {"id": msg["id"], "status": "completed", "maxRetries": 3,
                         "result": {"statusCode": 200, "body": "{\"ok\": true}",
                                    "duration": 12}}}}
        if cmd == "TASK_LIST":
            return 0, {"corr": corr, "status": 200, "body": {
                "tasks": [], "pagination": {"total": 0, "limit": int(msg.get("limit", 50)),
                                            "offset": 0, "hasMore": False}}}
        if cmd == "TASK_CANCEL":
            return 0, {"corr": corr, "status": 409,
                       "error": "Task cannot be cancelled in status completed"}
        if cmd == "TASK_RETRY":
            return 0, {"corr": corr, "status": 429, "retryAfter": 12,
                       "error": "Rate limit exceeded. Upgrade your plan for higher limits."}
        if cmd == "TASK_ATTEMPTS" and msg["id"] == "old-broker":
            # what a broker that does not know a command answers
            return 0, {"corr": corr, "code": 400,
                       "reason": "unexpected command on the client socket"}, "ERROR"
        if cmd == "TASK_ATTEMPTS":
            return 0, {"corr": corr, "status": 200, "body": {"attempts": [
                {"attempt": 1, "startedAt": "2024-01-15T10:30:01.000Z", "duration": 12,
                 "statusCode": 200}]}}
        if cmd == "STATS":
            return 0, {"corr": corr, "status": 200, "body": {
                "tasks": {"pending": 3, "completed": 7},
                "counters": {"created": 10, "dispatched": 7, "completed": 7, "failed": 0,
                             "retried": 1, "malformed": 0},
                "workers": 2, "lmdbBytes": 65536,
                "attemptLatencyMs": {"10": 2, "100": 6, "+Inf": 7}, "attemptLatencySumMs": 321}}
        return 0, {"corr": corr, "status": 400, "error": "unexpected"}

    def run(self):
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while not self.stopping:
            now = time.monotonic()
            due = [x for x in self.later if x[0] <= now]
            self.later = [x for x in self.later if x[0] > now]
            for _, rid, reply in due:
                self.sock.send_multipart([rid, encode("REPLY", reply)])
            if not poller.poll(10):
                continue
            while True:
                try:
                    rid, frame = self.sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                cmd, msg = decode(frame)
                if cmd == "HEARTBEAT":
                    self.heartbeats += 1
                    self.sock.send_multipart([rid, encode("HEARTBEAT", {})])
                    continue
                with self.lock:
                    self.requests.append((cmd, msg))
                answer = self.script(cmd, msg)
                if answer is not None:
                    delay, reply = answer[:2]
                    kind = answer[2] if len(answer) > 2 else "REPLY"
                    if delay:
                        self.later.append((time.monotonic() + delay, rid, reply))
                    else:
                        self.sock.send_multipart([rid, encode(kind, reply)])

    def last(self, cmd):
        """The latest request with this command (others may run concurrently)."""
        with self.lock:
            for c, msg in reversed(self.requests):
                if c == cmd:
                    return c, msg
            return None, None

    def count(self):
        """Requests seen, leaving out the background "silent" one."""
        with self.lock:
            return len([m for _, m in self.requests if m.get("id") != "silent"])


class Gateway:
    def __init__(self, broker, *extra):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        args = [GATEWAY, "--broker", broker, "--listen", "127.0.0.1:%d" % self.port] + list(extra)
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        until = time.time() + 10
        while time.time() < until:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("aq-gateway exited: " + self.proc.stderr.read())
                time.sleep(0.05)
        raise RuntimeError("aq-gateway did not listen")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "killed"
        err = self.proc.stderr.read()
        if VERBOSE:
            sys.stderr.write(err)
        return rc, err


# ---------------------------------------------------------------------------

passed = failed = 0


def check(name, fn):
    global passed, failed
    started = time.time()
    try:
        fn()
        passed += 1
        print("PASS %s (%.1fs)" % (name, time.time() - started))
    except Exception as e:  # noqa: BLE001 - report any failure and go on
        failed += 1
        import traceback
        traceback.print_exc()
        print("FAIL %s: %r" % (name, e))


KEY = {"Authorization": "Bearer aq_test_key"}


def raw_request(port, data, read_timeout=5.0):
    """Sends bytes, returns (response bytes, seconds until the server closed or answered)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(read_timeout)
    started = time.time()
    s.sendall(data)
    chunks = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        pass
    s.close()
    return chunks, time.time() - started


def main():
    if not os.access(GATEWAY, os.X_OK):
        print("no %s: build it first (make BUILD=%s %s)" % (GATEWAY, BUILD, GATEWAY))
        return 1
    broker_ep = "tcp://127.0.0.1:%d" % free_port()
    broker = FakeBroker(broker_ep)
    broker.start()
    gw = Gateway(broker_ep, "--deadline", "3", "--timeout", "10")
    base = gw.base

    def create():
        body = {"targetUrl": "https://api.example.com/webhook", "method": "POST",
                "headers": {"Authorization": "Bearer service-token"},
                "body": "{\"action\": \"process\", \"data\": {\"id\": 123}}",
                "maxRetries": 3, "retryBackoff": "exponential", "priority": 8}
        r = requests.post(base + "/v1/tasks", json=body,
                          headers=dict(KEY, **{"Idempotency-Key": "order-1"}))
        assert r.status_code == 201, r.text
        assert r.headers["Content-Type"] == "application/json"
        task = r.json()["task"]
        assert task["priority"] == 8 and task["status"] == "pending"
        # the REPLY body passes through byte for byte (compact, order kept)
        assert r.text.startswith('{"task":{"targetUrl":"https://api.example.com/webhook",')
        cmd, msg = broker.last("TASK_CREATE")
        assert cmd == "TASK_CREATE"
        assert msg["key"] == "aq_test_key" and msg["idem"] == "order-1"
        assert msg["task"] == body and isinstance(msg["corr"], int)
        # idempotent repeat: the broker says 200
        r = requests.post(base + "/v1/tasks", json=body,
                          headers=dict(KEY, **{"Idempotency-Key": "seen"}))
        assert r.status_code == 200
        # unknown fields are the broker's call: the gateway passes them on
        r = requests.post(base + "/v1/tasks", headers=KEY,
                          data='{"targetUrl": "https://x", "delayuntil": "2030-01-01"}')
        assert broker.last("TASK_CREATE")[1]["task"]["delayuntil"] == "2030-01-01"

    def get_list_and_friends():
        r = requests.get(base + "/v1/tasks/abc", headers=KEY)
        assert r.status_code == 200 and r.json()["task"]["result"]["duration"] == 12
        cmd, msg = broker.last("TASK_GET")
        assert msg["id"] == "abc" and "wait" not in msg
        r = requests.get(base + "/v1/tasks?status=pending&limit=10&offset=0&sortOrder=asc",
                         headers=KEY)
        assert r.status_code == 200, r.text
        assert r.json()["pagination"]["limit"] == 10
        cmd, msg = broker.last("TASK_LIST")
        assert cmd == "TASK_LIST"
        assert (msg["status"], msg["limit"], msg["offset"], msg["sortOrder"]) == \
            ("pending", "10", "0", "asc")
        r = requests.post(base + "/v1/tasks/abc/cancel", headers=KEY)
        assert r.status_code == 409
        assert r.json() == {"error": "Task cannot be cancelled in status completed"}
        r = requests.post(base + "/v1/tasks/abc/retry", headers=KEY)
        assert r.status_code == 429 and r.headers["Retry-After"] == "12"
        assert r.json() == {"error": "Rate limit exceeded. Upgrade your plan for higher limits."}
        r = requests.get(base + "/v1/tasks/abc/attempts", headers=KEY)
        assert r.status_code == 200 and r.json()["attempts"][0]["attempt"] == 1
        assert broker.last("TASK_ATTEMPTS")[1]["id"] == "abc"
        # an ERROR for the request (an older broker) is a 502 at once, not a 503 after 10 s
        start = time.monotonic()
        r = requests.get(base + "/v1/tasks/old-broker/attempts", headers=KEY)
        assert r.status_code == 502 and r.json() == {"error": "Bad reply from broker"}, r.text
        assert time.monotonic() - start < 2, time.monotonic() - start
        r = requests.get(base + "/v1/tasks/missing", headers=KEY)
        assert r.status_code == 404 and r.json() == {"error": "Task not found"}
        r = requests.get(base + "/v1/tasks/abc", headers={"Authorization": "Bearer bad"})
        assert r.status_code == 401 and r.json() == {"error": "Invalid or revoked API key"}

    def local_answers():
        before = broker.count()
        cases = [
            ("GET", "/nope", {}, None, 404, {"error": "Not found"}),
            ("GET", "/v1/tasks/a/b/c", KEY, None, 404, {"error": "Not found"}),
            ("DELETE", "/v1/tasks/abc", KEY, None, 405, {"error": "Method not allowed"}),
            ("GET", "/v1/tasks", {}, None, 401, {"error": "API key required"}),
            ("POST", "/v1/tasks", {"Authorization": "Bearer "}, "{}", 401,
             {"error": "API key required"}),
            ("GET", "/v1/tasks/abc?wait=26", KEY, None, 400,
             {"error": "wait must be a number between 0 and 25"}),
            ("GET", "/v1/tasks/abc?wait=x", KEY, None, 400,
             {"error": "wait must be a number between 0 and 25"}),
            ("GET", "/v1/tasks?limit=5&page=2", KEY, None, 400,
             {"error": "Unknown query parameter: page"}),
            ("POST", "/v1/tasks", KEY, "", 400, {"error": "Request body must be a JSON object"}),
            ("POST", "/v1/tasks", KEY, "[]", 400,
             {"error": "Request body must be a JSON object"}),
            ("POST", "/v1/tasks", KEY, '{"targetUrl": "https://x",}', 400,
             {"error": "Invalid JSON at line 1, column 27"}),
            ("POST", "/v1/tasks", KEY, '{\n  "targetUrl": https\n}', 400,
             {"error": "Invalid JSON at line 2, column 20"}),
            ("POST", "/v1/tasks", KEY, '{"a": 1, "a": 2}', 400,
             {"error": "Invalid JSON at line 1, column 12"}),
            ("POST", "/v1/tasks", KEY, "{\"a\":" * 33 + "1" + "}" * 33, 400,
             {"error": "JSON nesting must be at most 32 levels deep"}),
        ]
        for method, path, headers, data, status, body in cases:
            r = requests.request(method, base + path, headers=headers, data=data)
            assert r.status_code == status, (method, path, r.status_code, r.text)
            assert r.json() == body, (method, path, r.text)
            assert r.headers["Content-Type"] == "application/json"
        r = requests.put(base + "/v1/tasks", headers=KEY)
        assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"
        assert broker.count() == before, "local answers must not reach the broker"

    def healthz_and_metrics():
        r = requests.get(base + "/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok", "broker": "ok"}, r.text
        r = requests.get(base + "/metrics")
        assert r.status_code == 401
        r = requests.get(base + "/metrics", headers=KEY)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4"
        for line in ['asyncqueue_tasks{status="pending"} 3',
                     "asyncqueue_tasks_created_total 10",
                     "asyncqueue_workers_connected 2", "asyncqueue_lmdb_bytes 65536",
                     'asyncqueue_attempt_duration_ms_bucket{le="100"} 6',
                     "asyncqueue_attempt_duration_ms_sum 321",
                     "asyncqueue_attempt_duration_ms_count 7"]:
            assert line + "\n" in r.text, line
        assert broker.last("STATS")[1]["key"] == "aq_test_key"

    def long_polls():
        # 300 concurrent long polls are held while other requests are served
        n = 300
        results = [None] * n

        def poll(i):
            try:
                r = requests.get(base + "/v1/tasks/t%d?wait=4" % i, headers=KEY, timeout=20)
                results[i] = r.status_code
            except Exception as e:  # noqa: BLE001
                results[i] = repr(e)

        started = time.time()
        threads = [threading.Thread(target=poll, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        t0 = time.time()
        r = requests.get(base + "/healthz")
        assert r.status_code == 200 and time.time() - t0 < 0.5
        for t in threads:
            t.join()
        took = time.time() - started
        assert results == [200] * n, [x for x in results if x != 200][:3]
        assert 1.9 < took < 8, took  # the fake holds each 2 s (wait * 0.5)

    def oversize():
        # Content-Length over the limit: 413 without sending a byte of body
        head = (b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                b"Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n")
        data, took = raw_request(gw.port, head)
        assert data.startswith(b"HTTP/1.1 413 "), data[:80]
        assert data.endswith(b'{"error":"Request body too large"}'), data
        assert took < 1, took
        # a chunked body that grows past the limit
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(20):  # 1.25 MiB
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        s.settimeout(5)
        data = s.recv(65536)
        s.close()
        assert data.startswith(b"HTTP/1.1 413 "), data[:80]
        # exactly the limit is fine (and reaches the broker as a task)
        body = b'{"targetUrl": "https://x", "body": "' + b"y" * 200000 + b'"}'
        r = requests.post(base + "/v1/tasks", headers=KEY, data=body)
        assert r.status_code == 201, r.status_code
        # headers are capped by the per-connection memory (16 KiB): 15,000
        # bytes of one header reach the broker, 16,000 and 100,000 get 431
        r = requests.get(base + "/v1/tasks/missing", headers=dict(KEY, **{"X-Big": "z" * 15000}))
        assert r.status_code == 404 and r.json() == {"error": "Task not found"}, r.text
        for size in (16000, 100000):
            r = requests.get(base + "/v1/tasks/abc", headers=dict(KEY, **{"X-Big": "z" * size}))
            assert r.status_code == 431, (size, r.status_code)

    def slowloris():
        # one header byte per second: cut off by the 3 s deadline, while
        # /healthz keeps answering
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.settimeout(0.2)
        s.sendall(b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\n")
        started = time.time()
        closed_at = None
        healthz_ok = 0
        while time.time() - started < 10:
            try:
                s.sendall(b"X")
                data = s.recv(1024)
                if data == b"":
                    closed_at = time.time() - started
                    break
            except socket.timeout:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.time() - started
                break
            r = requests.get(base + "/healthz", timeout=2)
            assert r.status_code == 200
            healthz_ok += 1
            time.sleep(0.8)
        s.close()
        assert closed_at is not None and 2.5 < closed_at < 5, closed_at
        assert healthz_ok >= 2

    def silent_broker():
        # no REPLY at all: 503 after wait + 10 s
        started = time.time()
        r = requests.get(base + "/v1/tasks/silent", headers=KEY, timeout=30)
        took = time.time() - started
        assert r.status_code == 503 and r.json() == {"error": "Broker unavailable"}, r.text
        assert 9.5 < took < 12.5, took

    silent_result = {}

    def silent_in_background():
        try:
            silent_broker()
            silent_result["ok"] = True
        except Exception as e:  # noqa: BLE001
            silent_result["error"] = e

    silent = threading.Thread(target=silent_in_background)
    silent.start()

    check("create: body to TASK_CREATE, reply verbatim", create)
    check("get/list/cancel/retry/attempts: fields and error mapping", get_list_and_friends)
    check("local answers: 404 405 401 400 without the broker", local_answers)
    check("healthz and metrics", healthz_and_metrics)
    check("300 concurrent long polls held", long_polls)
    check("oversize bodies and headers", oversize)
    check("slowloris cut off by the request deadline", slowloris)

    def silent_done():
        silent.join()
        if "error" in silent_result:
            raise silent_result["error"]
    check("silent broker: 503 after wait + 10 s", silent_done)

    def silent_broker_idle():
        # A request is first held without suspending its connection (MHD
        # runs every millisecond for it), then suspended after 10 ms: 50
        # requests the broker never answers must leave the gateway's loop
        # asleep, not waking a thousand times a second.
        conns = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.sendall(b"GET /v1/tasks/silent HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: Bearer aq_test_key\r\n\r\n")
            conns.append(s)
        status = "/proc/%d/task/%d/status" % (gw.proc.pid, gw.proc.pid)

        def switches():
            with open(status) as f:
                return sum(int(line.split()[1]) for line in f
                           if "ctxt_switches" in line)
        time.sleep(0.5)
        before = switches()
        time.sleep(2)
        woke = switches() - before
        for s in conns:
            s.close()
        assert woke < 200, "the gateway loop woke %d times in 2 s" % woke
    check("silent broker: held requests leave the loop asleep", silent_broker_idle)

    def heartbeat():
        assert broker.heartbeats >= 1  # the gateway pings when idle
    check("idle broker pinged", heartbeat)

    def sigterm():
        rc, err = gw.stop()
        assert rc == 0, (rc, err)
        assert "stopped" in err
    check("SIGTERM: clean stop", sigterm)

    def startup_failures():
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        for args, text in [
            (["--listen", "127.0.0.1:%d" % port], "Address already in use"),
            (["--listen", "nowhere"], "expected HOST:PORT"),
            (["--broker", "nonsense"], "cannot connect to broker 'nonsense'"),
            (["--max-body", "abc"], "invalid value for --max-body"),
            (["--frobnicate"], "unknown or incomplete option"),
        ]:
            p = subprocess.run([GATEWAY] + args, capture_output=True, text=True, timeout=10)
            assert p.returncode == 1, (args, p.returncode)
            lines = [x for x in p.stderr.splitlines() if x.strip()]
            assert len(lines) == 1 and text in lines[0], (args, p.stderr)
        blocker.close()
        p = subprocess.run([GATEWAY, "--help"], capture_output=True, text=True, timeout=10)
        assert p.returncode == 0 and "--broker" in p.stdout
    check("startup failures: one line, exit 1", startup_failures)

    def no_broker():
        g = Gateway("tcp://127.0.0.1:%d" % free_port())
        try:
            time.sleep(0.3)
            r = requests.get(g.base + "/healthz")
            assert r.json() == {"status": "ok", "broker": "unreachable"}, r.text
        finally:
            assert g.stop()[0] == 0
    check("no broker: healthz says unreachable", no_broker)

    broker.stopping = True
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def test_gateway_against_fake_broker():
    """The real aq-gateway in front of a Python fake broker: every check above."""
    assert main() == 0, "some gateway checks failed (see the output)"


test_gateway_against_fake_broker.timeout = 180


if __name__ == "__main__":
    sys.exit(main())
