"""test_security.py - who may reach the broker, and what a peer may settle (issue 11)

The links: ipc sockets in the data directory by default, tcp only with CURVE
keys (or --insecure on loopback), allow directories per role; inside the
protocol: RESULTs only from the lease holder with the job's lease token,
events only under a team's topic.
"""

import os
import re
import stat
import subprocess
import time

import aqtest
from aqtest import iso, now_ms, wait_until


def s_broker_run(*args, timeout=30):
    """aq-broker ARGS that should exit at once: (exit code, stderr)."""
    run = subprocess.run([aqtest.binary('aq-broker')] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=timeout)
    return run.returncode, run.stderr.decode()


def s_listening_tcp(pid):
    """tcp ports the process listens on (from /proc: its socket inodes)."""
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        match = re.match(r'socket:\[(\d+)\]', link)
        if match:
            inodes.add(match.group(1))
    ports = []
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == '0A' and cols[9] in inodes:  # LISTEN
                    ports.append(int(cols[1].split(':')[1], 16))
    return ports


# ---------------------------------------------------------------------------
# Secure defaults

def test_tcp_needs_cert_or_insecure():
    """tcp without keys needs --insecure even on loopback; beyond loopback it
    needs --cert whatever else is given; the broker says which, exits 2, and
    binds nothing."""
    data = os.path.join(aqtest.tmpdir(), 'tcp.data')
    port = aqtest.free_port()
    code, err = s_broker_run('--data', data, '--workers-endpoint', 'tcp://127.0.0.1:%d' % port)
    assert code == 2 and "worker endpoint 'tcp://127.0.0.1:%d' needs --cert (CURVE) or " \
        '--insecure' % port in err, (code, err)
    code, err = s_broker_run('--data', data, '--insecure', '--clients', 'tcp://0.0.0.0:%d' % port)
    assert code == 2 and 'beyond loopback without --cert' in err, (code, err)
    code, err = s_broker_run('--data', data, '--insecure', '--events', 'tcp://10.1.2.3:%d' % port)
    assert code == 2 and 'beyond loopback without --cert' in err, (code, err)
    code, err = s_broker_run('--data', data, '--allow-workers', data)
    assert code == 2 and '--allow-clients and --allow-workers need --cert' in err, (code, err)
    certs = aqtest.Certs()
    code, err = s_broker_run('--data', data, '--cert', certs.broker_secret,
                             '--workers-endpoint', 'tcp://0.0.0.0:%d' % port)
    assert code == 2 and 'needs --allow-workers DIR' in err, (code, err)
    run = subprocess.run([aqtest.binary('asyncqueue'), '--data', data, '--workers-endpoint',
                          'tcp://127.0.0.1:%d' % port], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30)
    assert run.returncode == 2 and b'needs --cert (CURVE) or --insecure' in run.stderr, run
    assert not os.path.exists(data), 'a refused start created its data directory'


def test_default_endpoints_are_private_ipc_sockets():
    """Without endpoint options aq-broker listens on no tcp port: its client,
    worker and event sockets are ipc files in the data directory, mode 0600;
    aq-worker and aq-gateway reach it there and a task completes."""
    target = aqtest.start_target()
    data = os.path.join(aqtest.tmpdir(), 'ipc.data')
    broker = aqtest.Proc('broker', [aqtest.binary('aq-broker'), '--data', data,
                                    '--heartbeat-ms', aqtest.HEARTBEAT_MS])
    names = ('client.ipc', 'worker.ipc', 'events.ipc')
    wait_until(lambda: broker.check_alive() or all(os.path.exists(os.path.join(data, n))
                                                     for n in names), 20, 'the ipc sockets')
    for name in names:
        mode = stat.S_IMODE(os.stat(os.path.join(data, name)).st_mode)
        assert mode == 0o600, '%s has mode %o' % (name, mode)
    assert s_listening_tcp(broker.pid) == [], 'the broker listens on tcp %r' % s_listening_tcp(broker.pid)
    aqtest.Proc('worker', [aqtest.binary('aq-worker'), '--broker', 'ipc://%s/worker.ipc' % data,
                           '--allow-private-targets', '--heartbeat-ms', aqtest.HEARTBEAT_MS])
    port = aqtest.free_port()
    aqtest.Proc('gateway', [aqtest.binary('aq-gateway'), '--broker', 'ipc://%s/client.ipc' % data,
                            '--listen', '127.0.0.1:%d' % port])
    key = aqtest.aqctl(data, 'key', 'create', '--team', 'ipc')
    http = aqtest.HttpClient(port, key=key)
    wait_until(lambda: http.get('/healthz').status == 200, 20, 'the gateway')
    created = http.post('/v1/tasks', {'targetUrl': target.url('/ok/ipc')})
    assert created.status == 201, created
    task_id = created.json['task']['id']
    wait_until(lambda: http.get('/v1/tasks/%s' % task_id).json['task']['status'] == 'completed',
               20, 'the task to complete over ipc')


# ---------------------------------------------------------------------------
# CURVE

def test_curve_admits_listed_keys_only_and_rereads_the_lists():
    """With --cert, a worker and a gateway with admitted keys serve a task; a
    stranger's key, a client key on the worker endpoint, a worker key on the
    client endpoint, a wrong secret for an admitted public key and a peer
    without CURVE get nothing (no JOB, no REPLY, no event) and are counted;
    the broker logs one line per address a minute; an allow directory is
    read again without a restart."""
    certs = aqtest.Certs()
    target = aqtest.start_target()
    broker = aqtest.start_broker(certs=certs)
    aqtest.start_workers(broker, 1)
    key = broker.new_key('curve')
    gateway = aqtest.start_gateway(broker)
    http = aqtest.HttpClient(gateway.port, key=key)
    created = http.post('/v1/tasks', {'targetUrl': target.url('/ok/curve')})
    assert created.status == 201, created
    with broker.client(key=key) as cli:
        assert cli.wait_terminal(created.json['task']['id'])['status'] == 'completed'
        # a task waiting for a worker while intruders knock
        pending = cli.create(targetUrl=target.url('/ok/pending'),
                             delayUntil=iso(now_ms() + 3600 * 1000))

    worker_cert = certs.worker('w-as-client')
    client_cert = certs.client('c-as-worker')
    stranger = certs.stranger('stranger')
    wrong = certs.stranger('wrong-secret')
    # an admitted public key with another key pair's secret
    admitted_public = certs.client('admitted')[0]
    with open(wrong[1]) as f:
        text = f.read()
    forged = os.path.join(aqtest.tmpdir(), 'forged_secret')
    public = aqtest.cert_keys(admitted_public)[0].decode()
    with open(forged, 'w') as f:
        f.write(re.sub(r'public-key = "[^"]*"', 'public-key = "%s"' % public, text))
    os.chmod(forged, 0o600)

    def knock_client(curve):
        c = aqtest.Client(broker.client_ep, key=key, curve=curve)
        try:
            c.send('STATS', {})
            return c.sock.poll(400)
        finally:
            c.close()

    def knock_worker(curve):
        c = aqtest.Client(broker.worker_ep, curve=curve)
        try:
            c.send('READY', {'credit': 4})
            return c.sock.poll(400)
        finally:
            c.close()

    before = broker.stats()['counters'].get('refusedConnections', 0)
    intruders = [(knock_client, (worker_cert[1], certs.broker)),
                 (knock_client, (stranger[1], certs.broker)),
                 (knock_client, (forged, certs.broker)),
                 (knock_client, None),
                 (knock_worker, (client_cert[1], certs.broker)),
                 (knock_worker, (stranger[1], certs.broker)),
                 (knock_worker, (forged, certs.broker)),
                 (knock_worker, None)]
    for knock, curve in intruders:
        assert not knock(curve), 'an intruder (%s, %s) got an answer' % (knock.__name__, curve)
    # the admitted ones do get answers on the same endpoints
    assert knock_client(broker.curve), 'an admitted client got no answer'
    refused = broker.stats()['counters'].get('refusedConnections', 0) - before
    assert refused >= len(intruders), 'only %d of %d refusals counted' % (refused, len(intruders))
    log = broker.proc.log()
    zap_lines = [l for l in log.splitlines() if 'refused' in l and 'at 127.0.0.1' in l]
    assert len(zap_lines) == 1, 'refusals of one address are logged once a minute: %r' % zap_lines
    assert 'failed the CURVE handshake' in log, log[-2000:]
    with broker.client(key=key) as cli:
        assert cli.get(pending['id'])['status'] == 'delayed'

    # the workers directory is read again: a new worker key is admitted, and
    # a removed one turned away, without a restart
    late = certs.stranger('late-worker')
    assert not knock_worker((late[1], certs.broker))
    with open(late[0]) as src, open(os.path.join(certs.workers, 'late-worker'), 'w') as dst:
        dst.write(src.read())
    assert knock_worker((late[1], certs.broker)), 'an added worker key was not admitted'
    os.remove(os.path.join(certs.workers, 'late-worker'))
    time.sleep(1.1)  # the directory's newest time has a one-second grain
    assert not knock_worker((late[1], certs.broker)), 'a removed worker key was still admitted'


def test_aqctl_and_client_library_speak_curve():
    """aqctl reaches a CURVE broker over tcp with --cert and --broker-cert;
    without them it gets no answer (and says so)."""
    certs = aqtest.Certs()
    broker = aqtest.start_broker(certs=certs)
    key = broker.new_key('aqctl-curve')
    cert = certs.client('aqctl')
    run = subprocess.run([aqtest.binary('aqctl'), '--broker', broker.client_ep, '--key', key]
                         + certs.peer_args(cert[1]) + ['stats'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert run.returncode == 0 and b'"tasks"' in run.stdout, run
    run = subprocess.run([aqtest.binary('aqctl'), '--broker', broker.client_ep, '--key', key,
                          'stats'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert run.returncode != 0, 'aqctl without keys was answered: %r' % run.stdout
    run = subprocess.run([aqtest.binary('aqctl'), 'cert', 'create', cert[0]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert run.returncode == 1 and b'it exists' in run.stderr, run
    mode = stat.S_IMODE(os.stat(cert[1]).st_mode)
    assert mode == 0o600, 'a secret certificate has mode %o' % mode
    os.chmod(cert[1], 0o644)
    run = subprocess.run([aqtest.binary('aqctl'), '--broker', broker.client_ep, '--key', key]
                         + certs.peer_args(cert[1]) + ['stats'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert run.returncode == 2 and b'readable by group or others' in run.stderr, run


# ---------------------------------------------------------------------------
# Authorization inside the protocol

def test_results_only_from_the_lease_holder():
    """A RESULT settles a task only when it comes from the worker holding the
    attempt's lease, with the job's lease token, once: an outsider that never
    sent READY, a READY'd rogue worker and a replay change nothing, and the
    real call's outcome stands."""
    target = aqtest.start_target()
    broker = aqtest.start_broker(backoff_base_ms=200)
    aqtest.start_workers(broker, 1)
    with broker.client(key=broker.new_key('lease')) as cli:
        task = cli.create(targetUrl=target.url('/sleep/1500/lease'))
        cli.wait_status(task['id'], ['processing'])
        forged = {'id': task['id'], 'attempt': 1, 'duration': 5, 'statusCode': 200,
                  'headers': {}, 'body': 'forged-by-outsider'}
        outsider = aqtest.Client(broker.worker_ep)
        outsider.send('RESULT', forged)
        rogue = aqtest.Client(broker.worker_ep)
        rogue.send('READY', {'credit': 1, 'name': 'rogue'})
        time.sleep(0.2)
        rogue.send('RESULT', dict(forged, body='forged-by-rogue', lease='00' * 16))
        time.sleep(0.3)
        assert cli.get(task['id'])['status'] == 'processing', 'a forged RESULT settled the task'
        done = cli.wait_terminal(task['id'])
        assert done['status'] == 'completed' and 'forged' not in done['result'].get('body', ''), done
        # a replay of an accepted result: the attempt is settled, nothing changes
        outsider.send('RESULT', dict(forged, lease='00' * 16))
        time.sleep(0.3)
        assert cli.get(task['id'])['result'] == done['result']
        outsider.close()
        rogue.close()
    counters = broker.stats()['counters']
    assert counters['refusedResults'] >= 2, counters


def test_events_only_under_a_teams_topic():
    """The events feed carries each event under its team's topic (from AUTH):
    a subscriber to everything ('') or to a bare team id gets nothing."""
    target = aqtest.start_target()
    broker = aqtest.start_broker()
    aqtest.start_workers(broker, 1)
    ctx = aqtest.context()
    subs = {}
    with broker.client(key=broker.new_key('events-a')) as cli:
        auth = cli.call('AUTH', {'key': cli.key})['body']
        for name, prefix in (('all', b''), ('team', auth['teamId'].encode()),
                             ('topic', auth['events'].encode())):
            sub = ctx.socket(aqtest.zmq.SUB)
            sub.setsockopt(aqtest.zmq.LINGER, 0)
            sub.setsockopt(aqtest.zmq.SUBSCRIBE, prefix)
            sub.connect(broker.events_ep)
            subs[name] = sub
        time.sleep(0.3)
        task = cli.create(targetUrl=target.url('/ok/events-topics'))
        cli.wait_terminal(task['id'])
    try:
        assert subs['topic'].poll(2000), 'the team topic got no event'
        topic, frame = subs['topic'].recv_multipart()
        assert topic == auth['events'].encode() and aqtest.decode(frame)[1]['id'] == task['id']
        for name in ('all', 'team'):
            assert not subs[name].poll(300), 'a %r subscriber got an event' % name
    finally:
        for sub in subs.values():
            sub.close(0)
