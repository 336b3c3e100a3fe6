"""test_ops.py - process tests of running asyncqueue as an operator does (issue 15)

JSON logs, systemd's notify protocol (READY, WATCHDOG, STOPPING on a
datagram socket of the test's own, no systemd needed), `make install` and
the units, /readyz, the README's quick start run as written, the limits
docs/protocol.md states, the OpenAPI document checked against real
responses, and plain `make`'s package check.
"""

import json
import shutil
import os
import re
import subprocess
import time

import aqtest
from aqtest import wait_until

JSON_FIELDS = ('time', 'level', 'component', 'msg')


def s_json_lines(proc):
    """Every line proc logged, each parsed as one JSON object (the harness's
    own '=== ' header lines apart). Raises naming the first line that is not."""
    records = []
    for number, line in enumerate(proc.log().split('\n'), 1):
        if not line or line.startswith('=== '):
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise AssertionError('%s line %d is not JSON (%s): %r' % (proc.name, number, e, line))
        assert isinstance(record, dict), '%s line %d: %r' % (proc.name, number, line)
        for field in JSON_FIELDS:
            assert isinstance(record.get(field), str), \
                '%s line %d lacks %s: %r' % (proc.name, number, field, line)
        assert aqtest.parse_iso(record['time']) > 0
        assert record['level'] in ('debug', 'info', 'warn', 'error'), line
        records.append(record)
    assert records, '%s logged nothing' % proc.name
    return records


# ---------------------------------------------------------------------------
# JSON logs

def test_json_logs_parse_line_by_line():
    """--log-format json on the command line (broker, worker) and
    `log-format json` in a config file (gateway): every line each one writes,
    from start to a clean stop, is one JSON object with time, level,
    component and msg; a worker's line about a task carries its taskId."""
    target = aqtest.start_target()
    broker = aqtest.start_broker(extra=('--log-format', 'json'))
    aqtest.start_workers(broker, 1, extra=('--log-format', 'json', '-v'))
    config = os.path.join(aqtest.tmpdir(), 'gateway.conf')
    with open(config, 'w') as f:
        f.write('# a gateway in JSON\nlog-format json\nverbose\n')
    gateway = aqtest.start_gateway(broker, extra=('--config', config))
    key = broker.new_key('json-logs')
    made = gateway.http.post(gateway.url('/v1/tasks'),
                             json={'targetUrl': target.url('/ok/json-logs')},
                             headers={'Authorization': 'Bearer ' + key}, timeout=10)
    assert made.status_code == 201, made.text
    task_id = made.json()['task']['id']
    with broker.client(key=key) as cli:
        assert cli.wait_terminal(task_id)['status'] == 'completed'
    for proc in aqtest.processes():
        if proc.name.startswith(('worker', 'gateway', 'broker')):
            assert not proc.stop(), proc.name
    worker = next(p for p in aqtest.processes() if p.name.startswith('worker'))
    records = s_json_lines(worker)
    about = [r for r in records if r.get('taskId') == task_id]
    assert about and 'HTTP 200' in about[0]['msg'] and about[0]['component'] == 'worker', records
    broker_records = s_json_lines(broker.proc)
    assert any(r['msg'].startswith('ready: ') for r in broker_records), broker_records
    assert {'broker', 'plugins'} <= {r['component'] for r in broker_records}, broker_records
    gateway_records = s_json_lines(gateway.proc)
    assert any(r['component'] == 'gateway' for r in gateway_records), gateway_records


def test_json_logs_allinone_config_and_text_default():
    """The all-in-one takes `log-format json` from its config file; text
    stays the default; a bad value is refused at once."""
    config = os.path.join(aqtest.tmpdir(), 'aq.conf')
    with open(config, 'w') as f:
        f.write('log-format json\n')
    aq = aqtest.start_allinone(extra=('--config', config))
    aq.new_key('json-allinone')
    assert not aq.proc.stop()
    components = {r['component'] for r in s_json_lines(aq.proc)}
    assert {'broker', 'gateway', 'worker', 'asyncqueue'} <= components, components

    text = aqtest.start_allinone(name='text')
    assert not text.proc.stop()
    lines = [l for l in text.proc.log().split('\n') if l and not l.startswith('=== ')]
    assert lines and not any(l.startswith('{') for l in lines), lines[:3]
    assert any(re.match(r'^\d{4}-\d\d-\d\dT\S+Z info broker: ready: ', l) for l in lines), lines

    for program in ('asyncqueue', 'aq-broker', 'aq-gateway', 'aq-worker'):
        run = subprocess.run([aqtest.binary(program), '--log-format', 'yaml',
                              '--data', os.path.join(aqtest.tmpdir(), 'never')],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert run.returncode in (1, 2) and run.stderr, (program, run.returncode, run.stderr)
        shown = subprocess.run([aqtest.binary(program), '--help'], stdout=subprocess.PIPE,
                               timeout=30).stdout.decode()
        assert '--log-format' in shown, '%s --help does not document --log-format' % program
    assert not os.path.exists(os.path.join(aqtest.tmpdir(), 'never'))


# ---------------------------------------------------------------------------
# systemd's notify protocol, on a socket of our own

WATCHDOG_USEC = 400000  # half of it, 200 ms, between two WATCHDOG=1


class s_Notify:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET: every
    message a program sends is kept as (monotonic seconds, text)."""

    def __init__(self, name):
        import socket
        import threading
        self.path = os.path.join(aqtest.tmpdir(), name + '.notify')
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.running = True
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except OSError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def env(self, watchdog=True):
        env = {'NOTIFY_SOCKET': self.path}
        if watchdog:
            env['WATCHDOG_USEC'] = str(WATCHDOG_USEC)
        return env

    def lines(self, since=0.0):
        """[(t, 'READY=1'), ...]: each message split in its assignments."""
        return [(t, line) for t, text in list(self.messages) if t >= since
                for line in text.split('\n') if line]

    def count(self, line, since=0.0):
        return sum(1 for _, l in self.lines(since) if l == line)

    def wait(self, line, timeout=10.0, since=0.0, times=1):
        wait_until(lambda: self.count(line, since) >= times, timeout,
                   '%d x %r on %s (got %r)' % (times, line, self.path, self.lines()[-6:]))

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()

    def check_order(self):
        """READY=1 first of the three, then WATCHDOG=1 and at last STOPPING=1,
        once each for READY and STOPPING; returns the WATCHDOG times."""
        seen = [(t, l) for t, l in self.lines() if l in ('READY=1', 'WATCHDOG=1', 'STOPPING=1')]
        kinds = [l for _, l in seen]
        assert kinds.count('READY=1') == 1 and kinds.count('STOPPING=1') == 1, kinds
        assert kinds[0] == 'READY=1' and kinds[-1] == 'STOPPING=1', kinds
        assert 'WATCHDOG=1' in kinds, kinds
        return [t for t, l in seen if l == 'WATCHDOG=1']


def s_gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


@aqtest.timeout(90)
def test_notify_broker_ready_watchdog_stopping():
    """aq-broker with NOTIFY_SOCKET and WATCHDOG_USEC: READY=1 once it
    serves, WATCHDOG=1 every half interval from its loop, none while the
    process is stopped (SIGSTOP) and again after SIGCONT, STOPPING=1 on
    SIGTERM and nothing after it. Without NOTIFY_SOCKET it runs as ever."""
    import signal
    notify = s_Notify('broker')
    broker = aqtest.start_broker(env=notify.env())
    notify.wait('READY=1')
    notify.wait('WATCHDOG=1', times=5)
    gaps = s_gaps([t for t, l in notify.lines() if l == 'WATCHDOG=1'])
    assert max(gaps) < WATCHDOG_USEC / 1e6, 'WATCHDOG=1 too far apart: %r' % gaps
    assert min(gaps) > WATCHDOG_USEC / 2e6 * 0.8, 'WATCHDOG=1 too often: %r' % gaps
    assert 'STATUS=ready' in [l for _, l in notify.lines()]

    os.kill(broker.proc.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    time.sleep(1.5)
    late = notify.count('WATCHDOG=1', since=stopped_at + 0.05)
    os.kill(broker.proc.pid, signal.SIGCONT)
    assert late == 0, 'a stopped broker sent %d WATCHDOG=1' % late
    resumed_at = time.monotonic()
    notify.wait('WATCHDOG=1', since=resumed_at, times=2, timeout=5)
    with broker.admin() as cli:
        assert cli.stats()

    assert not broker.proc.stop()
    time.sleep(0.2)
    notify.close()
    notify.check_order()
    assert 'STATUS=stopping' in [l for _, l in notify.lines()]

    plain = aqtest.start_broker(name='plain')
    assert not plain.proc.stop()


@aqtest.timeout(90)
def test_notify_gateway_and_worker():
    """aq-gateway says READY=1 once listening, aq-worker once the broker has
    spoken to it; both pet the watchdog from their loops and say
    STOPPING=1 on SIGTERM."""
    broker = aqtest.start_broker()
    gateway_notify, worker_notify = s_Notify('gateway'), s_Notify('worker')
    gateway = aqtest.start_gateway(broker, env=gateway_notify.env())
    gateway_notify.wait('READY=1')
    worker = aqtest.start_worker(broker, env=worker_notify.env())
    worker_notify.wait('READY=1')
    assert "ready with" in broker.proc.log(), 'READY=1 before the broker knew the worker'
    for notify in (gateway_notify, worker_notify):
        notify.wait('WATCHDOG=1', times=3)
    for proc, notify in ((worker, worker_notify), (gateway.proc, gateway_notify)):
        assert not proc.stop()
        time.sleep(0.2)
        notify.close()
        notify.check_order()


def s_thread(pid, name):
    """The id of pid's thread called name."""
    task = '/proc/%d/task' % pid
    for tid in os.listdir(task):
        try:
            with open(os.path.join(task, tid, 'comm')) as f:
                if f.read().strip() == name:
                    return int(tid)
        except OSError:
            pass
    raise AssertionError('no thread %r in process %d' % (name, pid))


def s_ptrace():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long

    def call(request, tid):
        if libc.ptrace(request, tid, None, None) != 0:
            return ctypes.get_errno()
        return 0
    return call


PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207


@aqtest.timeout(90)
def test_notify_allinone_stalled_broker_thread_stops_watchdog():
    """asyncqueue says READY=1 once the broker, the gateway and every worker
    are up (after their STATUS= lines). Then its broker thread alone is
    frozen (ptrace, as a debugger does): the gateway and the workers go on
    turning, /healthz answers, but WATCHDOG=1 stops and the log names the
    broker loop; thawed, the petting resumes. SIGTERM: STOPPING=1."""
    notify = s_Notify('aq')
    aq = aqtest.start_allinone(workers=2, env=notify.env())
    notify.wait('READY=1')
    statuses = [l for _, l in notify.lines() if l.startswith('STATUS=')]
    assert len(statuses) == 4 and statuses[-1] == 'STATUS=ready', statuses
    assert sorted(s.split(' ')[1] for s in statuses[:3]) == ['broker', 'gateway', 'worker'], \
        statuses
    notify.wait('WATCHDOG=1', times=3)

    ptrace = s_ptrace()
    tid = s_thread(aq.proc.pid, 'aq-broker')
    error = ptrace(PTRACE_SEIZE, tid)
    if error:
        aqtest.notes.append('ptrace refused (errno %d): the broker thread not frozen alone' % error)
        return
    try:
        assert ptrace(PTRACE_INTERRUPT, tid) == 0
        frozen_at = time.monotonic()
        wait_until(lambda: open('/proc/%d/task/%d/stat' % (aq.proc.pid, tid)).read()
                   .rsplit(')', 1)[1].split()[0] == 't', 5, 'the broker thread to stop')
        time.sleep(1.5)
        health = aq.http.get(aq.url('/healthz'), timeout=5)
        assert health.status_code == 200, health.text
        late = notify.count('WATCHDOG=1', since=frozen_at + WATCHDOG_USEC / 1e6)
        assert late == 0, 'WATCHDOG=1 went %d times with the broker loop frozen' % late
    finally:
        ptrace(PTRACE_DETACH, tid)
    thawed_at = time.monotonic()
    notify.wait('WATCHDOG=1', since=thawed_at, times=2, timeout=5)
    assert re.search(r'warn notify: the broker loop has not turned for \d+ ms', aq.proc.log()), \
        aq.proc.tail()
    assert not aq.proc.stop()
    time.sleep(0.2)
    notify.close()
    notify.check_order()


# ---------------------------------------------------------------------------
# make install: programs, plugins, units, example configs

UNITS = ('asyncqueue.service', 'aq-broker.service', 'aq-gateway@.service', 'aq-worker@.service')
CONFIGS = {'asyncqueue.conf': 'asyncqueue', 'broker.conf': 'aq-broker',
           'gateway-1.conf': 'aq-gateway', 'worker.conf': 'aq-worker'}


def s_make(*args, timeout=600):
    """Runs make in the tree with this test build's BUILD and SAN; returns
    the CompletedProcess (stdout and stderr together)."""
    san = '1' if os.path.isdir(os.path.join(aqtest.BUILD, 'obj-san')) else '0'
    return subprocess.run(['make', '--no-print-directory', 'BUILD=' + aqtest.BUILD, 'SAN=' + san]
                          + list(args), cwd=aqtest.ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)


def s_install(*args):
    run = s_make('install', *args)
    assert run.returncode == 0, 'make install %s:\n%s' % (args, run.stdout.decode()[-3000:])


def s_uncommented(path, out):
    """Writes path to out with every commented-out option ("# name value",
    "# switch") made live: what an operator gets who enables them all."""
    with open(path) as f:
        lines = f.read().split('\n')
    live = [re.sub(r'^# ', '', l) if re.match(r'^# [a-z][a-z-]+( \S+)?$', l) else l
            for l in lines]
    assert live != lines, '%s shows no commented option' % path
    with open(out, 'w') as f:
        f.write('\n'.join(live))


@aqtest.timeout(300)
def test_make_install_lays_out_units_and_configs():
    """`make install DESTDIR=D PREFIX=/usr` puts the programs in /usr/bin,
    the plugins in /usr/lib/asyncqueue/plugins, the four units (Type=notify,
    a watchdog, the hardening, this install's paths) in
    /usr/lib/systemd/system, the service user for systemd-sysusers, and
    commented example configs in /etc/asyncqueue whose every option, live or
    commented, the program takes; the installed all-in-one serves with its
    example config; a config already there is kept. systemd-analyze, where
    present, scores each unit <= 5.0 and verifies them."""
    dest = os.path.join(aqtest.tmpdir(), 'dest')
    s_install('DESTDIR=' + dest, 'PREFIX=/usr')
    for program in ('asyncqueue', 'aq-broker', 'aq-gateway', 'aq-worker', 'aqctl'):
        assert os.access(os.path.join(dest, 'usr/bin', program), os.X_OK), program
    for plugin in ('fal.so', 'replicate.so', 'vault-sodium.so'):
        assert os.path.isfile(os.path.join(dest, 'usr/lib/asyncqueue/plugins', plugin)), plugin
    for header in ('aq_plugin.h', 'aq_proto.h', 'aq_client.h'):
        assert os.path.isfile(os.path.join(dest, 'usr/include', header)), header
    with open(os.path.join(dest, 'usr/lib/sysusers.d/asyncqueue.conf')) as f:
        assert re.search(r'^u asyncqueue ', f.read(), re.M)

    units = os.path.join(dest, 'usr/lib/systemd/system')
    for unit in UNITS:
        with open(os.path.join(units, unit)) as f:
            text = f.read()
        assert not re.search(r'@[A-Z]+@', text), '%s keeps a placeholder' % unit
        program = unit.split('@')[0].split('.')[0]
        match = re.search(r'^ExecStart=(\S+) --config (\S+)', text, re.M)
        assert match and match.group(1) == '/usr/bin/' + program, (unit, match)
        assert match.group(2).startswith('/etc/asyncqueue/'), (unit, match.group(2))
        for line in ('Type=notify', 'User=asyncqueue', 'ProtectSystem=strict',
                     'NoNewPrivileges=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=',
                     'SystemCallFilter=@system-service'):
            assert re.search('^%s$' % re.escape(line), text, re.M), '%s lacks %s' % (unit, line)
        assert re.search(r'^WatchdogSec=\d+s$', text, re.M), unit
        if not unit.endswith('@.service'):
            assert re.search(r'^StateDirectory=asyncqueue$', text, re.M), unit
            assert '--data /var/lib/asyncqueue' in match.string, unit

    etc = os.path.join(dest, 'etc/asyncqueue')
    assert sorted(os.listdir(etc)) == sorted(CONFIGS), os.listdir(etc)
    for name, program in CONFIGS.items():
        path = os.path.join(etc, name)
        full = os.path.join(aqtest.tmpdir(), 'all-' + name)
        s_uncommented(path, full)
        for config in (path, full):
            run = subprocess.run([os.path.join(dest, 'usr/bin', program), '--config', config,
                                  '--help'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 timeout=30)
            assert run.returncode == 0, '%s refuses %s: %s' % (program, config, run.stderr)

    # the installed all-in-one serves with its example config
    port = aqtest.free_port()
    data = os.path.join(aqtest.tmpdir(), 'installed.data')
    proc = aqtest.Proc('installed', [os.path.join(dest, 'usr/bin/asyncqueue'), '--config',
                                     os.path.join(etc, 'asyncqueue.conf'), '--data', data,
                                     '--listen', '127.0.0.1:%d' % port])
    import requests
    def ok():
        proc.check_alive()
        try:
            return requests.get('http://127.0.0.1:%d/healthz' % port, timeout=1).json() == \
                {'status': 'ok', 'broker': 'ok'}
        except (requests.RequestException, ValueError):
            return False
    wait_until(ok, 20, 'the installed asyncqueue to serve')
    assert re.search(r"loaded vault plugin 'vault-sodium' .* from '%s" % re.escape(dest),
                     proc.log()), proc.tail()
    assert not proc.stop()

    # an operator's config survives a second install
    mine = os.path.join(etc, 'asyncqueue.conf')
    with open(mine, 'w') as f:
        f.write('listen 0.0.0.0:9999\n')
    s_install('DESTDIR=' + dest, 'PREFIX=/usr')
    with open(mine) as f:
        assert f.read() == 'listen 0.0.0.0:9999\n'

    analyze = shutil.which('systemd-analyze')
    if not analyze:
        aqtest.notes.append('systemd-analyze is not installed: units not scored or verified')
        return
    for unit in UNITS:
        run = subprocess.run([analyze, 'security', '--offline=yes', os.path.join(units, unit)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = run.stdout.decode()
        score = re.search(r'Overall exposure level for \S+: (\d+\.\d+)', out)
        assert score, 'systemd-analyze security %s:\n%s' % (unit, out[-2000:])
        assert float(score.group(1)) <= 5.0, '%s scores %s' % (unit, score.group(1))
        aqtest.notes.append('%s: exposure %s' % (unit, score.group(1)))

    # verify wants the binaries where the units say: an install of its own
    prefix = os.path.join(aqtest.tmpdir(), 'prefix')
    s_install('PREFIX=' + prefix)
    checked = os.path.join(aqtest.tmpdir(), 'verify')
    os.makedirs(checked)
    for unit in UNITS:
        shutil.copy(os.path.join(prefix, 'lib/systemd/system', unit),
                    os.path.join(checked, unit.replace('@.', '@1.')))
    for unit in sorted(os.listdir(checked)):
        run = subprocess.run([analyze, 'verify', '--man=no', os.path.join(checked, unit)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = run.stdout.decode()
        assert run.returncode == 0 and not out.strip(), 'systemd-analyze verify %s:\n%s' % (unit, out)
    with open(os.path.join(checked, 'asyncqueue.service')) as f:
        assert '--config %s/etc/asyncqueue/asyncqueue.conf' % prefix in f.read()


# ---------------------------------------------------------------------------
# /readyz

def s_readyz(gateway):
    import requests
    try:
        reply = gateway.http.get(gateway.url('/readyz'), timeout=2)
    except requests.RequestException:
        return None
    return reply


@aqtest.timeout(90)
def test_readyz_waits_for_the_broker():
    """A gateway started before its broker answers /readyz 503
    {"error": "Broker unavailable"} with Retry-After while /healthz says
    200; once the broker has opened its store it answers 200
    {"status": "ready"}, and 503 again after the broker dies."""
    import types
    data = os.path.join(aqtest.tmpdir(), 'later.data')
    os.makedirs(data)
    absent = types.SimpleNamespace(client_ep='ipc://%s/client.ipc' % data, certs=None)
    gateway = aqtest.start_gateway(absent)
    for _ in range(3):
        reply = s_readyz(gateway)
        assert reply.status_code == 503 and reply.json() == {'error': 'Broker unavailable'}, \
            (reply.status_code, reply.text)
        assert reply.headers.get('Retry-After') == '1', reply.headers
        assert gateway.http.get(gateway.url('/healthz'), timeout=2).status_code == 200
        time.sleep(0.3)
    assert gateway.http.post(gateway.url('/readyz'), timeout=2).status_code == 405

    broker = aqtest.start_broker(data=data)
    def up():
        reply = s_readyz(gateway)
        return reply if reply is not None and reply.status_code == 200 else None
    ready = wait_until(up, 15, '/readyz to answer 200')
    assert ready.json() == {'status': 'ready'}, ready.text
    key = broker.new_key('readyz')
    made = gateway.http.post(gateway.url('/v1/tasks'), json={'targetUrl': 'https://example.com/'},
                             headers={'Authorization': 'Bearer ' + key}, timeout=10)
    assert made.status_code == 201, made.text

    broker.kill9()
    def down():
        reply = s_readyz(gateway)  # a Response is false for 4xx and 5xx: compare with None
        return reply is not None and reply.status_code == 503
    wait_until(down, 15, '/readyz to answer 503 with the broker gone')


def test_readyz_allinone():
    """The all-in-one answers /readyz 200 once it serves."""
    aq = aqtest.start_allinone()
    reply = aq.http.get(aq.url('/readyz'), timeout=5)
    assert reply.status_code == 200 and reply.json() == {'status': 'ready'}, reply.text


# ---------------------------------------------------------------------------
# The newcomer's first five minutes

README = os.path.join(aqtest.ROOT, 'README.md')


def s_readme_block(heading):
    """The first ```sh block under the README's heading."""
    with open(README) as f:
        text = f.read()
    start = text.index('\n## %s\n' % heading)
    match = re.compile(r'```sh\n(.*?)```', re.S).search(text, start)
    assert match, 'no sh block under %r' % heading
    return match.group(1)


@aqtest.timeout(90)
def test_readme_quick_start_runs_as_written():
    """The README's quick start, taken from the README, runs under bash -e
    against a fresh server with only what differs on a test machine
    replaced: the server is this test's (not `make run`), on a free port,
    with its data directory and build, calling the local target instead of
    api.example.com. The key it makes works, the task completes, the long
    poll shows it, and `aqctl task watch` follows it to the end."""
    block = s_readme_block('Quick start')
    lines = block.split('\n')
    assert lines[0].startswith('make run &'), lines[0]
    target = aqtest.start_target()
    aq = aqtest.start_allinone()
    replaced = {'http://127.0.0.1:8080': aq.base,
                'build/bin/': aqtest.BIN + '/',
                '--data data ': '--data %s ' % aq.data,
                'https://api.example.com/webhook': target.url('/ok/readme')}
    script = '\n'.join(lines[1:])
    for old, new in replaced.items():
        assert old in script, 'the quick start no longer has %r' % old
        script = script.replace(old, new)
    env = {k: v for k, v in os.environ.items() if not k.startswith('AQ_API')}
    run = subprocess.run(['bash', '-e', '-c', script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60, env=env, cwd=aqtest.tmpdir())
    out, err = run.stdout.decode(), run.stderr.decode()
    assert run.returncode == 0 and not err, 'quick start exited %d:\n%s\n%s' % (
        run.returncode, out, err)
    answers = [l for l in out.split('\n') if l.startswith('{')]
    assert len(answers) >= 2, out
    created, polled = json.loads(answers[0])['task'], json.loads(answers[1])['task']
    assert created['status'] in ('pending', 'processing') and aqtest.is_uuid(created['id']), created
    assert polled['id'] == created['id'] and polled['status'] == 'completed', polled
    assert polled['result']['statusCode'] == 200, polled
    watched = [l for l in out.split('\n')[out.split('\n').index(answers[1]) + 1:] if l.strip()]
    assert watched and 'completed' in watched[-1], out
    assert target.requests('/ok/readme'), 'the target was not called'


def s_sources():
    """The C sources and headers of the programs, as one text per file."""
    import glob
    texts = {}
    for pattern in ('proto/*.[ch]', 'proto/*/*.[ch]', 'broker/*.[ch]', 'broker/*/*.[ch]',
                    'gateway/*.[ch]', 'workers/*.[ch]', 'plugins/*.[ch]'):
        for path in glob.glob(os.path.join(aqtest.ROOT, pattern)):
            with open(path, errors='replace') as f:
                texts[os.path.relpath(path, aqtest.ROOT)] = f.read()
    return texts


def s_code_value(sources, pattern, what):
    """The one value pattern's group captures across the sources (an
    integer expression such as (8 << 20) is evaluated). Raises if it is
    found nowhere or with two values."""
    values = set()
    for text in sources.values():
        for match in re.finditer(pattern, text):
            expr = match.group(1)
            assert re.fullmatch(r'[\d\s()<>+*/-]+', expr), (what, expr)
            values.add(int(eval(expr)))
    assert len(values) == 1, 'the code has %s as %r (pattern %s)' % (what, values, pattern)
    return values.pop()


def test_protocol_md_limits_match_the_code():
    """Every limit docs/protocol.md states (nesting, frame sizes, decode
    budget, JOB size, long poll, page size, heartbeats, token and snooze
    bounds, readiness) equals the constant or the message in the code, and
    every size, depth or count of intervals in the document is one of the
    checked ones, so a new limit cannot be written down unchecked."""
    with open(os.path.join(aqtest.ROOT, 'docs', 'protocol.md')) as f:
        doc = f.read()
    src = s_sources()
    mib, kib = 1 << 20, 1 << 10
    depth = s_code_value(src, r'#define AQ_PROTO_DEPTH\s+(\d+)', 'AQ_PROTO_DEPTH')
    max_msg = s_code_value(src, r'#define AQ_PROTO_MAX_MSG\s+(\([^)]*\)|\d+)', 'AQ_PROTO_MAX_MSG')
    budget = s_code_value(src, r'#define AQ_PROTO_BUDGET\s+(\([^)]*\)|\d+)', 'AQ_PROTO_BUDGET')
    slot = s_code_value(src, r'#define S_COST_SLOT\s+(\d+)', 'S_COST_SLOT')
    cost = {k: s_code_value(src, r'#define S_COST_%s\s+(\d+)' % k, k)
            for k in ('MAP', 'NUMBER', 'STRING')}
    per_byte = s_code_value(src, r'costs at most (\d+) bytes per frame byte', 'bytes per byte')
    job_less = s_code_value(src, r'#define S_JOB_MAX\s+\(AQ_PROTO_MAX_MSG - (\d+)\)', 'S_JOB_MAX')
    checks = [
        (r'nested more than (\d+) levels', depth),
        (r'nesting at (\d+) levels', depth),
        (r'REST limit of (\d+) levels',
         s_code_value(src, r'#define GW_JSON_MAX_DEPTH\s+(\d+)', 'GW_JSON_MAX_DEPTH')),
        (r'is the dearest at (\d+) bytes', slot + cost['MAP']),
        (r'a number (\d+),', slot + cost['NUMBER']),
        (r'a string (\d+) plus its bytes', slot + cost['STRING']),
        (r'estimate exceeds (\d+) MiB', budget // mib),
        (r'more than (\d+) MiB to decode', budget // mib),
        (r'never more\s+than (\d+) MiB', budget // mib),
        (r'decoded size over (\d+) MiB', budget // mib),
        (r'decoded memory at (\d+) MiB', budget // mib),
        (r'at most (\d+) bytes per frame byte', per_byte),
        (r'every frame up to (\d+) KiB decodes', budget // per_byte // kib),
        (r'REST body up to (\d+) MiB',
         s_code_value(src, r'(?m)^\s+\.max_body = (1 << \d+|\d+),', 'the gateway max_body') // mib),
        (r'larger than (\d+) MiB \(`AQ_PROTO_MAX_MSG`\)', max_msg // mib),
        (r'A frame over (\d+) MiB makes ZeroMQ', max_msg // mib),
        (r'Frames are capped at (\d+) MiB', max_msg // mib),
        (r'A JOB frame is at most (\d+) MiB less \d+ KiB', max_msg // mib),
        (r'A JOB frame is at most \d+ MiB less (\d+) KiB', job_less // kib),
        (r'less \d+ KiB \(([\d,]+) bytes', max_msg - job_less),
        (r'\(limit (\d+) bytes\)', max_msg - job_less),
        (r'long poll, 0–(\d+) seconds',
         s_code_value(src, r'wait must be a number between 0 and (\d+)', 'the long poll')),
        (r'`limit` +\| uint or str\? \| 1–(\d+), default \d+ \|',
         s_code_value(src, r'limit must be a number between 1 and (\d+)', 'the page size')),
        (r'`count` +\|[^|\n]*\| 1–(\d+), default \d+ \|',
         s_code_value(src, r'count must be a number between 1 and (\d+)', 'the preview count')),
        (r'default (\d+) ms\)',
         s_code_value(src, r'cfg->heartbeat_ms = (\d+);', 'the heartbeat interval')),
        (r'worker lost after (\d+) intervals',
         s_code_value(src, r'cfg->heartbeat_liveness = (\d+)', "the broker's liveness")),
        (r'nothing from the broker for (\d+) intervals',
         s_code_value(src, r'\.heartbeat_liveness = (\d+)', "the worker's liveness")),
        (r'value must be at\s+most (\d+) bytes',
         s_code_value(src, r'#define BK_TOKENS_MAX_VALUE (\d+)', 'BK_TOKENS_MAX_VALUE')),
        (r'"delay_seconds": 1\.\.(\d+)',
         s_code_value(src, r'#define BK_SCHED_TASK_SNOOZE_MAX (\d+)', 'the snooze bound')),
        (r'between 1\s+and (\d+)`, `reason',
         s_code_value(src, r'#define BK_SCHED_TASK_SNOOZE_MAX (\d+)', 'the snooze bound')),
        (r'"reason"\?: str \(at most (\d+) characters\)',
         s_code_value(src, r'reason must be a string of at most (\d+) characters', 'reason')),
        (r'"name": str \(1–(\d+) characters\)',
         s_code_value(src, r'name must be a string of 1 to (\d+) characters', 'event name')),
        (r'answered within\s+the last (\d+) seconds',
         s_code_value(src, r'#define S_FRESH_MS\s+(\d+)', 'S_FRESH_MS') // 1000),
    ]
    covered = []
    for pattern, want in checks:
        found = list(re.finditer(pattern, doc))
        assert found, 'docs/protocol.md no longer says %r' % pattern
        for match in found:
            got = int(match.group(1).replace(',', ''))
            line = doc.count('\n', 0, match.start()) + 1
            assert got == want, 'docs/protocol.md:%d says %s where the code has %d' % (
                line, match.group(0), want)
            covered.append(match.span(1))
    for match in re.finditer(r'\b(\d[\d,]*) ?(MiB|KiB|levels|intervals)\b', doc):
        assert any(a <= match.start(1) < b for a, b in covered), \
            'docs/protocol.md:%d states %r, which no check compares with the code' % (
                doc.count('\n', 0, match.start()) + 1, match.group(0))
