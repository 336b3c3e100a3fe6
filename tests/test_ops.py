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
import urllib.parse

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
    are up (after their STATUS= lines; the broker first, since the others
    start once it serves). Then its broker thread alone is
    frozen (ptrace, as a debugger does): the gateway and the workers go on
    turning, /healthz answers, but WATCHDOG=1 stops and the log names the
    broker loop; thawed, the petting resumes. SIGTERM: STOPPING=1."""
    notify = s_Notify('aq')
    aq = aqtest.start_allinone(workers=2, env=notify.env())
    notify.wait('READY=1')
    statuses = [l for _, l in notify.lines() if l.startswith('STATUS=')]
    assert len(statuses) == 4 and statuses[-1] == 'STATUS=ready', statuses
    # the broker first (the others start once it serves); the workers say
    # ready at the broker's first word, the gateway once listening
    parts = [s.split(' ')[1] for s in statuses[:3]]
    assert parts[0] == 'broker' and sorted(parts[1:]) in (['gateway', 'worker'],
                                                          ['worker', 'worker']), statuses
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
    job_less = s_code_value(src, r'#define BK_JOBS_MAX\s+\(AQ_PROTO_MAX_MSG - (\d+)\)', 'the JOB size limit')
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


# ---------------------------------------------------------------------------
# docs/openapi.yaml against real responses

NODE_DIR = os.path.join(aqtest.ROOT, 'tests', 'node')
METHODS = ('get', 'put', 'post', 'delete', 'patch')


def s_operations(item):
    """{method: operation} of an OpenAPI path item (its parameters apart)."""
    return {m: o for m, o in item.items() if m in METHODS}


def s_node_tools():
    """tests/node with its packages (npm ci from the lockfile when missing)."""
    if not os.path.isdir(os.path.join(NODE_DIR, 'node_modules', 'ajv-formats')):
        npm = shutil.which('npm')
        assert npm, 'npm is not installed (make test-deps installs it)'
        run = subprocess.run([npm, 'ci', '--prefix', NODE_DIR, '--prefer-offline', '--no-audit',
                              '--no-fund', '--loglevel=error'],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert run.returncode == 0, 'npm ci failed:\n%s' % run.stdout.decode()[-3000:]
    node = shutil.which('node')
    assert node, 'node is not installed'
    return node


class s_Recorder:
    """Makes requests and keeps every answer with the operation of the
    OpenAPI document it belongs to."""

    def __init__(self, doc, port):
        self.doc = doc
        self.port = port
        self.samples = []   # (method, path template, HttpReply)
        self.http = aqtest.HttpClient(port)
        self.templates = sorted(doc['paths'], key=lambda t: t.count('{'))

    def template(self, path):
        path = path.split('?')[0]
        for template in self.templates:
            if re.fullmatch(re.sub(r'\{[^}]+\}', '[^/]+', template), path):
                return template
        raise AssertionError('%s is in no path of docs/openapi.yaml' % path)

    def announce(self, method, path, length, key, expect):
        """Sends only the headers of a request announcing length body bytes;
        the answer comes without the body (413)."""
        import http.client
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)
        conn.putrequest(method, path)
        conn.putheader('Authorization', 'Bearer ' + key)
        conn.putheader('Content-Type', 'application/json')
        conn.putheader('Content-Length', str(length))
        conn.endheaders()
        response = conn.getresponse()
        reply = aqtest.HttpReply(response.status, {k.lower(): v for k, v in response.getheaders()},
                                 response.read(), 0.0)
        conn.close()
        self.samples.append((method, self.template(path), reply))
        assert reply.status == expect, (method, path, reply.status, reply.text)
        return reply

    def call(self, method, path, body=None, key='', expect=None, **kw):
        reply = self.http.call(method, path, body, key=key, **kw)
        self.samples.append((method, self.template(path), reply))
        if expect is not None:
            assert reply.status == expect, '%s %s -> %d %s (expected %d)' % (
                method, path, reply.status, reply.text[:300], expect)
        return reply


def s_ref(doc, node):
    """node with a "$ref" into the document followed."""
    while isinstance(node, dict) and '$ref' in node:
        assert node['$ref'].startswith('#/'), node
        parts, node = node['$ref'][2:].split('/'), doc
        for part in parts:
            node = node[part.replace('~1', '/').replace('~0', '~')]
    return node


def s_schema_refs(node):
    """A copy of a schema whose "#/..." refs name the document as openapi.json."""
    if isinstance(node, dict):
        return {k: ('openapi.json' + v if k == '$ref' and v.startswith('#/') else s_schema_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [s_schema_refs(v) for v in node]
    return node


def s_strict(doc):
    """The document with every object schema that lists its properties closed
    (unevaluatedProperties: false) unless it says otherwise, so that a field
    the server sends and the document does not list fails too. Members of an
    allOf stay open: the schema holding the allOf closes the whole."""
    members = set()

    def find(node):
        if isinstance(node, dict):
            members.update(m['$ref'] for m in node.get('allOf', []) if '$ref' in m)
            for value in node.values():
                find(value)
        elif isinstance(node, list):
            for value in node:
                find(value)
    find(doc)

    def close(node, member=False, name=None):
        if isinstance(node, list):
            return [close(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: ([close(m, member=True) for m in v] if k == 'allOf' else close(v))
               for k, v in node.items()}
        if ('properties' in node and not member and name not in members
                and 'additionalProperties' not in node and 'unevaluatedProperties' not in node):
            out['unevaluatedProperties'] = False
        return out
    strict = dict(doc, paths=close(doc['paths']))
    strict['components'] = dict(doc['components'], schemas={
        n: close(v, name='#/components/schemas/' + n) for n, v in doc['components']['schemas'].items()})
    return strict


def s_exercise(api, full, read, other, limited, target, aq):
    """Every operation of the API, its success and its main errors."""
    F, R = {'key': full}, {'key': read}
    gone = '01a2ffff-0000-7000-8000-000000000000'
    # tasks
    done = api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/openapi'),
                                          'headers': {'X-A': 'b'}, 'body': '{"a": 1}'},
                    expect=201, **F).json['task']
    api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/idem')}, expect=201,
             headers={'Idempotency-Key': 'openapi-1'}, **F)
    api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/idem')}, expect=200,
             headers={'Idempotency-Key': 'openapi-1'}, **F)
    api.call('POST', '/v1/tasks', {'method': 'POST'}, expect=400, **F)
    api.call('POST', '/v1/tasks', '{"targetUrl": ', expect=400, **F)
    api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/x')}, expect=401, key=None)
    api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/x')}, expect=401, key='aq_bogus')
    api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/x')}, expect=403, **R)
    api.announce('POST', '/v1/tasks', 2 << 20, full, 413)
    statuses = set()
    for _ in range(5):
        statuses.add(api.call('GET', '/v1/tasks', key=limited).status)
    assert 429 in statuses, statuses
    later = api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/later'),
                                           'delayUntil': '2099-01-01T00:00:00.000Z'},
                     expect=201, **F).json['task']
    failing = api.call('POST', '/v1/tasks', {'targetUrl': target.url('/status/500'),
                                             'maxRetries': 0}, expect=201, **F).json['task']
    waiting = api.call('POST', '/v1/tasks', {'targetUrl': target.url('/wait/openapi'),
                                             'onCompleteUrl': target.url('/ok/oncomplete')},
                       expect=201, **F).json['task']
    for task in (done, failing):
        api.call('GET', '/v1/tasks/%s?wait=10' % task['id'], expect=200, **F)
    wait_until(lambda: api.call('GET', '/v1/tasks/%s' % waiting['id'], **F).json['task']['status']
               == 'waiting', 10, 'the task to wait')
    api.call('GET', '/v1/tasks/%s' % later['id'], expect=200, **R)
    api.call('GET', '/v1/tasks/%s?wait=99' % done['id'], expect=400, **F)
    api.call('GET', '/v1/tasks/%s' % gone, expect=404, **F)
    api.call('GET', '/v1/tasks/%s' % done['id'], expect=404, key=other)
    api.call('GET', '/v1/tasks', expect=200, **F)
    api.call('GET', '/v1/tasks?status=failed&limit=1&sortOrder=asc', expect=200, **R)
    api.call('GET', '/v1/tasks?limit=0', expect=400, **F)
    api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/labelled'), 'labels': {'env': 'prod'},
                                   'delayUntil': '2099-01-01T00:00:00.000Z'}, expect=201, **F)
    api.call('GET', '/v1/tasks?label=env:prod&label=x:y&targetUrl=%s&createdAfter=2024-01-15'
             % urllib.parse.quote(target.url('/ok/'), safe=''), expect=200, **R)
    api.call('GET', '/v1/tasks?label=env:prod&status=delayed&limit=1', expect=200, **R)
    api.call('GET', '/v1/tasks?label=env', expect=400, **F)
    batch = {'tasks': [{'targetUrl': target.url('/ok/batch'), 'delayUntil': '2099-01-01T00:00:00Z',
                        'labels': {'batch': 'openapi'}}] * 3}
    api.call('POST', '/v1/tasks/batch', batch, expect=201, headers={'Idempotency-Key': 'b-1'}, **F)
    api.call('POST', '/v1/tasks/batch', batch, expect=200, headers={'Idempotency-Key': 'b-1'}, **F)
    api.call('POST', '/v1/tasks/batch', {'tasks': [{}]}, expect=400, **F)
    api.call('POST', '/v1/tasks/batch', {'tasks': []}, expect=400, **F)
    api.call('POST', '/v1/tasks/batch', batch, expect=403, **R)
    bulk = api.call('POST', '/v1/tasks/bulk', {'action': 'cancel', 'filter': {'labels': {'batch': 'openapi'}}},
                    expect=202, **F).json['bulk']
    api.call('POST', '/v1/tasks/bulk', {'action': 'retry', 'ids': [done['id'], gone]}, expect=202,
             **F)
    api.call('POST', '/v1/tasks/bulk', {'action': 'retry'}, expect=400, **F)
    api.call('POST', '/v1/tasks/bulk', {'action': 'retry', 'ids': [gone]}, expect=403, **R)
    wait_until(lambda: api.call('GET', '/v1/bulk/%s' % bulk['id'], **R).json['bulk']['status']
               == 'completed', 10, 'the bulk job')
    api.call('GET', '/v1/bulk/%s' % gone, expect=404, **F)
    api.call('GET', '/v1/bulk/%s' % bulk['id'], expect=404, key=other)
    api.call('GET', '/v1/tasks', expect=401, key=None)
    api.call('GET', '/v1/tasks/%s/attempts' % done['id'], expect=200, **F)
    api.call('GET', '/v1/tasks/%s/attempts' % gone, expect=404, **F)
    api.call('POST', '/v1/tasks/%s/cancel' % later['id'], expect=403, **R)
    api.call('POST', '/v1/tasks/%s/cancel' % later['id'], expect=200, **F)
    api.call('POST', '/v1/tasks/%s/cancel' % done['id'], expect=409, **F)
    api.call('POST', '/v1/tasks/%s/cancel' % gone, expect=404, **F)
    api.call('POST', '/v1/tasks/%s/retry' % done['id'], expect=409, **F)
    api.call('POST', '/v1/tasks/%s/retry' % failing['id'], expect=200, **F)
    api.call('POST', '/v1/tasks/%s/retry' % gone, expect=404, **F)
    token = target.requests('/wait/openapi')[0]['headers']['asyncqueue-signal-token']
    api.call('POST', '/v1/tasks/%s/signal' % waiting['id'], {'status': 'bogus'}, expect=400,
             key=token)
    api.call('POST', '/v1/tasks/%s/signal' % waiting['id'],
             {'status': 'completed', 'result': {'answer': 42}}, expect=200, key=token)
    api.call('POST', '/v1/tasks/%s/signal' % waiting['id'], {'status': 'failed'}, expect=409, **F)
    api.call('POST', '/v1/tasks/%s/signal' % gone, {'status': 'failed'}, expect=404, **F)
    wait_until(lambda: api.call('GET', '/v1/tasks/%s' % waiting['id'], **F)
               .json['task'].get('onComplete', {}).get('status') == 'delivered', 10,
               'the onCompleteUrl delivery')
    # tokens
    made = api.call('POST', '/v1/tokens', {'name': 'openapi', 'value': 'sk-123'}, expect=201,
                    **F).json['token']
    api.call('POST', '/v1/tokens', {'name': 'openapi'}, expect=400, **F)
    api.call('POST', '/v1/tokens', {'name': 'x', 'value': 'y'}, expect=403, **R)
    api.call('GET', '/v1/tokens', expect=200, **R)
    api.call('DELETE', '/v1/tokens/%s' % made['id'], expect=200, **F)
    api.call('DELETE', '/v1/tokens/%s' % made['id'], expect=404, **F)
    # scheduled tasks
    agent = '7d3f2c1e-5b4a-4c9d-8e2f-1a6b3c4d5e6f'
    base = {'title': 'openapi', 'description': 'every operation', 'created_by': agent,
            'payload': {'steps': [{'targetUrl': target.url('/ok/step-1')},
                                  {'targetUrl': target.url('/ok/step-2')}]}}
    cron = api.call('POST', '/tasks', dict(base, schedule_kind='cron', schedule_expr='0 3 * * *',
                                           timezone='Europe/Chisinau'), expect=201, **F).json['task']
    api.call('POST', '/tasks', dict(base, schedule_kind='cron'), expect=400, **F)
    api.call('POST', '/tasks', dict(base, schedule_kind='cron', schedule_expr='* * * * *'),
             expect=403, **R)
    api.call('GET', '/tasks', expect=200, **R)
    api.call('GET', '/tasks?status=bogus', expect=400, **F)
    api.call('POST', '/tasks/preview', {'schedule_kind': 'rrule', 'schedule_expr': 'FREQ=DAILY',
                                        'count': 3}, expect=200, **R)
    api.call('POST', '/tasks/preview', {'schedule_kind': 'cron', 'schedule_expr': 'never'},
             expect=400, **F)
    api.call('GET', '/tasks/%s' % cron['id'], expect=200, **F)
    api.call('GET', '/tasks/%s' % gone, expect=404, **F)
    api.call('PUT', '/tasks/%s' % cron['id'], {'title': 'renamed'}, expect=200, **F)
    api.call('PUT', '/tasks/%s' % cron['id'], {'priority': 99}, expect=400, **F)
    run = api.call('POST', '/tasks/%s/run_now' % cron['id'], expect=201, **F).json['run']
    api.call('POST', '/tasks/%s/snooze' % cron['id'], {'delay_seconds': 3600, 'reason': 'later'},
             expect=200, **F)
    api.call('POST', '/tasks/%s/snooze' % cron['id'], {'delay_seconds': 0}, expect=400, **F)
    api.call('POST', '/tasks/%s/pause' % cron['id'], expect=200, **F)
    api.call('POST', '/tasks/%s/resume' % cron['id'], expect=200, **F)
    api.call('GET', '/tasks/%s/preview?count=3' % cron['id'], expect=200, **F)
    api.call('GET', '/tasks/%s/preview?count=0' % cron['id'], expect=400, **F)
    api.call('GET', '/tasks/%s/preview' % gone, expect=404, **F)
    wait_until(lambda: api.call('GET', '/tasks/%s/runs' % cron['id'], **F)
               .json['runs'][0]['status'] == 'completed', 15, 'the run to complete')
    event = api.call('POST', '/tasks', dict(base, schedule_kind='event', schedule_expr='openapi.ev',
                                            dedupe_key='openapi'), expect=201, **F).json['task']
    api.call('POST', '/events', {'name': 'openapi.ev', 'data': {'n': 1}}, expect=200, **F)
    api.call('POST', '/events', {'name': 'openapi.ev', 'data': {'n': 2}}, expect=200, **F)
    api.call('POST', '/events', {'data': {}}, expect=400, **F)
    runs = api.call('GET', '/tasks/%s/runs' % event['id'], expect=200, **F).json['runs']
    assert 'skipped' in [r['status'] for r in runs], runs
    api.call('GET', '/tasks/%s/runs?limit=1&offset=1' % cron['id'], expect=200, **R)
    api.call('GET', '/tasks/%s/runs?limit=0' % cron['id'], expect=400, **F)
    api.call('GET', '/tasks/%s/runs' % gone, expect=404, **F)
    steps = [s['task_id'] for s in api.call('GET', '/tasks/%s/runs' % cron['id'], **F)
             .json['runs'][0]['steps']]
    assert run['id'] and steps
    api.call('GET', '/v1/tasks/%s' % steps[0], expect=200, **F)
    api.call('POST', '/tasks/%s/cancel' % cron['id'], expect=200, **F)
    api.call('POST', '/tasks/%s/cancel' % cron['id'], expect=409, **F)
    api.call('PUT', '/tasks/%s' % cron['id'], {'title': 'late'}, expect=409, **F)
    api.call('POST', '/tasks/%s/run_now' % cron['id'], expect=409, **F)
    for action in ('pause', 'resume'):
        api.call('POST', '/tasks/%s/%s' % (cron['id'], action), expect=409, **F)
    api.call('POST', '/tasks/%s/snooze' % cron['id'], {'delay_seconds': 60}, expect=409, **F)
    # flow control keys
    api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/flow'),
                                   'flowControl': {'key': 'openapi-key', 'rate': 5,
                                                   'parallelism': 2}}, expect=201, **F)
    api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/flow'),
                                   'flowControl': {'key': 'a b', 'rate': 5}}, expect=400, **F)
    api.call('GET', '/v1/flow-control', expect=200, **R)
    api.call('GET', '/v1/flow-control?limit=0', expect=400, **F)
    api.call('GET', '/v1/flow-control/openapi-key', expect=200, **R)
    api.call('GET', '/v1/flow-control/nope', expect=404, **F)
    api.call('GET', '/v1/flow-control/openapi-key', expect=404, key=other)
    api.call('PUT', '/v1/flow-control/openapi-key', {'rate': 10, 'period': 2}, expect=200, **F)
    api.call('PUT', '/v1/flow-control/openapi-key', {'period': 2}, expect=400, **F)
    api.call('PUT', '/v1/flow-control/openapi-key', {'rate': 1}, expect=403, **R)
    for action in ('pause', 'resume'):
        api.call('POST', '/v1/flow-control/openapi-key/%s' % action, expect=200, **F)
        api.call('POST', '/v1/flow-control/openapi-key/%s' % action, expect=403, **R)
        api.call('POST', '/v1/flow-control/nope/%s' % action, expect=404, **F)
    # operations
    api.call('GET', '/healthz', expect=200, key=None)
    api.call('GET', '/readyz', expect=200, key=None)
    api.call('GET', '/metrics', expect=200, **F)
    api.call('GET', '/metrics', expect=200, key=aq.admin_token)
    api.call('GET', '/metrics', expect=401, key=None)
    for path in ('/v1/whoami', '/v1/stats'):
        api.call('GET', path, expect=200, **F)
        api.call('GET', path, expect=200, key=read)
        api.call('GET', path, expect=401, key=None)
    # every path answers 405 to a method it does not take
    for template, item in api.doc['paths'].items():
        path = template.replace('{id}', done['id']).replace('{key}', 'openapi-key')
        for method in ('PATCH', 'DELETE', 'PUT', 'POST', 'GET'):
            if method.lower() not in s_operations(item):
                api.call(method, path, expect=405, **F)
                break


@aqtest.timeout(240)
def test_openapi_document_matches_real_responses():
    """Real responses of every operation of docs/openapi.yaml (successes and
    the main errors: 400, 401, 403, 404, 405, 409, 413, 429, 503) each have
    their status documented for their operation and validate against its
    schema with a JSON Schema 2020-12 validator (ajv), objects closed: a
    field the server sends that the document does not list is a failure."""
    import yaml
    node = s_node_tools()
    with open(os.path.join(aqtest.ROOT, 'docs', 'openapi.yaml')) as f:
        doc = yaml.safe_load(f)
    assert doc['openapi'].startswith('3.1'), doc['openapi']
    target = aqtest.start_target()
    aq = aqtest.start_allinone(extra=('--backoff-base-ms', '100'))
    full, read, other = aq.new_key('openapi'), aq.new_key('openapi', scope='read'), \
        aq.new_key('openapi-other')
    limited = aq.new_key('openapi-limited')
    aq.aqctl('team', 'limit', 'openapi-limited', '--rps', '1', '--burst', '1')
    api = s_Recorder(doc, aq.port)
    s_exercise(api, full, read, other, limited, target, aq)

    # /readyz 503: a gateway whose broker is not there
    import types
    absent = types.SimpleNamespace(client_ep='ipc://%s/nobody.ipc' % aqtest.tmpdir(), certs=None)
    lonely = aqtest.start_gateway(absent)
    alone = s_Recorder(doc, lonely.port)
    alone.call('GET', '/readyz', expect=503, key=None)
    api.samples += alone.samples

    problems, samples, seen = [], [], set()
    strict = s_strict(doc)
    for index, (method, template, reply) in enumerate(api.samples):
        item = s_operations(strict['paths'][template])
        op = item.get(method.lower())
        if op is None:  # a method the path does not take: its 405, documented on the path's ops
            op = next((o for o in item.values() if '405' in o.get('responses', {})), {})
        name = '%s %s %d' % (method, template, reply.status)
        seen.add((method if method.lower() in item else '405', template, reply.status))
        response = s_ref(strict, op.get('responses', {}).get(str(reply.status)))
        if response is None:
            problems.append('%s: status not documented (%s)' % (name, reply.text[:200]))
            continue
        media = reply.headers.get('content-type', '').split(';')[0].strip()
        content = (response.get('content') or {}).get(media)
        if content is None or 'schema' not in content:
            problems.append('%s: no schema for %r' % (name, media))
            continue
        body = reply.json if media == 'application/json' else reply.text
        samples.append({'id': index, 'schema': s_schema_refs(content['schema']), 'body': body})
    data = os.path.join(aqtest.tmpdir(), 'openapi-samples.json')
    with open(data, 'w') as f:
        json.dump({'document': s_schema_refs(strict), 'samples': samples}, f)
    run = subprocess.run([node, os.path.join(NODE_DIR, 'validate.mjs'), data],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert run.returncode == 0, 'validate.mjs: %s' % run.stderr.decode()[-2000:]
    for failure in json.loads(run.stdout):
        method, template, reply = api.samples[failure['id']]
        problems.append('%s %s %d: %s\n      body %s' % (method, template, reply.status,
                                                       '; '.join(failure['errors'][:4]),
                                                       reply.text[:300]))
    # every operation answered with success at least once
    for template, item in doc['paths'].items():
        for method in s_operations(item):
            if not any(m == method.upper() and t == template and 200 <= s < 300
                       for m, t, s in seen):
                problems.append('%s %s never answered 2xx in this test' % (method.upper(), template))
    statuses = {s for _, _, s in seen}
    assert {400, 401, 403, 404, 405, 409, 413, 429, 503} <= statuses, sorted(statuses)
    aqtest.notes.append('%d responses of %d operations checked' % (
        len(api.samples), sum(len(s_operations(i)) for i in doc['paths'].values())))
    assert not problems, '%d of %d responses disagree with docs/openapi.yaml:\n  %s' % (
        len(problems), len(api.samples), '\n  '.join(problems))


# ---------------------------------------------------------------------------
# Plain make on a machine without the -dev packages

def test_make_without_packages_stops_with_one_line():
    """Plain `make` with a build package missing (a fake one named through
    DEPS_EXTRA, or no compiler) stops before compiling anything, with one
    line naming the missing package and `make deps`, the command that
    installs it; with everything there the check passes."""
    run = subprocess.run(['make', '--no-print-directory', 'check-deps'], cwd=aqtest.ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert run.returncode == 0 and not run.stdout.strip(), run.stdout.decode()
    for extra, named in ((['DEPS_EXTRA=nosuchlib-aq=libnosuch-aq-dev'], 'libnosuch-aq-dev'),
                         (['CC=/nonexistent/cc'], 'build-essential')):
        build = os.path.join(aqtest.tmpdir(), 'fresh-build')
        run = subprocess.run(['make', '--no-print-directory', '-j2', 'BUILD=' + build] + extra,
                             cwd=aqtest.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=60)
        out = run.stdout.decode()
        lines = out.strip().split('\n')
        assert run.returncode != 0 and len(lines) == 1, 'make %s said:\n%s' % (extra, out)
        assert re.search(r'missing packages: .*\b%s\b.*\'make deps\' installs them' % named,
                         lines[0]), lines[0]
        assert not os.path.exists(build), 'make %s compiled something' % extra
