"""aqtest.py - harness for the asyncqueue process tests

Starts the real binaries on loopback (aq-broker, aq-worker, aq-gateway,
aq-target), captures each one's output to a log file in the test's tmp
directory, and speaks the wire protocol to the broker with a small client
written from proto/aq_proto.h alone (not from the C codec), so it also
cross-checks the golden vectors in proto/vectors.

    target = aqtest.start_target()
    broker = aqtest.start_broker(backoff_base_ms=200)
    aqtest.start_workers(broker, 2)
    cli = broker.client(key=broker.new_key('team-a'))
    task = cli.create(targetUrl=target.url('/ok/hello'))
    done = cli.wait_terminal(task['id'])

Binaries come from $AQ_BUILD/bin (default build/bin). The runner
(tests/run.py) sets AQ_TEST_TMP to a fresh directory per test and calls
cleanup(); an atexit hook does the same when a test module runs alone.
Every process started here is stopped at the end (SIGTERM, then SIGKILL),
and cleanup() reports any that died unexpectedly, did not stop on SIGTERM or
exited with a non-zero status.
"""

import atexit
import datetime
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import msgpack
import requests
import zmq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build_dir():
    build = os.environ.get('AQ_BUILD', 'build')
    if os.path.isabs(build) or os.path.isdir(build):
        return os.path.abspath(build)
    return os.path.join(ROOT, build)


BUILD = _build_dir()
BIN = os.path.join(BUILD, 'bin')
HEARTBEAT_MS = 200  # tests run broker and workers with short heartbeats


def binary(name):
    """Path of an executable in $AQ_BUILD/bin; raises if it was not built."""
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        raise AssertionError('%s is not built (looked in %s)' % (name, BIN))
    return path


def have(name):
    return os.access(os.path.join(BIN, name), os.X_OK)


_tmp = None
notes = []  # fallbacks the harness took, reported by the runner


def tmpdir():
    """This test's scratch directory ($AQ_TEST_TMP, or one made on first use)."""
    global _tmp
    if _tmp is None:
        _tmp = os.environ.get('AQ_TEST_TMP') or tempfile.mkdtemp(prefix='aqtest-')
        os.makedirs(_tmp, exist_ok=True)
    return _tmp


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


_ports_given = set()


def now_ms():
    return time.time() * 1000.0


def iso(ms):
    """ISO 8601 UTC with milliseconds, as the API writes timestamps."""
    ms = int(ms)
    dt = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return dt.strftime('%Y-%m-%dT%H:%M:%S') + '.%03dZ' % (ms % 1000)


def parse_iso(text):
    """Epoch ms of an ISO 8601 timestamp such as 2024-01-15T10:30:00.000Z."""
    dt = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    return dt.timestamp() * 1000.0


def is_uuid(text):
    """True for a UUID in its canonical lower-case text form."""
    try:
        return str(uuid.UUID(text)) == text
    except (ValueError, TypeError, AttributeError):
        return False


def wait_until(fn, timeout, what, interval=0.02):
    """Calls fn until it returns a true value, which is returned. Raises
    AssertionError naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        check_processes()
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %gs waiting for %s' % (timeout, what))
        time.sleep(interval)


def timeout(seconds):
    """Decorator: the runner's time limit for this test (default 60 s)."""
    def mark(fn):
        fn.timeout = seconds
        return fn
    return mark


# ---------------------------------------------------------------------------
# The wire protocol, from proto/aq_proto.h

SIGNATURE = b'\xaa\xa1'
VERSION = 1
COMMANDS = {
    'TASK_CREATE': 1, 'TASK_GET': 2, 'TASK_LIST': 3, 'TASK_CANCEL': 4,
    'TASK_RETRY': 5, 'TASK_ATTEMPTS': 6, 'TEAM_CREATE': 7, 'TEAM_LIST': 8,
    'KEY_CREATE': 9, 'KEY_LIST': 10, 'KEY_REVOKE': 11, 'AUTH': 12, 'STATS': 13,
    'REPLY': 14, 'HEARTBEAT': 15, 'TEAM_SECRET': 16, 'TEAM_LIMIT': 17, 'READY': 20, 'JOB': 21, 'RESULT': 22,
    'BYE': 23, 'ERROR': 24, 'TOKEN_CREATE': 25, 'TOKEN_LIST': 26, 'TOKEN_DELETE': 27,
    'TASK_SIGNAL': 28, 'EVENT': 30, 'SCHEDULE_CREATE': 31, 'SCHEDULE_LIST': 32,
    'SCHEDULE_GET': 33, 'SCHEDULE_UPDATE': 34, 'SCHEDULE_RUN_NOW': 35, 'SCHEDULE_SNOOZE': 36,
    'SCHEDULE_PAUSE': 37, 'SCHEDULE_RESUME': 38, 'SCHEDULE_CANCEL': 39, 'SCHEDULE_RUNS': 40,
    'SCHEDULE_PREVIEW': 41, 'EVENT_FIRE': 42, 'TASK_BATCH': 43, 'TASK_BULK': 44, 'BULK_GET': 45,
    'FLOW_LIST': 50, 'FLOW_GET': 51, 'FLOW_SET': 52,
    'FLOW_PAUSE': 53, 'FLOW_RESUME': 54,
}
NAMES = {v: k for k, v in COMMANDS.items()}
ADMIN_COMMANDS = {'TEAM_CREATE', 'TEAM_LIST', 'KEY_CREATE', 'KEY_LIST', 'KEY_REVOKE',
                  'TEAM_SECRET', 'TEAM_LIMIT'}
CLIENT_COMMANDS = ADMIN_COMMANDS | {'TASK_CREATE', 'TASK_GET', 'TASK_LIST', 'TASK_CANCEL',
                                    'TASK_RETRY', 'TASK_ATTEMPTS', 'AUTH', 'STATS',
                                    'TOKEN_CREATE', 'TOKEN_LIST', 'TOKEN_DELETE', 'TASK_SIGNAL',
                                    'SCHEDULE_CREATE', 'SCHEDULE_LIST', 'SCHEDULE_GET',
                                    'SCHEDULE_UPDATE', 'SCHEDULE_RUN_NOW', 'SCHEDULE_SNOOZE',
                                    'SCHEDULE_PAUSE', 'SCHEDULE_RESUME', 'SCHEDULE_CANCEL',
                                    'SCHEDULE_RUNS', 'SCHEDULE_PREVIEW', 'EVENT_FIRE',
                                    'TASK_BATCH', 'TASK_BULK', 'BULK_GET',
                                    'FLOW_LIST', 'FLOW_GET', 'FLOW_SET', 'FLOW_PAUSE',
                                    'FLOW_RESUME'}


class ProtocolError(Exception):
    pass


def pack(value):
    """msgpack bytes of a JSON-like value: maps in insertion order, the
    smallest encoding of every integer, string and container length (as
    msgpack-c's msgpack_pack_int64 / _str / _map / _array choose), floats as
    float64. Written from the msgpack spec, independent of the C codec."""
    out = bytearray()
    _pack(value, out)
    return bytes(out)


def _pack(v, out):
    if v is None:
        out.append(0xc0)
    elif v is True:
        out.append(0xc3)
    elif v is False:
        out.append(0xc2)
    elif isinstance(v, int):
        if v >= 0:
            if v < 0x80:
                out.append(v)
            elif v < 0x100:
                out += b'\xcc' + v.to_bytes(1, 'big')
            elif v < 0x10000:
                out += b'\xcd' + v.to_bytes(2, 'big')
            elif v < 0x100000000:
                out += b'\xce' + v.to_bytes(4, 'big')
            elif v < 0x8000000000000000:  # the C side carries int64 only
                out += b'\xcf' + v.to_bytes(8, 'big')
            else:
                raise ProtocolError('integer out of range: %d' % v)
        else:
            if v >= -32:
                out.append(v & 0xff)
            elif v >= -0x80:
                out += b'\xd0' + v.to_bytes(1, 'big', signed=True)
            elif v >= -0x8000:
                out += b'\xd1' + v.to_bytes(2, 'big', signed=True)
            elif v >= -0x80000000:
                out += b'\xd2' + v.to_bytes(4, 'big', signed=True)
            elif v >= -0x8000000000000000:
                out += b'\xd3' + v.to_bytes(8, 'big', signed=True)
            else:
                raise ProtocolError('integer out of range: %d' % v)
    elif isinstance(v, float):
        out += b'\xcb' + struct.pack('>d', v)
    elif isinstance(v, str):
        data = v.encode('utf-8')
        n = len(data)
        if n < 32:
            out.append(0xa0 | n)
        elif n < 0x100:
            out += b'\xd9' + n.to_bytes(1, 'big')
        elif n < 0x10000:
            out += b'\xda' + n.to_bytes(2, 'big')
        else:
            out += b'\xdb' + n.to_bytes(4, 'big')
        out += data
    elif isinstance(v, (list, tuple)):
        _pack_len(len(v), 0x90, b'\xdc', b'\xdd', out)
        for item in v:
            _pack(item, out)
    elif isinstance(v, dict):
        _pack_len(len(v), 0x80, b'\xde', b'\xdf', out)
        for key, item in v.items():
            if not isinstance(key, str):
                raise ProtocolError('map keys must be strings: %r' % (key,))
            _pack(key, out)
            _pack(item, out)
    else:
        raise ProtocolError('cannot encode %r' % (v,))


def _pack_len(n, fix, m16, m32, out):
    if n < 16:
        out.append(fix | n)
    elif n < 0x10000:
        out += m16 + n.to_bytes(2, 'big')
    else:
        out += m32 + n.to_bytes(4, 'big')


def encode(cmd, fields=None):
    """One frame: AA A1 <version> <cmd> <msgpack map>."""
    cmd_id = COMMANDS[cmd] if isinstance(cmd, str) else cmd
    return SIGNATURE + bytes([VERSION, cmd_id]) + pack(fields if fields is not None else {})


def decode(frame):
    """(command name, fields) of one frame; ProtocolError if malformed."""
    if len(frame) < 4:
        raise ProtocolError('frame shorter than the header: %r' % frame)
    if frame[:2] != SIGNATURE:
        raise ProtocolError('bad signature: %s' % frame[:2].hex())
    if frame[2] != VERSION:
        raise ProtocolError('unsupported version %d' % frame[2])
    if frame[3] not in NAMES:
        raise ProtocolError('unknown command %d' % frame[3])
    try:
        fields = msgpack.unpackb(frame[4:], raw=False, strict_map_key=True)
    except Exception as e:
        raise ProtocolError('malformed body: %s' % e)
    if not isinstance(fields, dict):
        raise ProtocolError('body is not a map')
    return NAMES[frame[3]], fields


_ctx = None


def context():
    global _ctx
    if _ctx is None:
        _ctx = zmq.Context()
    return _ctx


# ---------------------------------------------------------------------------
# CURVE certificates (czmq's format, made by `aqctl cert create`)

def cert_keys(path):
    """(public, secret) Z85 keys of a czmq certificate file as bytes; secret
    is None in a public certificate."""
    keys = {}
    with open(path) as f:
        for line in f:
            name, _, value = line.strip().partition('=')
            if name.strip() in ('public-key', 'secret-key'):
                keys[name.strip()] = value.strip().strip('"').encode()
    return keys.get('public-key'), keys.get('secret-key')


def make_cert(path):
    """`aqctl cert create PATH`: returns (PATH, PATH_secret)."""
    run = subprocess.run([binary('aqctl'), 'cert', 'create', path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30)
    assert run.returncode == 0, 'aqctl cert create %s: %s' % (path, run.stderr.decode())
    return path, path + '_secret'


class Certs:
    """A broker certificate and its allow directories, in tmpdir()/name:
    client(name) and worker(name) make admitted certificates, stranger(name)
    one nobody admits. Each returns (PATH, PATH_secret)."""

    def __init__(self, name='certs'):
        self.dir = os.path.join(tmpdir(), name)
        self.clients = os.path.join(self.dir, 'clients')
        self.workers = os.path.join(self.dir, 'workers')
        os.makedirs(self.clients)
        os.makedirs(self.workers)
        self.broker, self.broker_secret = make_cert(os.path.join(self.dir, 'broker'))

    def _admitted(self, name, folder):
        path, secret = make_cert(os.path.join(self.dir, name))
        if folder:
            with open(path) as src, open(os.path.join(folder, name), 'w') as dst:
                dst.write(src.read())
        return path, secret

    def client(self, name):
        return self._admitted(name, self.clients)

    def worker(self, name):
        return self._admitted(name, self.workers)

    def stranger(self, name):
        return self._admitted(name, None)

    def broker_args(self):
        return ['--cert', self.broker_secret, '--allow-clients', self.clients,
                '--allow-workers', self.workers]

    def peer_args(self, secret):
        """--cert and --broker-cert for a gateway, worker or aqctl."""
        return ['--cert', secret, '--broker-cert', self.broker]


class Client:
    """A DEALER speaking the client (or, raw, the worker) dialog.

    call() sends one request with a fresh corr and the key or admin token,
    and returns the REPLY's fields as a dict; send()/recv() pipeline.
    Messages that are not the awaited reply are kept in self.other.
    curve=(secret certificate path, broker public certificate path) speaks
    CURVE."""

    def __init__(self, endpoint, key=None, admin=None, identity=None, curve=None):
        self.endpoint = endpoint
        self.key = key
        self.admin = admin
        self.sock = context().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 100000)
        self.sock.setsockopt(zmq.RCVHWM, 100000)
        if identity:
            self.sock.setsockopt(zmq.IDENTITY, identity)
        if curve:
            public, secret = cert_keys(curve[0])
            self.sock.curve_publickey = public
            self.sock.curve_secretkey = secret
            self.sock.curve_serverkey = cert_keys(curve[1])[0]
        self.sock.connect(endpoint)
        self.corr = random.randrange(1, 1000) * 1000
        self.pending = {}  # corr -> reply, replies received while waiting for another
        self.other = []    # (cmd, fields) of non-REPLY messages

    def close(self):
        self.sock.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self, cmd, fields):
        fields = dict(fields or {})
        if cmd in CLIENT_COMMANDS:
            if 'corr' not in fields:
                self.corr += 1
                fields = dict(corr=self.corr, **fields)
            if cmd in ADMIN_COMMANDS or (cmd == 'STATS' and self.admin and not self.key):
                if self.admin is not None and 'admin' not in fields:
                    fields['admin'] = self.admin
            elif self.key is not None and 'key' not in fields:
                fields['key'] = self.key
        return fields

    def send(self, cmd, fields=None):
        """Sends one message; returns its corr (None for non-requests)."""
        fields = self._fill(cmd, fields)
        self.sock.send(encode(cmd, fields))
        return fields.get('corr')

    def send_raw(self, *frames):
        self.sock.send_multipart(list(frames))

    def recv(self, timeout=5.0):
        """(cmd, fields) of the next message, or None after timeout seconds."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        frames = self.sock.recv_multipart()
        return decode(frames[-1])

    def recv_reply(self, timeout=5.0):
        """The next REPLY's fields (any corr), or None after timeout. Fails
        at once if a process of the test died meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.0, min(0.5, deadline - time.monotonic())))
            if msg is None:
                check_processes()
                if time.monotonic() >= deadline:
                    return None
                continue
            if msg[0] == 'REPLY':
                return msg[1]
            self.other.append(msg)

    def call(self, cmd, fields=None, timeout=10.0):
        """The REPLY fields {corr, status, body?, error?, retryAfter?}."""
        corr = self.send(cmd, fields)
        deadline = time.monotonic() + timeout
        while corr not in self.pending:
            reply = self.recv_reply(max(0.0, deadline - time.monotonic()))
            if reply is None:
                raise AssertionError('no REPLY to %s within %gs from %s'
                                     % (cmd, timeout, self.endpoint))
            self.pending[reply.get('corr')] = reply
        return self.pending.pop(corr)

    def pipeline(self, requests_, window=500, timeout=30.0):
        """Sends [(cmd, fields)...] keeping `window` in flight; returns the
        replies in request order. Raises if any is missing at the end."""
        replies = [None] * len(requests_)
        by_corr = {}
        sent = done = 0
        deadline = time.monotonic() + timeout
        while done < len(requests_):
            while sent < len(requests_) and sent - done < window:
                cmd, fields = requests_[sent]
                by_corr[self.send(cmd, fields)] = sent
                sent += 1
            reply = self.recv_reply(max(0.0, deadline - time.monotonic()))
            if reply is None:
                raise AssertionError('pipeline: %d of %d replies within %gs'
                                     % (done, len(requests_), timeout))
            index = by_corr.pop(reply.get('corr'), None)
            if index is not None:
                replies[index] = reply
                done += 1
        return replies

    # Task helpers over call(): each asserts the expected status.

    def create(self, idem=None, timeout=10.0, **task):
        """Creates a task (REST body fields as keywords); returns the task."""
        fields = {'task': task}
        if idem is not None:
            fields['idem'] = idem
        reply = self.call('TASK_CREATE', fields, timeout)
        assert reply.get('status') == 201, 'TASK_CREATE %r -> %r' % (task, reply)
        return reply['body']['task']

    def create_many(self, tasks, window=500, timeout=60.0):
        replies = self.pipeline([('TASK_CREATE', {'task': t}) for t in tasks],
                                window, timeout)
        bad = [r for r in replies if r.get('status') != 201]
        assert not bad, '%d TASK_CREATE failed, first: %r' % (len(bad), bad[0])
        return [r['body']['task'] for r in replies]

    def get(self, task_id, wait=None):
        fields = {'id': task_id}
        if wait is not None:
            fields['wait'] = wait
        reply = self.call('TASK_GET', fields, timeout=(wait or 0) + 10.0)
        assert reply.get('status') == 200, 'TASK_GET %s -> %r' % (task_id, reply)
        return reply['body']['task']

    def get_many(self, ids, timeout=30.0):
        replies = self.pipeline([('TASK_GET', {'id': i}) for i in ids], timeout=timeout)
        out = {}
        for task_id, reply in zip(ids, replies):
            assert reply.get('status') == 200, 'TASK_GET %s -> %r' % (task_id, reply)
            out[task_id] = reply['body']['task']
        return out

    def wait_status(self, task_id, statuses, timeout=10.0):
        """The task once its status is in statuses (a str or a set)."""
        statuses = {statuses} if isinstance(statuses, str) else set(statuses)
        last = {}

        def check():
            last['task'] = self.get(task_id)
            return last['task'] if last['task'].get('status') in statuses else None
        try:
            return wait_until(check, timeout, 'task %s to be %s' % (task_id, '/'.join(sorted(statuses))),
                              interval=0.05)
        except AssertionError as e:
            raise AssertionError('%s; last seen: %s' % (e, json.dumps(last.get('task'))))

    def wait_terminal(self, task_id, timeout=10.0):
        return self.wait_status(task_id, TERMINAL, timeout)

    def wait_all_terminal(self, ids, timeout=30.0):
        """{id: task} once every task is terminal."""
        ids = list(ids)
        final = {}
        deadline = time.monotonic() + timeout
        while True:
            todo = [i for i in ids if i not in final]
            for task_id, task in self.get_many(todo, timeout=max(5.0, deadline - time.monotonic())).items():
                if task.get('status') in TERMINAL:
                    final[task_id] = task
            if len(final) == len(ids):
                return final
            if time.monotonic() > deadline:
                left = [i for i in ids if i not in final]
                sample = self.get(left[0])
                raise AssertionError('%d of %d tasks not terminal after %gs, e.g. %s'
                                     % (len(left), len(ids), timeout, json.dumps(sample)))
            time.sleep(0.1)

    def stats(self):
        reply = self.call('STATS', {})
        assert reply.get('status') == 200, 'STATS -> %r' % reply
        return reply['body']


TERMINAL = {'completed', 'failed', 'timeout', 'cancelled'}


# ---------------------------------------------------------------------------
# Processes

_procs = []


class Proc:
    """One child process with its output in tmpdir()/<name>.log."""

    def __init__(self, name, args, env=None, cwd=None):
        self.name = name
        self.args = [str(a) for a in args]
        self.env = env
        self.cwd = cwd
        self.log_path = os.path.join(tmpdir(), name + '.log')
        self.popen = None
        self.done = False     # stopped or killed on purpose
        self.problems = []    # teardown findings
        self.may_exit = False  # exiting on its own is not a problem
        self.start()
        _procs.append(self)

    def start(self):
        log = open(self.log_path, 'ab')
        log.write(('=== %s %s\n' % (iso(now_ms()), ' '.join(self.args))).encode())
        log.flush()
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.popen = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, env=env, cwd=self.cwd)
        log.close()
        self.done = False

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def tail(self, lines=15):
        return '\n'.join(self.log().rstrip('\n').split('\n')[-lines:])

    def check_alive(self):
        if not self.alive():
            raise AssertionError('%s exited with %s; log tail:\n%s'
                                 % (self.name, describe_status(self.popen.returncode), self.tail()))

    def kill9(self):
        """SIGKILL and reap; the process is expected to be gone."""
        self.done = True
        if self.alive():
            self.popen.kill()
        self.popen.wait()

    def stop(self, grace=10.0):
        """SIGTERM, then SIGKILL after grace seconds. Returns problems found
        (did not stop, non-zero exit) and remembers them for cleanup()."""
        if self.done:
            return []
        problems = []
        if not self.alive():
            if not self.may_exit:
                problems.append('%s exited unexpectedly with %s'
                                % (self.name, describe_status(self.popen.returncode)))
        else:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
                if self.popen.returncode != 0:
                    problems.append('%s exited with %s after SIGTERM'
                                    % (self.name, describe_status(self.popen.returncode)))
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                problems.append('%s did not exit within %gs of SIGTERM' % (self.name, grace))
        self.done = True
        self.problems += problems
        return problems

    def restart(self):
        if self.alive():
            self.kill9()
        with open(self.log_path, 'ab') as log:
            log.write(b'=== restart\n')
        self.start()


def peak_rss(proc):
    """Peak resident memory of a process in bytes (VmHWM)."""
    with open('/proc/%d/status' % proc.pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    raise AssertionError('no VmHWM for pid %d' % proc.pid)


def check_processes():
    """Raises if a process of this test exited that should be running."""
    for proc in _procs:
        if not proc.done and not proc.may_exit and proc.popen.poll() is not None:
            proc.done = True  # reported here, not again at cleanup
            raise AssertionError('%s exited unexpectedly with %s (see %s)'
                                 % (proc.name, describe_status(proc.popen.returncode),
                                    os.path.basename(proc.log_path)))


def describe_status(code):
    if code is None:
        return 'no status (running)'
    if code < 0:
        try:
            return 'signal %s' % signal.Signals(-code).name
        except ValueError:
            return 'signal %d' % -code
    return 'status %d' % code


def cleanup():
    """Stops every process (workers, gateways, brokers, then the rest) and
    returns the problems seen: unexpected deaths, slow or failed shutdowns."""
    order = {'worker': 0, 'gateway': 1, 'broker': 2}

    def rank(proc):
        for prefix, value in order.items():
            if proc.name.startswith(prefix):
                return value
        return 3
    problems = []
    for proc in sorted(_procs, key=rank):
        try:
            proc.stop()
        except Exception as e:  # never leave a process behind
            problems.append('%s: stop failed: %s' % (proc.name, e))
            try:
                proc.popen.kill()
            except Exception:
                pass
        problems += proc.problems
    seen = set()
    unique = [p for p in problems if not (p in seen or seen.add(p))]
    _procs.clear()
    global _ctx
    if _ctx is not None:
        _ctx.destroy(0)
        _ctx = None
    return unique


atexit.register(cleanup)


def processes():
    return list(_procs)


# ---------------------------------------------------------------------------
# A raw HTTP client (http.client: every byte and header as sent)

class HttpReply:
    def __init__(self, status, headers, data, elapsed):
        self.status = status
        self.headers = headers          # lower-case names
        self.data = data                # bytes
        self.elapsed = elapsed          # seconds
        self.text = data.decode('utf-8', 'replace')
        try:
            self.json = json.loads(self.text)
        except ValueError:
            self.json = None

    @property
    def error(self):
        return self.json.get('error') if isinstance(self.json, dict) else None

    def __repr__(self):
        return '%d %s' % (self.status, self.text[:800])


def auth_matrix(api, endpoints, mine, theirs, read_key, other_key, invalid=('garbage',),
                missing=(None,), bogus_ids=(), not_found='Task not found'):
    """Asks every endpoint with the credentials a client can get wrong and
    returns what was answered wrong (empty when all is right).

    endpoints: (method, path template with {id}, body, writes). A credential
    is a key (None: no Authorization) or a dict of headers. missing ones get
    401 "API key required", invalid ones 401 "Invalid or revoked API key";
    read_key 403 "Access denied" where the endpoint writes, else 200. Where
    the path has {id}: the other team's id with api's key, api's id with
    other_key and each of bogus_ids are all 404 not_found."""
    wrong = []

    def check(method, path, body, credential, status, error):
        key, headers = (None, credential) if isinstance(credential, dict) else (credential, None)
        reply = api.call(method, path, body, key=key, headers=headers)
        if reply.status != status or (error is not None and reply.json != {'error': error}):
            wrong.append('%s %s with %s -> %r, expected %d %s' % (
                method, path, 'no key' if credential is None else str(credential)[:24] + '...',
                reply, status, error or ''))

    for method, template, body, writes in endpoints:
        path = template.format(id=mine)
        for credential in missing:
            check(method, path, body, credential, 401, 'API key required')
        for credential in invalid:
            check(method, path, body, credential, 401, 'Invalid or revoked API key')
        check(method, path, body, read_key, 403 if writes else 200,
              'Access denied' if writes else None)
        if '{id}' in template:
            check(method, template.format(id=theirs), body, api.key, 404, not_found)
            check(method, path, body, other_key, 404, not_found)
            for bogus in bogus_ids:
                check(method, template.format(id=bogus), body, api.key, 404, not_found)
    return wrong


class HttpClient:
    """One keep-alive HTTP/1.1 connection. call() sends a request with
    `Authorization: Bearer <key>` (the connection's key unless key= is
    given; key=None sends none) and returns an HttpReply."""

    def __init__(self, port, key=None, timeout=40.0):
        self.port = port
        self.key = key
        self.conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)

    def call(self, method, path, body=None, key='', headers=None):
        hdrs = {}
        key = self.key if key == '' else key
        if key is not None:
            hdrs['Authorization'] = 'Bearer ' + key
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode('utf-8')
        if body is not None:
            hdrs['Content-Type'] = 'application/json'
        hdrs.update(headers or {})
        start = time.monotonic()
        try:
            self.conn.request(method, path, body=body, headers=hdrs)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        elapsed = time.monotonic() - start
        return HttpReply(response.status, {k.lower(): v for k, v in response.getheaders()},
                         data, elapsed)

    def get(self, path, **kw):
        return self.call('GET', path, **kw)

    def post(self, path, body=None, **kw):
        return self.call('POST', path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call('PUT', path, body, **kw)

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------------------
# The target

class Target:
    """aq-target on an ephemeral port."""

    def __init__(self, name='target'):
        self.proc = Proc(name, [binary('aq-target'), '--port', '0'])
        match = wait_until(lambda: self._port() or (not self.proc.alive() and 'dead'),
                           10, 'aq-target to listen')
        if match == 'dead':
            self.proc.check_alive()
        self.port = match
        self.base = 'http://127.0.0.1:%d' % self.port
        self.http = requests.Session()

    def _port(self):
        for line in self.proc.log().split('\n'):
            if line.startswith('listening '):
                return int(line.split()[1])
        return None

    def url(self, path):
        return self.base + path

    def stats(self):
        return self.http.get(self.base + '/_stats', timeout=10).json()

    def requests(self, prefix=None):
        params = {'path': prefix} if prefix else None
        return self.http.get(self.base + '/_requests', params=params, timeout=30).json()

    def latency(self):
        return self.http.get(self.base + '/_latency', timeout=10).json()

    def reset(self):
        self.http.post(self.base + '/_reset', timeout=10).raise_for_status()

    def concurrency(self, name):
        """{current, max, count} of the requests to /concurrent/<ms>/<name>."""
        return self.http.get(self.base + '/_concurrency', params={'name': name},
                             timeout=10).json()

    def wait_requests(self, prefix, count, timeout=10.0):
        """The requests under prefix once there are at least count."""
        last = []

        def check():
            last[:] = self.requests(prefix)
            return last if len(last) >= count else None
        try:
            return list(wait_until(check, timeout, '%d requests to %s' % (count, prefix),
                                   interval=0.02))
        except AssertionError as e:
            raise AssertionError('%s (got %d)' % (e, len(last)))


def start_target():
    return Target()


# ---------------------------------------------------------------------------
# Broker, workers, keys

class Broker:
    """aq-broker with a temp data dir and tcp endpoints on free ports: with
    --insecure, or with CURVE when certs (a Certs) is given; then clients
    and workers the harness starts use admitted certificates.
    restart() and kill9() keep the data dir and the endpoints; env adds to
    the process's environment."""

    def __init__(self, name='broker', data=None, backoff_base_ms=None, backoff_cap_ms=None,
                 heartbeat_ms=HEARTBEAT_MS, nosync=False, extra=(), certs=None, env=None):
        self.name = name
        self.certs = certs
        self.curve = (certs.client(name + '-harness')[1], certs.broker) if certs else None
        self.data = data or os.path.join(tmpdir(), name + '.data')
        os.makedirs(self.data, exist_ok=True)
        self.client_ep = 'tcp://127.0.0.1:%d' % free_port()
        self.worker_ep = 'tcp://127.0.0.1:%d' % free_port()
        self.events_ep = 'tcp://127.0.0.1:%d' % free_port()
        args = [binary('aq-broker'), '--data', self.data, '--clients', self.client_ep,
                '--workers-endpoint', self.worker_ep, '--events', self.events_ep]
        if backoff_base_ms is not None:
            args += ['--backoff-base-ms', backoff_base_ms]
        if backoff_cap_ms is not None:
            args += ['--backoff-cap-ms', backoff_cap_ms]
        if heartbeat_ms is not None:
            args += ['--heartbeat-ms', heartbeat_ms]
        if nosync:
            args.append('--nosync')
        args += certs.broker_args() if certs else ['--insecure']
        args += list(extra)
        self.proc = Proc(name, args, env=env)
        self._admin = None
        self.wait_ready()

    @property
    def admin_token(self):
        if self._admin is None:
            with open(os.path.join(self.data, 'admin.token')) as f:
                self._admin = f.read().strip()
        return self._admin

    def wait_ready(self, timeout=20.0):
        """Waits for admin.token and an answered STATS."""
        token = os.path.join(self.data, 'admin.token')

        def token_there():
            self.proc.check_alive()
            return os.path.exists(token) and os.path.getsize(token) > 0
        wait_until(token_there, timeout, '%s to write admin.token' % self.name)
        with self.client(admin=self.admin_token) as cli:
            deadline = time.monotonic() + timeout
            while True:
                self.proc.check_alive()
                try:
                    reply = cli.call('STATS', {}, timeout=1.0)
                    if reply.get('status') == 200:
                        return
                except AssertionError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError('%s does not answer STATS within %gs; log:\n%s'
                                         % (self.name, timeout, self.proc.tail()))

    def client(self, key=None, admin=None):
        return Client(self.client_ep, key=key, admin=admin, curve=self.curve)

    def admin(self):
        return self.client(admin=self.admin_token)

    def kill9(self):
        self.proc.kill9()

    def restart(self, timeout=20.0):
        self.proc.restart()
        self.wait_ready(timeout)

    def stats(self):
        with self.admin() as cli:
            return cli.stats()

    def wait_workers(self, count, timeout=10.0):
        """Waits until STATS shows at least count workers."""
        with self.admin() as cli:
            wait_until(lambda: cli.stats().get('workers', 0) >= count, timeout,
                       '%d workers connected to %s' % (count, self.name), interval=0.05)

    def new_key(self, team, scope=None):
        """A new API key for team: `aqctl --data DIR key create --team NAME`,
        or KEY_CREATE with the admin token when aqctl is not built."""
        if have('aqctl'):
            args = [binary('aqctl'), '--data', self.data, 'key', 'create', '--team', team]
            if scope:
                args += ['--scope', scope]
            log_path = os.path.join(tmpdir(), 'aqctl.log')
            with open(log_path, 'ab') as log:
                log.write(('=== %s\n' % ' '.join(args)).encode())
                log.flush()
                run = subprocess.run(args, stdout=subprocess.PIPE, stderr=log, timeout=30)
            key = run.stdout.decode().strip()
            if run.returncode == 0 and key and '\n' not in key:
                return key
            notes.append('aqctl key create failed (%s, stdout %r); used KEY_CREATE'
                              % (describe_status(run.returncode), key))
        fields = {'team': team}
        if scope:
            fields['scope'] = scope
        with self.admin() as cli:
            reply = cli.call('KEY_CREATE', fields)
        assert reply.get('status') == 201, 'KEY_CREATE -> %r' % reply
        return reply['body']['key']['secret']


def start_broker(**kwargs):
    return Broker(**kwargs)


def start_worker(broker, slots=8, allow_private=True, heartbeat_ms=HEARTBEAT_MS, name=None,
                 extra=(), env=None):
    count = sum(1 for p in _procs if p.name.startswith('worker'))
    name = name or 'worker-%d' % (count + 1)
    args = [binary('aq-worker'), '--broker', broker.worker_ep, '--slots', slots]
    if broker.certs:
        args += broker.certs.peer_args(broker.certs.worker(name)[1])
    if heartbeat_ms is not None:
        args += ['--heartbeat-ms', heartbeat_ms]
    if allow_private:
        args.append('--allow-private-targets')
    args += list(extra)
    return Proc(name, args, env=env)


def start_workers(broker, count, wait=True, **kwargs):
    """count workers; with wait, returns once the broker counts them all."""
    before = broker.stats().get('workers', 0) if wait else 0
    workers = [start_worker(broker, **kwargs) for _ in range(count)]
    if wait:
        broker.wait_workers(before + count)
    return workers


class Gateway:
    """aq-gateway on a free port in front of broker; .url(path) for requests."""

    def __init__(self, broker, name=None, extra=(), env=None):
        count = sum(1 for p in _procs if p.name.startswith('gateway'))
        self.port = free_port()
        self.base = 'http://127.0.0.1:%d' % self.port
        name = name or 'gateway-%d' % (count + 1)
        curve = broker.certs.peer_args(broker.certs.client(name)[1]) if broker.certs else []
        self.proc = Proc(name, [binary('aq-gateway'), '--broker', broker.client_ep,
                                '--listen', '127.0.0.1:%d' % self.port] + curve + list(extra),
                         env=env)
        self.http = requests.Session()

        def up():
            self.proc.check_alive()
            try:
                self.http.get(self.base + '/healthz', timeout=1)
                return True
            except requests.RequestException:
                return False
        wait_until(up, 20, '%s to answer /healthz' % self.proc.name, interval=0.05)

    def url(self, path):
        return self.base + path


def start_gateway(broker, **kwargs):
    return Gateway(broker, **kwargs)


def cluster(workers=1, slots=8, allow_private=True, **broker_args):
    """target, broker, workers and a client with a fresh team key."""
    target = start_target()
    broker = start_broker(**broker_args)
    procs = start_workers(broker, workers, slots=slots, allow_private=allow_private) if workers else []
    key = broker.new_key('team-%d' % random.randrange(1 << 30))
    cli = broker.client(key=key)
    return target, broker, procs, cli


# ---------------------------------------------------------------------------
# The all-in-one server and aqctl (REST tests)

def aqctl(data, *args, check=True, timeout=30):
    """Runs `aqctl --data DATA ARGS...`; returns its stdout (stripped).
    stderr goes to tmpdir()/aqctl.log. With check, a non-zero exit raises."""
    argv = [binary('aqctl'), '--data', data] + [str(a) for a in args]
    log_path = os.path.join(tmpdir(), 'aqctl.log')
    with open(log_path, 'ab') as log:
        log.write(('=== %s\n' % ' '.join(argv)).encode())
        log.flush()
        run = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, timeout=timeout)
    out = run.stdout.decode('utf-8', 'replace').strip()
    if check and run.returncode != 0:
        raise AssertionError('aqctl %s exited with %s; stdout %r (stderr in aqctl.log)'
                             % (' '.join(str(a) for a in args), describe_status(run.returncode), out))
    return out


class AllInOne:
    """`asyncqueue` (broker, gateway and workers in one process) on a free
    port with a temp data dir, --allow-private-targets by default.
    .url(path) for HTTP; new_key(), admin(), client(), stats() as on
    Broker, through ipc://DATA/client.ipc (which the all-in-one always binds)."""

    def __init__(self, name='aq', data=None, workers=None, allow_private=True, extra=(), env=None):
        self.name = name
        self.data = data or os.path.join(tmpdir(), name + '.data')
        os.makedirs(self.data, exist_ok=True)
        self.port = free_port()
        self.base = 'http://127.0.0.1:%d' % self.port
        self.client_ep = 'ipc://%s/client.ipc' % self.data
        args = [binary('asyncqueue'), '--data', self.data, '--listen', '127.0.0.1:%d' % self.port]
        if workers is not None:
            args += ['--workers', workers]
        if allow_private:
            args.append('--allow-private-targets')
        args += list(extra)
        self.proc = Proc(name, args, env=env)
        self._admin = None
        self.http = requests.Session()
        self.wait_ready()

    admin_token = Broker.admin_token
    client = Broker.client
    admin = Broker.admin
    stats = Broker.stats
    wait_workers = Broker.wait_workers
    new_key = Broker.new_key

    def wait_ready(self, timeout=20.0):
        """Waits for admin.token and a /healthz that reports the broker ok."""
        token = os.path.join(self.data, 'admin.token')

        def up():
            self.proc.check_alive()
            if not (os.path.exists(token) and os.path.getsize(token) > 0):
                return False
            try:
                reply = self.http.get(self.base + '/healthz', timeout=1)
                return reply.status_code == 200 and reply.json().get('broker') == 'ok'
            except (requests.RequestException, ValueError):
                return False
        wait_until(up, timeout, '%s to answer /healthz with the broker ok' % self.name,
                   interval=0.05)

    def url(self, path):
        return self.base + path

    def aqctl(self, *args, **kwargs):
        return aqctl(self.data, *args, **kwargs)

    def restart(self, timeout=20.0):
        self.proc.restart()
        self.wait_ready(timeout)


def start_allinone(**kwargs):
    return AllInOne(**kwargs)
