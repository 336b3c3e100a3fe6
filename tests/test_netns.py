"""test_netns.py - the broker across hosts: CURVE between network namespaces (issue 11)

Three Linux network namespaces stand for three hosts, joined by veth pairs
on a private range this test makes (and removes, also on failure): the
broker in one; a gateway, two workers and the HTTP target in another; an
intruder in the third. Needs root (ip netns), as `make test` runs in CI.
"""

import json
import os
import random
import subprocess
import time

import aqtest
from aqtest import wait_until

S_INTRUDER = r'''
import sys, time, zmq
sys.path.insert(0, %(tests)r)
import aqtest
clients, workers, broker_public, identities = %(args)r
ctx = zmq.Context()
attempts = answers = 0
for batch in range(%(batches)d):
    socks = []
    for i in range(%(per_batch)d):
        kind, curve = identities[(batch * %(per_batch)d + i) %% len(identities)]
        to_workers = i %% 2 == 1
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        if kind == 'fresh':
            public, secret = zmq.curve_keypair()
        elif kind == 'wrong-secret':
            public, secret = curve.encode(), zmq.curve_keypair()[1]
        if kind != 'plain':
            s.curve_publickey, s.curve_secretkey = public, secret
            s.curve_serverkey = broker_public.encode()
        s.connect(workers if to_workers else clients)
        if to_workers:
            s.send(aqtest.encode('READY', {'credit': 8, 'name': 'intruder'}))
        else:
            s.send(aqtest.encode('TASK_LIST', {'corr': 7, 'key': 'x'}))
            s.send(aqtest.encode('STATS', {'corr': 8}))
        socks.append(s)
        attempts += 1
    deadline = time.time() + 0.8
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    while time.time() < deadline:
        for s, _ in poller.poll(100):
            s.recv()
            answers += 1
    for s in socks:
        s.close(0)
print('attempts %%d answers %%d' %% (attempts, answers))
'''


class Namespaces:
    """Three namespaces: hub (the broker) linked to b and c by veth pairs,
    10.213.N.1 on the hub's side and 10.213.N.2 on the other (N = 1, 2)."""

    def __init__(self):
        tag = '%05d' % random.randrange(100000)
        self.names = {'hub': 'aq-hub-' + tag, 'b': 'aq-b-' + tag, 'c': 'aq-c-' + tag}
        self.tag = tag
        self.made = []
        try:
            for ns in self.names.values():
                self._ip('netns', 'add', ns)
                self.made.append(ns)
                self._ip('-n', ns, 'link', 'set', 'lo', 'up')
            for n, side in ((1, 'b'), (2, 'c')):
                hub_end, far_end = 'aqh%d-%s' % (n, tag), 'aqf%d-%s' % (n, tag)
                self._ip('link', 'add', hub_end, 'netns', self.names['hub'], 'type', 'veth',
                         'peer', 'name', far_end, 'netns', self.names[side])
                self._ip('-n', self.names['hub'], 'addr', 'add', '10.213.%d.1/24' % n, 'dev', hub_end)
                self._ip('-n', self.names[side], 'addr', 'add', '10.213.%d.2/24' % n, 'dev', far_end)
                self._ip('-n', self.names['hub'], 'link', 'set', hub_end, 'up')
                self._ip('-n', self.names[side], 'link', 'set', far_end, 'up')
        except Exception:
            self.remove()
            raise

    @staticmethod
    def _ip(*args):
        run = subprocess.run(['ip'] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=30)
        assert run.returncode == 0, 'ip %s: %s' % (' '.join(args), run.stderr.decode())

    def run(self, ns, args):
        """argv running args inside namespace ns."""
        return ['ip', 'netns', 'exec', self.names[ns]] + [str(a) for a in args]

    def remove(self):
        for ns in self.made:  # removing a namespace removes its veth ends
            subprocess.run(['ip', 'netns', 'del', ns], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        self.made = []


@aqtest.timeout(180)
def test_curve_across_network_namespaces():
    """Broker in one namespace, gateway + workers + target in a second: a
    task created over HTTP completes over CURVE. An intruder in a third, with
    a fresh key pair, with a wrong secret for an admitted public key, and
    with no CURVE at all, sends READY and client requests over 1,000 times
    while tasks are pending, and receives nothing; the broker counts it."""
    assert os.geteuid() == 0, 'this test needs root for ip netns (make test runs as root in CI)'
    ns = Namespaces()
    try:
        certs = aqtest.Certs()
        port = aqtest.free_port()
        clients_ep = 'tcp://10.213.%%d.1:%d' % port
        workers_ep = 'tcp://10.213.%%d.1:%d' % (port + 1)
        data = os.path.join(aqtest.tmpdir(), 'broker.data')
        broker = aqtest.Proc('broker', ns.run('hub', [
            aqtest.binary('aq-broker'), '--data', data, '--heartbeat-ms', aqtest.HEARTBEAT_MS,
            '--clients', 'tcp://0.0.0.0:%d' % port, '--workers-endpoint',
            'tcp://0.0.0.0:%d' % (port + 1), '--events', 'none'] + certs.broker_args()))
        wait_until(lambda: broker.check_alive() or os.path.exists(os.path.join(data, 'admin.token')),
                   20, 'the broker to start')
        time.sleep(0.3)

        target_proc = subprocess.Popen(ns.run('b', [aqtest.binary('aq-target'), '--port', '0']),
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        target_port = int(target_proc.stdout.readline().split()[1])
        try:
            for i in (1, 2):
                secret = certs.worker('worker-%d' % i)[1]
                aqtest.Proc('worker-%d' % i, ns.run('b', [
                    aqtest.binary('aq-worker'), '--broker', workers_ep % 1, '--slots', 2,
                    '--allow-private-targets', '--heartbeat-ms', aqtest.HEARTBEAT_MS]
                    + certs.peer_args(secret)))
            http_port = aqtest.free_port()
            aqtest.Proc('gateway', ns.run('b', [
                aqtest.binary('aq-gateway'), '--broker', clients_ep % 1, '--listen',
                '127.0.0.1:%d' % http_port] + certs.peer_args(certs.client('gateway')[1])))
            key = aqtest.aqctl(data, 'key', 'create', '--team', 'netns')

            def curl(method, path, body=None):
                args = ['curl', '-s', '-X', method, '-H', 'Authorization: Bearer ' + key,
                        '-H', 'Content-Type: application/json',
                        'http://127.0.0.1:%d%s' % (http_port, path)]
                if body is not None:
                    args += ['-d', body]
                run = subprocess.run(ns.run('b', args), stdout=subprocess.PIPE, timeout=30)
                return json.loads(run.stdout or b'null')

            wait_until(lambda: (curl('GET', '/v1/tasks') or {}).get('tasks') is not None, 30,
                       'the gateway in namespace b to reach the broker')
            target = 'http://127.0.0.1:%d' % target_port
            first = curl('POST', '/v1/tasks', '{"targetUrl": "%s/ok/netns"}' % target)['task']
            wait_until(lambda: curl('GET', '/v1/tasks/' + first['id'])['task']['status']
                       == 'completed', 30, 'a task to complete across namespaces')
            # keep the workers' 4 slots busy so later tasks stay pending
            busy = [curl('POST', '/v1/tasks', '{"targetUrl": "%s/sleep/6000/busy"}' % target)['task']
                    for _ in range(4)]
            pending = [curl('POST', '/v1/tasks', '{"targetUrl": "%s/ok/pending"}' % target)['task']
                       for _ in range(3)]
            time.sleep(0.5)
            assert all(curl('GET', '/v1/tasks/' + t['id'])['task']['status'] == 'pending'
                       for t in pending)

            admitted = aqtest.cert_keys(certs.client('admitted-elsewhere')[0])[0].decode()
            broker_public = aqtest.cert_keys(certs.broker)[0].decode()
            script = os.path.join(aqtest.tmpdir(), 'intruder.py')
            with open(script, 'w') as f:
                f.write(S_INTRUDER % {
                    'tests': os.path.dirname(os.path.abspath(__file__)), 'batches': 6,
                    'per_batch': 180,
                    'args': (clients_ep % 2, workers_ep % 2, broker_public,
                             [('fresh', None), ('wrong-secret', admitted), ('plain', None)])})
            run = subprocess.run(ns.run('c', ['/usr/bin/python3', script]),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            assert run.returncode == 0, run.stderr.decode()[-2000:]
            attempts, answers = [int(w) for w in run.stdout.split()[1::2]]
            assert attempts >= 1000 and answers == 0, run.stdout
            # the pending tasks went to the real workers, after the busy ones
            for task in busy + pending:
                wait_until(lambda: curl('GET', '/v1/tasks/' + task['id'])['task']['status']
                           == 'completed', 30, 'task %s to complete' % task['id'])
            log = broker.log()
            assert "at 10.213.2.2" in log and 'failed the CURVE handshake' in log, log[-3000:]
            stats = subprocess.run([aqtest.binary('aqctl'), '--data', data, '--json', 'stats'],
                                   stdout=subprocess.PIPE, timeout=30).stdout
            refused = json.loads(stats)['counters']['refusedConnections']
            assert refused >= attempts, 'only %d of %d refusals counted' % (refused, attempts)
        finally:
            target_proc.terminate()
            target_proc.wait(10)
    finally:
        for proc in aqtest.processes():
            proc.stop()
        ns.remove()
