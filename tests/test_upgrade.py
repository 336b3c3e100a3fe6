"""test_upgrade.py - a data directory of layout version 1 opens in this build, nothing lost

tests/fixtures/v1/ holds a data directory written by the release whose
store layout is version 1 (broker/store.h BK_STORE_VERSION), made by
tests/fixtures/make_v1_fixture.py with that release's binaries, and what its
REST API, aqctl and STATS showed just before the broker stopped
(expected.json). The test copies it, starts this tree's aq-broker on it and

- compares every recorded observable, field by field: each task and its
  attempts, the task lists (pages, orders, status filters), tokens,
  scheduled tasks and their lists, runs, keys and teams, the teams' signing
  secrets, STATS task counts, idempotency replays. The only differences
  allowed are the fields tests/fixtures/v1/README.md lists, with a reason
  each (IGNORED below);
- then uses what it found: the keys still authenticate (full, read; the
  revoked one is still refused), the tokens still open (a task whose header
  names one reaches the target with its value), idempotency keys still
  replay, pending tasks run, a waiting task takes its old signal token, a
  run waiting on a concurrency_key starts when the run holding it ends, a
  dedupe_key still skips the event's next run within its window, the
  task that was processing when the broker stopped returns to the queue and
  completes;
- restarts the broker two hours later in its clock: a once schedule's fire
  time passed while it was down, so it fires; a resumed minutely cron runs
  the fire times it missed; the delayed task falls due and runs; the
  pollConfig task and the example provider's task poll their stored plans,
  with the token's value; the store is not upgraded a second time.

The broker runs with its wall clock moved (tests/clockshift.c) to just
after the fixture's broker stopped, so the data is as fresh as a restart:
an idempotency key lives 24 hours and a waiting task maxWaitTime, and the
fixture is older than that.

Today the fixture's layout is this build's, so the store opens as it is and
the broker logs no upgrade. When the layout changes, the new build upgrades
it in place on first start, with a log line: change UPGRADE_LINE.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import threading

import requests

import aqtest
from aqtest import now_ms, parse_iso, wait_until

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'v1')

# The broker log line that says the store was upgraded on this start. None:
# the fixture is this build's layout, and the log must not mention an upgrade.
# When the layout becomes 2: UPGRADE_LINE = 'upgraded layout 1 to 2'
UPGRADE_LINE = 'from layout 1 to 2: '

STATUSES = ('pending', 'delayed', 'processing', 'waiting', 'polling', 'completed', 'failed',
            'timeout', 'cancelled')
SCHEDULE_STATUSES = ('active', 'paused', 'canceled')
SCHEDULE_KINDS = ('cron', 'rrule', 'once', 'event')

# Fields a later build may show differently, with the reason (the same list
# is in tests/fixtures/v1/README.md): (observation name pattern, path
# pattern, reason). A path is the JSON path inside the observation,
# '/'-separated.
IGNORED = [
    (r'^admin STATS$', r'^body/(counters|workers|lmdbBytes|attemptLatencyMs|attemptLatencySumMs)(/|$)',
     'process counters and figures: kept in memory, they start from 0 at every start '
     '(only the task counts by status come from the store)'),
    (r' GET /tasks', r'^body/pagination/hasMore$',
     'added beside has_more by the second release, so one pager reads every list '
     '(has_more itself is compared)'),
]


# ---------------------------------------------------------------------------
# Observing a broker: what the fixture recorded and the test compares

def _list_ids(reply, field, expect_items):
    """A list answer with its items replaced by their ids; expect_items
    collects (id, item) so each can be checked against its GET."""
    body = reply.json
    if reply.status != 200 or not isinstance(body, dict):
        return {'status': reply.status, 'body': body}
    items = body.get(field, [])
    for item in items:
        expect_items.append((item['id'], item))
    short = dict(body)
    short[field] = [item['id'] for item in items]
    return {'status': reply.status, 'body': short}


def _reply(reply):
    return {'status': reply.status, 'body': reply.json}


def _get_all_ids(api, path, field):
    """Every id of a list, newest first, paging 100 at a time."""
    ids, offset = [], 0
    while True:
        sep = '&' if '?' in path else '?'
        reply = api.get('%s%slimit=100&offset=%d' % (path, sep, offset))
        assert reply.status == 200, 'GET %s -> %r' % (path, reply)
        ids += [item['id'] for item in reply.json[field]]
        pagination = reply.json['pagination']
        if not pagination.get('hasMore', pagination.get('has_more')):
            return ids
        offset += 100


def observe(apis, clients, aqctl, teams, task_ids=None, schedule_ids=None):
    """{observation name: value} of everything a data directory shows.

    apis: {team: aqtest.HttpClient with the team's full key, via a gateway};
    clients: {team: aqtest.Client with that key} and 'admin' (admin token);
    aqctl(*args) runs aqctl as admin and returns its parsed JSON output;
    teams: team names. task_ids and schedule_ids ({team: [ids]}) say which
    tasks and scheduled tasks to read one by one (default: those listed).
    List answers are kept as ids, and each listed item must equal its own
    GET in the same observation."""
    out = {}
    listed = []  # (name, id, item) of every list item
    task_ids = dict(task_ids or {})
    schedule_ids = dict(schedule_ids or {})
    for team in teams:
        api = apis[team]
        if team not in task_ids:
            task_ids[team] = _get_all_ids(api, '/v1/tasks', 'tasks')
        if team not in schedule_ids:
            schedule_ids[team] = _get_all_ids(api, '/tasks', 'tasks')
        for tid in task_ids[team]:
            out['%s GET /v1/tasks/%s' % (team, tid)] = _reply(api.get('/v1/tasks/%s' % tid))
            out['%s GET /v1/tasks/%s/attempts' % (team, tid)] = _reply(
                api.get('/v1/tasks/%s/attempts' % tid))
        queries = ['', '?limit=20&offset=40', '?limit=100&sortOrder=asc', '?limit=7&offset=3&sortOrder=asc']
        queries += ['?status=%s&limit=100' % status for status in STATUSES]
        for query in queries:
            name = '%s GET /v1/tasks%s' % (team, query)
            items = []
            out[name] = _list_ids(api.get('/v1/tasks' + query), 'tasks', items)
            listed += [(name, '%s GET /v1/tasks/%s' % (team, i), item) for i, item in items]
        out['%s GET /v1/tokens' % team] = _reply(api.get('/v1/tokens'))
        for sid in schedule_ids[team]:
            out['%s GET /tasks/%s' % (team, sid)] = _reply(api.get('/tasks/%s' % sid))
            out['%s GET /tasks/%s/runs' % (team, sid)] = _reply(
                api.get('/tasks/%s/runs?limit=100' % sid))
        queries = ['?limit=100', '?limit=3&offset=2']
        queries += ['?status=%s&limit=100' % status for status in SCHEDULE_STATUSES]
        queries += ['?schedule_kind=%s&limit=100' % kind for kind in SCHEDULE_KINDS]
        for query in queries:
            name = '%s GET /tasks%s' % (team, query)
            items = []
            out[name] = _list_ids(api.get('/tasks' + query), 'tasks', items)
            listed += [(name, '%s GET /tasks/%s' % (team, i), item) for i, item in items]
        reply = clients[team].call('STATS', {})
        out['%s STATS' % team] = {'status': reply.get('status'), 'body': reply.get('body')}
    reply = clients['admin'].call('STATS', {})
    out['admin STATS'] = {'status': reply.get('status'), 'body': reply.get('body')}
    out['aqctl team list'] = aqctl('team', 'list')
    out['aqctl key list'] = aqctl('key', 'list')
    for team in teams:
        out['aqctl team secret %s' % team] = aqctl('team', 'secret', team)
    for list_name, get_name, item in listed:
        got = out.get(get_name)
        assert got is not None, '%s lists %s, which its own list did not' % (list_name, get_name)
        field = 'task'
        diffs = diff(got['body'][field], item)
        assert not diffs, '%s: an item differs from %s:\n  %s' % (list_name, get_name,
                                                                 '\n  '.join(diffs[:20]))
    return out


# ---------------------------------------------------------------------------
# Comparing

def diff(expected, actual, path=''):
    """['path: expected X, got Y', ...] for every field that differs."""
    out = []
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            sub = '%s/%s' % (path, key) if path else key
            if key not in actual:
                out.append('%s: missing (expected %s)' % (sub, json.dumps(expected[key])[:200]))
            elif key not in expected:
                out.append('%s: unexpected (got %s)' % (sub, json.dumps(actual[key])[:200]))
            else:
                out += diff(expected[key], actual[key], sub)
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            out.append('%s: %d items, expected %d' % (path or '.', len(actual), len(expected)))
        for i, (e, a) in enumerate(zip(expected, actual)):
            out += diff(e, a, '%s/%d' % (path, i) if path else str(i))
    elif expected != actual or type(expected) is not type(actual):
        out.append('%s: expected %s, got %s' % (path or '.', json.dumps(expected)[:200],
                                                json.dumps(actual)[:200]))
    return out


def ignored(name, path):
    for name_re, path_re, _reason in IGNORED:
        if re.search(name_re, name) and re.search(path_re, path):
            return True
    return False


def replay_idempotency(apis, keys):
    """{name: answer} of a POST /v1/tasks repeating each recorded
    Idempotency-Key with another body: 200 and the first task, unchanged."""
    out = {}
    for entry in keys:
        reply = apis[entry['team']].post('/v1/tasks', {'targetUrl': 'http://127.0.0.1:9/other'},
                                         headers={'Idempotency-Key': entry['key']})
        out['%s POST /v1/tasks Idempotency-Key: %s' % (entry['team'], entry['key'])] = _reply(reply)
    return out


def compare(expected, actual):
    """Every difference between two observations that IGNORED does not allow."""
    out = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            out.append('%s: not observed' % name)
            continue
        if name not in expected:
            out.append('%s: observed, not in the fixture' % name)
            continue
        for line in diff(expected[name], actual[name]):
            if not ignored(name, line.split(':', 1)[0]):
                out.append('%s: %s' % (name, line))
    return out


# ---------------------------------------------------------------------------
# The test's processes

def _unpack(dest):
    """The fixture's data directory at dest, with the modes the broker and
    the vault demand (git keeps none)."""
    os.makedirs(dest, mode=0o700)
    with tarfile.open(os.path.join(FIXTURE, 'data.tar.gz')) as tar:
        for member in tar.getmembers():
            assert member.isfile() and '/' not in member.name, member.name
            with tar.extractfile(member) as src, open(os.path.join(dest, member.name), 'wb') as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(os.path.join(dest, member.name), 0o600)


def _clock_env(program, at_ms):
    """Environment that starts program with its wall clock at at_ms
    (tests/clockshift.c; the sanitizer runtime preloaded first if linked)."""
    shim = os.path.join(aqtest.BUILD, 'lib', 'aq-clockshift.so')
    assert os.path.exists(shim), '%s is not built' % shim
    preload = [shim]
    ldd = subprocess.run(['ldd', program], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in ldd.stdout.decode().splitlines():
        if 'libasan' in line and '=>' in line:
            preload.insert(0, line.split('=>')[1].split()[0])
    # now_ms() is this process's clock: when the whole test runs under the
    # shim (to try it as if run days later, see the fixture's README), the
    # broker's own clock lacks that shift.
    shift = at_ms - now_ms() + int(os.environ.get('AQ_CLOCK_SHIFT_MS', '0'))
    return {'LD_PRELOAD': ' '.join(preload), 'AQ_CLOCK_SHIFT_MS': str(int(shift))}


def _restart_at(broker, at_ms):
    """Stops the broker cleanly and starts it again with its clock at at_ms."""
    problems = broker.proc.stop(grace=30)
    assert not problems, problems
    broker.proc.env = _clock_env(aqtest.binary('aq-broker'), at_ms)
    with open(broker.proc.log_path, 'ab') as log:
        log.write(b'=== restart\n')
    broker.proc.start()
    broker.wait_ready()


def _port_free(port):
    with socket.socket() as s:
        try:  # a listener of a run just before leaves TIME_WAIT, not a taker
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('127.0.0.1', port))
            return True
        except OSError:
            return False


def _aqctl(broker):
    def run(*args):
        argv = [aqtest.binary('aqctl'), '--broker', broker.client_ep, '--admin-token-file',
                os.path.join(broker.data, 'admin.token'), '--json'] + [str(a) for a in args]
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert done.returncode == 0, 'aqctl %s: %s' % (' '.join(argv[6:]), done.stderr.decode())
        return json.loads(done.stdout.decode())
    return run


def _upgrade_lines(broker):
    """The broker's log lines about an upgrade (quoted names, such as this
    test's directory, left out of the search)."""
    return [line for line in broker.proc.log().split('\n') if not line.startswith('===') and
            re.search('upgrad', re.sub(r"'[^']*'", "''", line), re.I)]


def _signed(secret, request):
    """True when the request carries a Standard Webhooks signature made with
    the whsec_ secret."""
    headers = request['headers']
    key = base64.b64decode(secret[len('whsec_'):])
    msg = '%s.%s.%s' % (headers['webhook-id'], headers['webhook-timestamp'], request['body'] or '')
    want = base64.b64encode(hmac.new(key, msg.encode(), hashlib.sha256).digest()).decode()
    return ('v1,' + want) in headers['webhook-signature'].split()


class ExampleApi:
    """The job API of the `example` provider plugin on a fixed port: a
    submission (POST /example) gets job `job-1` at `/example/job-1`, whose
    status is `state`. Records the requests: (method, path, headers)."""

    def __init__(self, port, state):
        api = self
        self.state = state
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code, body):
                api.requests.append((self.command, self.path, dict(self.headers)))
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                self.rfile.read(int(self.headers.get('Content-Length') or 0))
                self.answer(202, {'id': 'job-1', 'statusUrl': '/example/job-1'})

            def do_GET(self):
                self.answer(200, {'status': api.state})

            def do_DELETE(self):
                self.answer(200, {})

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Target:
    """aq-target on a fixed port (the one the fixture's task URLs name)."""

    def __init__(self, name, port):
        self.port = port
        self.proc = aqtest.Proc(name, [aqtest.binary('aq-target'), '--port', port])
        wait_until(lambda: 'listening' in self.proc.log() or self.proc.check_alive(), 10,
                   '%s to listen' % name)
        self.http = requests.Session()

    def requests(self, prefix):
        return self.http.get('http://127.0.0.1:%d/_requests' % self.port,
                             params={'path': prefix}, timeout=30).json()

    def wait(self, prefix, count=1, timeout=20):
        return wait_until(lambda: (lambda got: got if len(got) >= count else None)(
            self.requests(prefix)), timeout, '%d calls to %s' % (count, prefix))


@aqtest.timeout(300)
def test_v1_data_directory_upgrades_in_place():
    with open(os.path.join(FIXTURE, 'fixture.json')) as f:
        fixture = json.load(f)
    with open(os.path.join(FIXTURE, 'expected.json')) as f:
        expected = json.load(f)
    teams = fixture['teams']
    keys, tokens, roles = fixture['keys'], fixture['tokens'], fixture['tasks']
    for port in (fixture['targetPort'], fixture['hangPort'], fixture['examplePort']):
        assert _port_free(port), ('port %d is in use: the fixture\'s task URLs name it, so the '
                                  'test needs it free' % port)
    target = _Target('target', fixture['targetPort'])
    hang = _Target('target-hang', fixture['hangPort'])
    example = ExampleApi(fixture['examplePort'], 'done')
    data = os.path.join(aqtest.tmpdir(), 'data')
    _unpack(data)

    # First start, as if seconds after the fixture's broker stopped.
    stopped = parse_iso(fixture['times']['stoppedAt'])
    started = now_ms()
    # the example provider's job API is a local mock: let its plan poll it
    # (a provider polls only https on its declared hosts otherwise)
    origin = ('--provider-origin', 'example=http://127.0.0.1:%d' % fixture['examplePort'])
    broker = aqtest.start_broker(data=data, extra=origin,
                                 env=_clock_env(aqtest.binary('aq-broker'), stopped + 5000))
    gateway = aqtest.start_gateway(broker)
    aqctl = _aqctl(broker)

    def api(team, key=None):
        return aqtest.HttpClient(gateway.port, key or keys[team + '-full']['secret'])
    apis = {team: api(team) for team in teams}
    clients = {team: broker.client(key=keys[team + '-full']['secret']) for team in teams}
    clients['admin'] = broker.admin()

    # Everything reads back as recorded.
    task_ids, schedule_ids = {}, {}
    for name in expected:
        team, _, rest = name.partition(' ')
        match = re.match(r'^GET /v1/tasks/([0-9a-f-]{36})$', rest)
        if match:
            task_ids.setdefault(team, []).append(match.group(1))
        match = re.match(r'^GET /tasks/([0-9a-f-]{36})$', rest)
        if match:
            schedule_ids.setdefault(team, []).append(match.group(1))
    actual = observe(apis, clients, aqctl, teams, task_ids, schedule_ids)
    actual.update(replay_idempotency(apis, fixture['idempotency']))
    differences = compare(expected, actual)
    assert not differences, '%d differences from the fixture:\n  %s' % (
        len(differences), '\n  '.join(differences[:60]))
    assert actual['alpha GET /v1/tasks/%s' % roles['a_processing']]['body']['task']['status'] \
        == 'processing'
    for team in teams:  # the replays created nothing
        reply = clients[team].call('STATS', {})
        assert reply['body'] == expected['%s STATS' % team]['body'], (team, reply)

    # The store was opened as it is: no upgrade today (see UPGRADE_LINE).
    lines = _upgrade_lines(broker)
    if UPGRADE_LINE is None:
        assert not lines, 'the broker logged an upgrade of a store of its own layout: %s' % lines
    else:
        assert len(lines) == 1 and UPGRADE_LINE in lines[0], lines

    # Keys still authenticate, with their scopes; revoked ones stay refused.
    for name, key in sorted(keys.items()):
        client = api(key['team'], key['secret'])
        reply = client.get('/v1/tasks?limit=1')
        if key['revoked']:
            assert (reply.status, reply.error) == (401, 'Invalid or revoked API key'), (name, reply)
            continue
        assert reply.status == 200, (name, reply)
        reply = client.post('/v1/tasks', {'targetUrl': target_url(fixture, '/ok/new-%s' % name)})
        if key['scope'] == 'read':
            assert (reply.status, reply.error) == (403, 'Access denied'), (name, reply)
            continue
        assert reply.status == 201, (name, reply)
        # the broker's clock is the fixture's, moved on as much as ours
        created = parse_iso(reply.json['task']['createdAt'])
        assert abs(created - (stopped + 5000 + now_ms() - started)) < 30000, \
            'the broker\'s clock is not moved: %s' % reply.json['task']['createdAt']
    # A deleted token stays unknown; the others open (below).
    gone = tokens['alpha-gone']
    reply = apis['alpha'].post('/v1/tasks', {'targetUrl': target_url(fixture, '/ok/x'),
                                             'headers': {'A': gone['id']}})
    assert (reply.status, reply.error) == (400, 'Unknown token: %s' % gone['id']), reply

    # Workers: what was pending runs, with the tokens' values and the team's
    # signing secret.
    aqtest.start_workers(broker, 2, slots=8)
    secrets = {team: expected['aqctl team secret %s' % team]['signingSecret'] for team in teams}
    done = clients['alpha'].wait_all_terminal(
        [roles[r] for r in ('a_pending_hi', 'a_pending_lo', 'a_pending_idem')], timeout=30)
    assert all(t['status'] == 'completed' for t in done.values()), done
    call = target.wait('/ok/a-pending-hi')[0]
    assert call['method'] == 'PUT' and call['body'] == 'hi', call
    assert call['headers']['authorization'] == tokens['alpha-api']['value'], call['headers']
    assert _signed(secrets['alpha'], call), call['headers']
    call = target.wait('/ok/a-pending-idem')[0]
    assert call['headers']['x-other'] == tokens['alpha-other']['value'], call['headers']
    for team, role, path in (('beta', 'b_pending', '/ok/b-pending'),
                             ('gamma', 'g_pending', '/ok/g-pending')):
        assert clients[team].wait_terminal(roles[role], timeout=20)['status'] == 'completed'
        call = target.wait(path)[0]
        assert _signed(secrets[team], call), (team, call['headers'])
    assert target.wait('/ok/b-pending')[0]['headers']['authorization'] == \
        tokens['beta-api']['value']
    # onCompleteUrl deliveries that were pending, and of the tasks just run
    for role in ('a_notify_pending', 'a_pending_hi'):
        wait_until(lambda: clients['alpha'].get(roles[role]).get('onComplete', {}).get('status')
                   == 'delivered', 20, '%s onComplete delivered' % role)
    note = target.wait('/ok/notify-a-pending')[0]
    assert json.loads(note['body'])['task']['result'] == [1, 2, 3], note
    assert note['headers']['webhook-id'] == roles['a_notify_pending'] + '.complete'
    # a failed task replayed: its token opens now that the target listens
    reply = apis['alpha'].post('/v1/tasks/%s/retry' % roles['a_refused'])
    assert reply.status == 200, reply
    assert clients['alpha'].wait_terminal(roles['a_refused'], timeout=20)['status'] == 'completed'
    call = target.wait('/ok/a-refused')[0]
    assert call['headers']['authorization'] == tokens['alpha-api']['value'], call['headers']
    assert call['headers']['x-plain'] == 'plain value' and call['body'] == '{"refused": true}'
    attempts = apis['alpha'].get('/v1/tasks/%s/attempts' % roles['a_refused']).json['attempts']
    assert [a.get('error') for a in attempts] == ['fetch failed: ECONNREFUSED'] * 2 + [None], attempts
    # a new task naming an old token
    reply = apis['beta'].post('/v1/tasks', {'targetUrl': target_url(fixture, '/ok/b-new-token'),
                                            'headers': {'X-Key': tokens['beta-api']['id']}})
    assert reply.status == 201, reply
    call = target.wait('/ok/b-new-token')[0]
    assert call['headers']['x-key'] == tokens['beta-api']['value'], call['headers']
    # a scheduled run that was under way finishes its two steps
    sid = fixture['schedules']['s_beta_cron']
    wait_until(lambda: apis['beta'].get('/tasks/%s/runs' % sid).json['runs'][0]['status']
               == 'completed', 20, 'the beta run to complete')
    assert target.wait('/ok/s-beta-1')[0]['headers']['authorization'] == \
        tokens['beta-api']['value']

    # A waiting task takes its old signal token; another is cancelled.
    reply = apis['alpha'].post('/v1/tasks/%s/signal' % roles['a_waiting'],
                               {'status': 'completed', 'result': {'late': True}},
                               key=fixture['signalTokens']['a_waiting'])
    assert reply.status == 200 and reply.json['task']['status'] == 'completed', reply
    reply = apis['alpha'].post('/v1/tasks/%s/cancel' % roles['a_waiting_2'])
    assert reply.status == 200 and reply.json['task']['status'] == 'cancelled', reply
    # The run holding a concurrency key ends; the one waiting for it runs.
    reply = apis['alpha'].post('/v1/tasks/%s/signal' % roles['s_cc_holder_step'],
                               {'status': 'completed'})
    assert reply.status == 200, reply
    for role in ('s_cc_holder', 's_cc_waiter'):
        sid = fixture['schedules'][role]
        wait_until(lambda: apis['alpha'].get('/tasks/%s/runs' % sid).json['runs'][0]['status']
                   == 'completed', 20, '%s run to complete' % role)
    target.wait('/ok/s-serial')
    # A dedupe key's last start (8 raw bytes in layout 1) still holds the
    # event's next run off within its day-long window.
    reply = apis['alpha'].post('/events', {'name': 'invoice.paid', 'data': {'invoice': 'INV-3'}})
    assert reply.status == 200 and [(r['status'], r['error']) for r in reply.json['runs']] == \
        [('skipped', 'deduplicated')], reply

    # The task that was processing when the broker stopped: its attempt
    # timeout (20 s) and the grace pass, it returns to the queue and runs.
    task = clients['alpha'].wait_terminal(roles['a_processing'], timeout=60)
    assert task['status'] == 'completed', task
    attempts = apis['alpha'].get('/v1/tasks/%s/attempts' % roles['a_processing']).json['attempts']
    assert len(attempts) == 2 and attempts[0].get('error') == 'worker lost' and \
        attempts[1].get('statusCode') == 200, attempts
    assert len(hang.requests('/hang/a-processing')) == 1

    # Second start, two hours after the fixture in the broker's clock: the
    # once schedule's time passed while it was down, the delayed task is
    # due, the polling task polls; the store is not upgraded again.
    once = fixture['times']['onceActive']
    _restart_at(broker, parse_iso(once) + 5000)
    clients = {team: broker.client(key=keys[team + '-full']['secret']) for team in teams}
    apis = {team: api(team) for team in teams}
    lines = _upgrade_lines(broker)
    assert len(lines) == (0 if UPGRADE_LINE is None else 1), lines
    sid = fixture['schedules']['s_once_active']
    runs = wait_until(lambda: (lambda r: r if r and r[0]['status'] == 'completed' else None)(
        apis['alpha'].get('/tasks/%s/runs' % sid).json['runs']), 30, 'the once run')
    assert len(runs) == 1 and runs[0]['trigger'] == 'schedule' and \
        runs[0]['scheduled_at'] == once, runs
    call = target.wait('/ok/s-once')[0]
    assert call['headers']['authorization'] == tokens['alpha-api']['value']
    task = clients['alpha'].wait_terminal(roles['a_delayed_soon'], timeout=20)
    assert task['status'] == 'completed', task
    call = target.wait('/ok/a-delayed-soon')[0]
    assert call['headers']['authorization'] == tokens['alpha-other']['value']
    assert call['body'] == 'soon'
    call = target.wait('/ok/a-poll-status')[0]
    assert call['query'] == 'ok=true' or 'ok=true' in json.dumps(call), call
    assert call['headers']['authorization'] == tokens['alpha-api']['value']
    assert clients['alpha'].get(roles['a_polling'])['status'] == 'polling'
    # the provider task's plan (the example plugin's status URL) polls too
    task = clients['alpha'].wait_terminal(roles['a_provider'], timeout=20)
    assert task['status'] == 'completed', task
    polls = [r for r in example.requests if r[0] == 'GET']
    assert polls and polls[0][1] == '/example/job-1', example.requests
    assert polls[0][2].get('Authorization') == tokens['alpha-api']['value'], polls
    example.close()
    # a paused minutely cron, resumed, runs the fire times it missed once
    sid = fixture['schedules']['s_paused_minutely']
    before = len(expected['alpha GET /tasks/%s/runs' % sid]['body']['runs'])
    reply = apis['alpha'].post('/tasks/%s/resume' % sid)
    assert reply.status == 200 and reply.json['task']['status'] == 'active', reply
    runs = wait_until(lambda: (lambda r: r if len(r) > before and r[0]['status'] == 'completed'
                               else None)(apis['alpha'].get('/tasks/%s/runs' % sid).json['runs']),
                      30, 'the resumed cron to run')
    assert len(runs) == before + 1 and runs[0]['trigger'] == 'schedule', runs
    # and what was at rest is still there
    for role in ('a_completed', 'a_failed', 'a_delayed_far'):
        name = 'alpha GET /v1/tasks/%s' % roles[role]
        assert apis['alpha'].get('/v1/tasks/%s' % roles[role]).json == expected[name]['body']


def target_url(fixture, path):
    return 'http://127.0.0.1:%d%s' % (fixture['targetPort'], path)
