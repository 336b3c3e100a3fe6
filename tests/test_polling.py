"""test_polling.py - long-running jobs: pollConfig, fal and Replicate (issue 4),
provider hosts and provider URLs (issue 11)

A local mock provider (a real HTTP server in this process) speaks a generic
job API, fal's queue API and Replicate's predictions API; the all-in-one
`asyncqueue` drives tasks to completed, failed or timeout against it. The
mock is on http://127.0.0.1:PORT, not on the providers' own https hosts, so
every server here is started with `--provider-origin NAME=<mock>`.
"""

import json
import os
import random
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

import aqtest
from aqtest import wait_until


class Mock:
    """Jobs finish after `polls` status requests with the outcome their
    name asks for: 'ok', 'fail' or 'never' (runs until cancelled)."""

    def __init__(self):
        self.jobs = {}
        self.cancels = []
        self.requests = []  # (method, path, headers) of every request, in order
        self.lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def record(self):
                with mock.lock:
                    mock.requests.append((self.command, self.path, dict(self.headers)))

            def do_POST(self):
                self.record()
                length = int(self.headers.get('Content-Length') or 0)
                body = json.loads(self.rfile.read(length) or b'{}')
                self.reply(*mock.post(self.path, body, dict(self.headers)))

            def do_PUT(self):
                self.record()
                self.reply(*mock.cancel(self.path))

            def do_DELETE(self):
                self.record()
                self.reply(*mock.cancel(self.path + '/cancel'))

            def do_GET(self):
                self.record()
                self.reply(*mock.get(self.path))

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.base = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def new_job(self, outcome, auth):
        with self.lock:
            job = '%s-%08x' % (outcome, random.randrange(1 << 32))
            self.jobs[job] = {'outcome': outcome, 'polls': 0, 'auth': auth}
            return job

    def step(self, job):
        with self.lock:
            j = self.jobs[job]
            j['polls'] += 1
            j.setdefault('times', []).append(time.monotonic())
            if job in self.cancels or j['outcome'] == 'never' or j['polls'] < 2:
                return 'running'
            return 'ok' if j['outcome'] == 'throttled' else j['outcome']

    def post(self, path, body, headers):
        outcome = body.get('outcome', 'ok')
        auth = headers.get('Authorization')
        if path == '/jobs':
            return 200, {'id': self.new_job(outcome, auth)}
        if path.startswith('/fal/'):
            job = self.new_job(outcome, auth)
            base = self.base + '/fal/requests/' + job
            status_url = body.get('statusUrl', base + '/status')  # a provider gone bad
            return 200, {'request_id': job, 'status_url': status_url,
                         'response_url': base, 'cancel_url': base + '/cancel',
                         'status': 'IN_QUEUE'}
        if path == '/plain':
            return 200, {'ok': True}
        if path == '/example':
            job = self.new_job(outcome, auth)
            return 202, {'id': job, 'statusUrl': '/example/' + job}
        if path == '/v1/predictions':
            job = self.new_job(outcome, auth)
            return 201, self.prediction(job, 'starting')
        if path.startswith('/v1/predictions/') and path.endswith('/cancel'):
            return self.cancel(path)
        return 404, {'error': 'no such path'}

    def prediction(self, job, status):
        base = self.base + '/v1/predictions/' + job
        body = {'id': job, 'status': status, 'urls': {'get': base, 'cancel': base + '/cancel'}}
        if status == 'succeeded':
            body['output'] = ['https://example.com/out.png']
        if status == 'failed':
            body['error'] = 'out of GPUs'
        return body

    def cancel(self, path):
        job = path.split('/')[-2]
        with self.lock:
            self.cancels.append(job)
        return 200, {'ok': True}

    def get(self, path):
        parts = path.split('/')
        if path.startswith('/jobs/'):
            state = {'running': 'busy', 'ok': 'done', 'fail': 'broken'}[self.step(parts[2])]
            return 200, {'data': {'state': state}}
        if path.startswith('/fal/requests/') and path.endswith('/status'):
            state = self.step(parts[3])
            return 200, {'status': {'running': 'IN_PROGRESS', 'ok': 'COMPLETED',
                                    'fail': 'ERROR'}[state]}
        if path.startswith('/fal/requests/'):
            job = parts[3]
            if self.jobs[job]['outcome'] == 'fail':
                return 500, {'detail': 'model crashed'}
            return 200, {'images': [{'url': 'https://example.com/cat.png'}]}
        if path.startswith('/example/'):
            if parts[2].startswith('throttled'):
                # the first status request is throttled, the second breaks
                with self.lock:
                    self.jobs[parts[2]]['throttles'] = n = self.jobs[parts[2]].get('throttles', 0) + 1
                    self.jobs[parts[2]].setdefault('times', []).append(time.monotonic())
                if n == 1:
                    return 429, {'error': 'slow down'}, {'Retry-After': '1'}
                if n == 2:
                    return 503, {'error': 'briefly broken'}
            if parts[2].startswith('crash'):
                return 200, {'status': 'crash'}  # the crashy test plugin dies reading it
            state = self.step(parts[2])
            body = {'status': {'running': 'running', 'ok': 'done', 'fail': 'failed'}[state]}
            if state == 'fail':
                body['error'] = 'example job failed'
            return 200, body
        if path.startswith('/v1/predictions/'):
            state = self.step(parts[3])
            return 200, self.prediction(parts[3], {'running': 'processing', 'ok': 'succeeded',
                                                   'fail': 'failed'}[state])
        return 404, {'error': 'no such path'}


def s_origins(mock, names=('fal', 'replicate', 'example')):
    """--provider-origin options letting each provider poll the mock."""
    args = []
    for name in names:
        args += ['--provider-origin', '%s=%s' % (name, mock.base)]
    return args


def s_setup(extra=()):
    mock = Mock()
    aq = aqtest.start_allinone(extra=['--poll-interval-ms', '200'] + s_origins(mock) + list(extra))
    auth = {'Authorization': 'Bearer ' + aq.new_key('poll-%d' % random.randrange(1 << 30))}
    return mock, aq, auth


def s_run(aq, auth, statuses, timeout=20.0, **task):
    r = requests.post(aq.url('/v1/tasks'), json=task, headers=auth, timeout=10)
    assert r.status_code == 201, r.text
    task_id = r.json()['task']['id']
    seen = {}

    def check():
        seen['task'] = requests.get(aq.url('/v1/tasks/' + task_id), headers=auth).json()['task']
        return seen['task']['status'] in statuses
    wait_until(check, timeout, 'task to reach %s' % statuses)
    return seen['task']


def test_poll_config_to_completed_and_failed():
    mock, aq, auth = s_setup()
    config = {'urlTemplate': mock.base + '/jobs/{{id}}', 'statusPath': 'data.state',
              'doneValues': ['done'], 'failValues': ['broken'], 'intervalSeconds': 1}
    task = s_run(aq, auth, ['completed', 'failed'], targetUrl=mock.base + '/jobs',
                 body=json.dumps({'outcome': 'ok'}), pollConfig=config)
    assert task['status'] == 'completed', task
    assert json.loads(task['result']['body']) == {'data': {'state': 'done'}}
    task = s_run(aq, auth, ['completed', 'failed'], targetUrl=mock.base + '/jobs',
                 body=json.dumps({'outcome': 'fail'}), pollConfig=config)
    assert task['status'] == 'failed' and task['error'] == 'Polling status: broken', task


def test_fal_to_completed_failed_and_timeout_with_cancel():
    mock, aq, auth = s_setup()
    task = s_run(aq, auth, ['completed', 'failed'], provider='fal',
                 targetUrl=mock.base + '/fal/fast-sdxl', headers={'Authorization': 'Key k-1'},
                 body=json.dumps({'outcome': 'ok'}))
    assert task['status'] == 'completed', task
    assert json.loads(task['result']['body'])['images'][0]['url'].endswith('cat.png')
    task = s_run(aq, auth, ['completed', 'failed'], provider='fal',
                 targetUrl=mock.base + '/fal/fast-sdxl', body=json.dumps({'outcome': 'fail'}))
    assert task['status'] == 'failed' and task['error'] == 'fal request failed: model crashed', task
    task = s_run(aq, auth, ['timeout'], provider='fal', maxWaitTime=2,
                 targetUrl=mock.base + '/fal/fast-sdxl', body=json.dumps({'outcome': 'never'}))
    job = [j for j in mock.jobs if j.startswith('never')][0]
    wait_until(lambda: job in mock.cancels, 10, 'the cancel_url to be called')


def test_replicate_to_completed_failed_and_cancel_while_polling():
    mock, aq, auth = s_setup()
    task = s_run(aq, auth, ['completed', 'failed'], provider='replicate',
                 targetUrl=mock.base + '/v1/predictions', headers={'Authorization': 'Bearer r8'},
                 body=json.dumps({'outcome': 'ok'}))
    assert task['status'] == 'completed', task
    assert json.loads(task['result']['body'])['status'] == 'succeeded'
    task = s_run(aq, auth, ['completed', 'failed'], provider='replicate',
                 targetUrl=mock.base + '/v1/predictions', body=json.dumps({'outcome': 'fail'}))
    assert task['status'] == 'failed' and 'out of GPUs' in task['error'], task
    task = s_run(aq, auth, ['polling'], provider='replicate',
                 targetUrl=mock.base + '/v1/predictions', body=json.dumps({'outcome': 'never'}))
    r = requests.post(aq.url('/v1/tasks/%s/cancel' % task['id']), headers=auth)
    assert r.status_code == 200 and r.json()['task']['status'] == 'cancelled', r.text
    job = [j for j in mock.jobs if j.startswith('never')][0]
    wait_until(lambda: job in mock.cancels, 10, 'urls.cancel to be called')


def test_example_provider_and_timeouts_of_every_kind():
    mock, aq, auth = s_setup()
    # the template provider of docs/plugins.md, end to end
    task = s_run(aq, auth, ['completed', 'failed'], provider='example',
                 targetUrl=mock.base + '/example', body=json.dumps({'outcome': 'ok'}))
    assert task['status'] == 'completed' and json.loads(task['result']['body']) == {
        'status': 'done'}, task
    task = s_run(aq, auth, ['completed', 'failed'], provider='example',
                 targetUrl=mock.base + '/example', body=json.dumps({'outcome': 'fail'}))
    assert task['status'] == 'failed' and 'example job failed' in task['error'], task
    # a 429 and a 503 to a status request never reach the provider: the broker
    # asks again, after the 429's Retry-After (1 s) and the interval (200 ms)
    task = s_run(aq, auth, ['completed', 'failed'], provider='example',
                 targetUrl=mock.base + '/example', body=json.dumps({'outcome': 'throttled'}))
    assert task['status'] == 'completed', task
    times = [mock.jobs[j]['times'] for j in mock.jobs if j.startswith('throttled')][0]
    assert len(times) >= 3, times
    assert times[1] - times[0] >= 0.9, 'Retry-After not honoured: %.3f s' % (times[1] - times[0])
    assert times[2] - times[1] < 0.9, 'a 503 waited %.3f s, not the interval' % (
        times[2] - times[1])
    # maxWaitTime ends polling for a pollConfig, a Replicate and an example job
    config = {'urlTemplate': mock.base + '/jobs/{{id}}', 'statusPath': 'data.state',
              'doneValues': ['done'], 'failValues': ['broken']}
    ends = [s_run(aq, auth, ['timeout'], maxWaitTime=1, targetUrl=mock.base + '/jobs',
                  body=json.dumps({'outcome': 'never'}), pollConfig=config),
            s_run(aq, auth, ['timeout'], maxWaitTime=1, provider='replicate',
                  targetUrl=mock.base + '/v1/predictions', body=json.dumps({'outcome': 'never'})),
            s_run(aq, auth, ['timeout'], maxWaitTime=1, provider='example',
                  targetUrl=mock.base + '/example', body=json.dumps({'outcome': 'never'}))]
    for task in ends:
        assert task['error'] == 'Task exceeded maxWaitTime of 1s', task
    never = [j for j in mock.jobs if j.startswith('never')]
    assert len(never) == 3
    # the providers with a cancel URL were asked to stop (pollConfig has none)
    wait_until(lambda: len([j for j in never if j in mock.cancels]) == 2, 10,
               'Replicate and example jobs to be cancelled')


def test_unknown_provider_lists_the_loaded_ones():
    mock, aq, auth = s_setup()
    r = requests.post(aq.url('/v1/tasks'), json={'targetUrl': mock.base + '/x', 'provider': 'nope'},
                      headers=auth)
    assert r.status_code == 400, r.text
    assert r.json() == {'error': 'Unknown provider: nope. Loaded providers: example, fal, replicate'}


def test_polling_resumes_after_broker_kill9():
    mock = Mock()
    broker = aqtest.start_broker()
    aqtest.start_workers(broker, 1, slots=8, allow_private=True)
    key = broker.new_key('poll-restart')
    cli = broker.client(key=key)
    task = cli.create(targetUrl=mock.base + '/jobs', body=json.dumps({'outcome': 'ok'}),
                      pollConfig={'urlTemplate': mock.base + '/jobs/{{id}}',
                                  'statusPath': 'data.state', 'doneValues': ['done'],
                                  'failValues': ['broken'], 'intervalSeconds': 1})
    cli.wait_status(task['id'], ['polling'], timeout=10)
    broker.kill9()
    broker.restart()
    cli = broker.client(key=key)
    done = cli.wait_terminal(task['id'], timeout=20)
    assert done['status'] == 'completed', done
    job = [j for j in mock.jobs if j.startswith('ok')][0]
    assert mock.jobs[job]['polls'] >= 2


def test_plugin_of_another_abi_is_refused_and_the_server_keeps_running():
    import os
    import shutil
    plugins = os.path.join(aqtest.tmpdir(), 'plugins')
    os.makedirs(plugins)
    build = os.path.dirname(os.path.dirname(aqtest.binary('asyncqueue')))
    for name in ('fal.so', 'vault-sodium.so'):
        shutil.copy(os.path.join(build, 'plugins', name), plugins)
    shutil.copy(os.path.join(build, 'plugins-test', 'bad_abi.so'), plugins)
    aq = aqtest.start_allinone(extra=('--plugins', plugins))
    log = aq.proc.log()
    assert 'is not binary compatible: ABI 2, host has 1' in log, log[-2000:]
    auth = {'Authorization': 'Bearer ' + aq.new_key('abi')}
    r = requests.post(aq.url('/v1/tasks'), json={'targetUrl': 'http://127.0.0.1:9/x',
                                                 'provider': 'replicate'}, headers=auth)
    assert r.json() == {'error': 'Unknown provider: replicate. Loaded providers: fal'}, r.text
    assert requests.get(aq.url('/healthz')).json()['status'] == 'ok'


# ---------------------------------------------------------------------------
# Provider URLs and what polls carry (issue 11, finding 6)

def s_lower(headers):
    return {name.lower(): value for name, value in headers.items()}


def test_provider_url_outside_its_hosts_fails_the_task_and_is_never_asked():
    mock, evil = Mock(), Mock()  # evil: another origin, no provider's
    aq = aqtest.start_allinone(extra=['--poll-interval-ms', '200'] + s_origins(mock, ('fal',)))
    auth = {'Authorization': 'Bearer ' + aq.new_key('hosts')}
    bad = evil.base + '/steal/status'
    task = s_run(aq, auth, ['completed', 'failed'], provider='fal',
                 targetUrl=mock.base + '/fal/fast-sdxl', headers={'Authorization': 'Key k-1'},
                 body=json.dumps({'outcome': 'ok', 'statusUrl': bad}))
    assert task['status'] == 'failed', task
    assert task['error'] == "provider 'fal' answered a status URL outside its hosts: " + bad, task
    # without --provider-origin a provider polls only https on its own hosts
    # (api.replicate.com): the mock's http://127.0.0.1 URLs are refused too
    task = s_run(aq, auth, ['completed', 'failed'], provider='replicate',
                 targetUrl=mock.base + '/v1/predictions', headers={'Authorization': 'Bearer r8'},
                 body=json.dumps({'outcome': 'ok'}))
    job = [j for j in mock.jobs if mock.jobs[j]['auth'] == 'Bearer r8'][0]
    assert task['status'] == 'failed' and task['error'] == (
        "provider 'replicate' answered a status URL outside its hosts: %s/v1/predictions/%s"
        % (mock.base, job)), task
    time.sleep(0.5)
    assert evil.requests == [], evil.requests
    assert [r for r in mock.requests if r[0] == 'GET'] == [], mock.requests
    assert "provider 'fal' answered a status URL outside its hosts" in aq.proc.log()


def test_provider_origin_and_timeout_options_are_checked():
    import subprocess
    data = os.path.join(aqtest.tmpdir(), 'data')
    cases = [
        (['--provider-timeout-ms', '50'], '--provider-timeout-ms must be 100 to 600000'),
        (['--provider-origin', 'fal=ftp://127.0.0.1:8'],
         '--provider-origin must be NAME=http(s)://HOST[:PORT]'),
        (['--provider-origin', 'fal=http://127.0.0.1:8/path'],
         '--provider-origin must be NAME=http(s)://HOST[:PORT]'),
        (['--provider-origin', '=http://127.0.0.1:8'],
         '--provider-origin must be NAME=http(s)://HOST[:PORT]'),
    ]
    for args, message in cases:
        for program in ('aq-broker', 'asyncqueue'):
            run = subprocess.run([aqtest.binary(program), '--data', data] + args,
                                 capture_output=True, text=True, timeout=30)
            assert run.returncode == 2 and message in run.stderr, (program, args, run)


def test_polls_carry_only_the_provider_headers_and_never_the_signal_token():
    mock, aq, auth = s_setup()
    # the credential from the vault: polls carry its value, resolved
    r = requests.post(aq.url('/v1/tokens'), json={'name': 'fal', 'value': 'Key k-secret'},
                      headers=auth)
    assert r.status_code == 201, r.text
    token = r.json()['token']['id']
    headers = {'Authorization': token, 'X-Team-Secret': 'not-for-fal'}
    task = s_run(aq, auth, ['completed', 'failed'], provider='fal', headers=headers,
                 targetUrl=mock.base + '/fal/fast-sdxl', body=json.dumps({'outcome': 'ok'}))
    assert task['status'] == 'completed', task
    timeout = s_run(aq, auth, ['timeout'], provider='fal', headers=headers, maxWaitTime=2,
                    targetUrl=mock.base + '/fal/fast-sdxl', body=json.dumps({'outcome': 'never'}))
    never = [j for j in mock.jobs if j.startswith('never')][0]
    wait_until(lambda: never in mock.cancels, 10, 'the cancel_url to be called')
    calls = [s_lower(h) for m, p, h in mock.requests if m == 'POST' and p == '/fal/fast-sdxl']
    follow = [(m, p, s_lower(h)) for m, p, h in mock.requests if '/fal/requests/' in p]
    assert len(calls) == 2, mock.requests
    # the task's own call carries everything it was given, and the signal token
    for call in calls:
        assert call['authorization'] == 'Key k-secret', call
        assert call['x-team-secret'] == 'not-for-fal' and 'asyncqueue-signal-token' in call, call
    # status, result and cancel requests: the auth header alone
    kinds = set()
    for method, path, sent in follow:
        kinds.add('cancel' if method == 'PUT' else 'status' if path.endswith('/status')
                  else 'result')
        assert sent['authorization'] == 'Key k-secret', (method, path, sent)
        for name in ('x-team-secret', 'asyncqueue-signal-token', 'webhook-signature'):
            assert name not in sent, (method, path, sent)
    assert kinds == {'status', 'result', 'cancel'}, follow
    assert timeout['status'] == 'timeout'
    # a pollConfig's polls reuse the task's headers (SPEC 5), never the signal token
    config = {'urlTemplate': mock.base + '/jobs/{{id}}', 'statusPath': 'data.state',
              'doneValues': ['done'], 'failValues': ['broken']}
    task = s_run(aq, auth, ['completed', 'failed'], targetUrl=mock.base + '/jobs',
                 headers={'X-Team-Secret': 'for-my-api'}, body=json.dumps({'outcome': 'ok'}),
                 pollConfig=config)
    assert task['status'] == 'completed', task
    polls = [s_lower(h) for m, p, h in mock.requests if m == 'GET' and p.startswith('/jobs/')]
    assert len(polls) >= 2, mock.requests
    for sent in polls:
        assert sent['x-team-secret'] == 'for-my-api' and 'asyncqueue-signal-token' not in sent


# ---------------------------------------------------------------------------
# Provider hosts: a plugin that crashes or loops costs its own tasks only
# (issue 11, SPEC 14)

def s_plugin_dir(*names):
    """A plugin directory with the built plugins and test plugins named."""
    plugins = os.path.join(aqtest.tmpdir(), 'plugins')
    os.makedirs(plugins, exist_ok=True)
    build = os.path.dirname(os.path.dirname(aqtest.binary('asyncqueue')))
    for name in names:
        built = os.path.join(build, 'plugins', name + '.so')
        if not os.path.exists(built):
            built = os.path.join(build, 'plugins-test', name + '.so')
        shutil.copy(built, plugins)
    return plugins


def s_provider_hosts(data):
    """pids of the provider host processes serving the broker of data."""
    pids = []
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                args = f.read().split(b'\0')
        except OSError:
            continue
        if len(args) > 4 and args[1] == b'--provider-host' and args[4] == data.encode():
            pids.append(int(pid))
    return pids


@aqtest.timeout(150)
def test_provider_crashes_and_hangs_cost_only_their_own_tasks():
    mock = Mock()
    plugins = s_plugin_dir('fal', 'vault-sodium', 'crashy', 'hangy')
    aq = aqtest.start_allinone(extra=['--plugins', plugins, '--poll-interval-ms', '200',
                                      '--provider-timeout-ms', '1000']
                               + s_origins(mock, ('fal', 'crashy', 'hangy')))
    auth = {'Authorization': 'Bearer ' + aq.new_key('crashes')}

    def create(**task):
        r = requests.post(aq.url('/v1/tasks'), json=task, headers=auth, timeout=10)
        assert r.status_code == 201, r.text
        return r.json()['task']['id']

    def example(provider, outcome):
        return create(provider=provider, targetUrl=mock.base + '/example',
                      body=json.dumps({'outcome': outcome}))
    hangs = example('hangy', 'ok')
    crashes = example('crashy', 'crash')
    survivors = [example('crashy', 'ok') for _ in range(4)]  # their hosts crash under them
    fal = [create(provider='fal', targetUrl=mock.base + '/fal/fast-sdxl',
                  body=json.dumps({'outcome': 'ok'})) for _ in range(3)]
    # while hangy's host spins (1 s, three times), the broker serves: GETs
    # answer at once and a plain task created now completes
    wait_until(lambda: any(j.startswith('ok') and mock.jobs[j]['polls'] >= 1 for j in mock.jobs),
               20, 'first status answers')
    plain = create(targetUrl=mock.base + '/plain', method='POST', body='{}')
    slowest, started = 0.0, time.monotonic()
    while time.monotonic() - started < 3.0:
        t = time.monotonic()
        r = requests.get(aq.url('/v1/tasks/' + plain), headers=auth, timeout=10)
        slowest = max(slowest, time.monotonic() - t)
        assert r.status_code == 200, r.text
        time.sleep(0.05)
    assert slowest < 1.0, 'a GET took %.3f s while a provider host hung' % slowest

    ids = [hangs, crashes, plain] + survivors + fal
    tasks = {}

    def all_terminal():
        for task_id in ids:
            tasks[task_id] = requests.get(aq.url('/v1/tasks/' + task_id), headers=auth,
                                          timeout=10).json()['task']
        return all(t['status'] in ('completed', 'failed', 'timeout', 'cancelled')
                   for t in tasks.values())
    wait_until(all_terminal, 90, 'every task to end', interval=0.25)
    assert tasks[plain]['status'] == 'completed', tasks[plain]
    assert tasks[hangs]['status'] == 'failed' and tasks[hangs]['error'] == (
        "provider 'hangy' did not answer within 1000 ms while reading the status answer"), \
        tasks[hangs]
    assert tasks[crashes]['status'] == 'failed' and tasks[crashes]['error'] == (
        "provider 'crashy' crashed while reading the status answer"), tasks[crashes]
    for task_id in survivors + fal:
        assert tasks[task_id]['status'] == 'completed', tasks[task_id]
    log = aq.proc.log()
    assert "provider host for 'crashy'" in log and 'died: signal SEGV' in log, log[-3000:]
    assert "was killed: no answer within 1000 ms while reading the status answer" in log
    aq.proc.check_alive()
    assert requests.get(aq.url('/healthz')).json()['status'] == 'ok'
    # the hosts end with the server
    hosts = s_provider_hosts(aq.data)
    assert len(hosts) == 2, hosts  # fal's and crashy's; hangy's starts again for its next op
    assert aq.proc.stop() == []
    wait_until(lambda: not s_provider_hosts(aq.data), 5, 'provider hosts to exit')


@aqtest.timeout(120)
def test_provider_op_outstanding_at_a_broker_kill9_is_read_again_after_restart():
    mock = Mock()
    plugins = s_plugin_dir('vault-sodium', 'hangy')
    broker = aqtest.start_broker(extra=['--plugins', plugins, '--poll-interval-ms', '200',
                                        '--provider-timeout-ms', '600000']
                                 + s_origins(mock, ('hangy',)))
    aqtest.start_workers(broker, 1, slots=8, allow_private=True)
    key = broker.new_key('provider-restart')
    cli = broker.client(key=key)
    task = cli.create(provider='hangy', targetUrl=mock.base + '/example',
                      body=json.dumps({'outcome': 'ok'}))
    # its first status answer is with hangy, which spins until released
    job = wait_until(lambda: [j for j in mock.jobs if mock.jobs[j]['polls'] >= 1], 20,
                     'the first status request')[0]
    hosts = wait_until(lambda: s_provider_hosts(broker.data), 10, 'the provider host')
    time.sleep(0.5)
    assert cli.get(task['id'])['status'] == 'polling'
    broker.kill9()
    # the host dies with its broker (it was spinning: only the kernel stops it)
    wait_until(lambda: not [p for p in hosts if os.path.exists('/proc/%d' % p)
                            and p in s_provider_hosts(broker.data)], 5, 'the host to die')
    open(os.path.join(broker.data, 'hangy.release'), 'w').close()
    broker.restart()
    cli = broker.client(key=key)
    done = cli.wait_terminal(task['id'], timeout=30)
    assert done['status'] == 'completed', done
    # the stored answer was read again, not asked for again
    assert mock.jobs[job]['polls'] == 2, mock.jobs[job]
