"""test_flow.py - flow control per key (issue 13, SPEC 11), with real processes

aq-broker, two aq-worker (8 slots each, so a key's limit, not the workers,
is what holds calls back), aq-gateway for /v1/flow-control and aq-target as
the destination: /concurrent/<ms>/<name> counts the calls of a name in
progress at once (GET /_concurrency), /throttle/<n>/<s>/<name> answers 429
with Retry-After, every request's arrival time is recorded. Tasks are
created and awaited over the protocol (fast); keys are read and changed
over HTTP, as users do.
"""

import json
import os
import subprocess
import time

import aqtest
from aqtest import parse_iso, wait_until

KEY_CHARS = 'flowControl.key must be 1-100 characters of A-Z a-z 0-9 . _ : -'


class s_Flow:
    """target, broker, 2 workers, gateway; .cli (protocol) and .api (HTTP)
    with one team's key."""

    def __init__(self, slots=8, **broker_args):
        self.target = aqtest.start_target()
        self.broker = aqtest.start_broker(**broker_args)
        aqtest.start_workers(self.broker, 2, slots=slots)
        self.gateway = aqtest.start_gateway(self.broker)
        self.key = self.broker.new_key('flow-team')
        self.cli = self.broker.client(key=self.key)
        self.api = aqtest.HttpClient(self.gateway.port, key=self.key)

    def tasks(self, count, path, flow=None, **fields):
        """count tasks to the target's path (with flowControl flow); their ids."""
        task = dict(targetUrl=self.target.url(path), **fields)
        if flow:
            task['flowControl'] = flow
        return [t['id'] for t in self.cli.create_many([task] * count)]

    def key_state(self, name, api=None):
        reply = (api or self.api).get('/v1/flow-control/%s' % name)
        assert reply.status == 200, 'GET /v1/flow-control/%s -> %r' % (name, reply)
        return reply.json['flowControl']


def s_windows_over(arrivals, rate, window_ms):
    """The arrival times (ms) that open a window of window_ms holding more
    than rate arrivals."""
    times = sorted(arrivals)
    return [(t, sum(1 for u in times[i:] if u < t + window_ms))
            for i, t in enumerate(times) if sum(1 for u in times[i:] if u < t + window_ms) > rate]


# ---------------------------------------------------------------------------

def test_parallelism_never_exceeded():
    """30 calls that take 300 ms each, parallelism 3, 16 worker slots: the
    target never sees more than 3 at once, and does see 3; the key shows
    its in-flight and waiting tasks meanwhile."""
    f = s_Flow()
    flow = {'key': 'par.3', 'parallelism': 3}
    ids = f.tasks(30, '/concurrent/300/par3', flow)
    seen = wait_until(lambda: (lambda k: k if k['inFlight'] == 3 and k['waiting'] > 10 else None)(
        f.key_state('par.3')), 10, 'the key to be full with tasks waiting')
    assert seen['parallelism'] == 3 and 'rate' not in seen and seen['paused'] is False, seen
    pending = [t for t in f.cli.get_many(ids).values() if t['status'] == 'pending']
    assert len(pending) >= 10, 'tasks held back by their key show pending'
    done = f.cli.wait_all_terminal(ids, timeout=40)
    assert all(t['status'] == 'completed' for t in done.values())
    gauge = f.target.concurrency('par3')
    assert gauge['count'] == 30 and gauge['max'] == 3, gauge
    final = f.key_state('par.3')
    assert final['inFlight'] == 0 and final['waiting'] == 0, final
    assert all(t['flowControl'] == {'key': 'par.3', 'period': 1, 'parallelism': 3}
               for t in done.values())


def test_rate_no_window_over():
    """rate 4 per second: no 1-second window of the target's arrival times
    holds more than 4 of the key's 16 calls, which therefore take over 3 s."""
    f = s_Flow()
    started = time.time() * 1000
    ids = f.tasks(16, '/ok/rate4', {'key': 'rate-4', 'rate': 4, 'period': 1})
    f.cli.wait_all_terminal(ids, timeout=30)
    arrivals = [r['at'] for r in f.target.requests('/ok/rate4')]
    assert len(arrivals) == 16
    assert not s_windows_over(arrivals, 4, 1000), sorted(a - started for a in arrivals)
    assert max(arrivals) - min(arrivals) >= 3000, 'four windows of four calls take over 3 s'
    state = f.key_state('rate-4')
    assert state['rate'] == 4 and state['effectiveRate'] == 4 and state['period'] == 1, state


@aqtest.timeout(90)
def test_429_holds_the_key_halves_its_rate_and_it_climbs_back():
    """A 429 with Retry-After: 3 holds the whole key (heldUntil in GET) and
    halves its effectiveRate (10 -> 5); the task is retried as a 5xx is; the
    key's other tasks wait for the hold; then the rate climbs back by 1 (a
    tenth of 10) each second without a 429. A key-less task's 429 still
    completes it, as before."""
    f = s_Flow(backoff_base_ms=200)
    flow = {'key': 'llm', 'rate': 10, 'period': 1}
    first = f.tasks(1, '/throttle/1/3/llm', flow)[0]
    f.target.wait_requests('/throttle/1/3/llm', 1)
    answered = time.time() * 1000
    state = wait_until(lambda: (lambda k: k if 'heldUntil' in k else None)(f.key_state('llm')),
                       5, 'the key to be held')
    held = parse_iso(state['heldUntil'])
    assert answered + 2000 < held < answered + 4000, (state, answered)
    assert state['effectiveRate'] == 5, state
    others = f.tasks(3, '/ok/after-hold', flow)
    time.sleep(1.0)
    assert f.target.requests('/ok/after-hold') == [], 'the key is held: no call starts'
    assert all(t['status'] == 'pending' for t in f.cli.get_many(others).values())
    done = f.cli.wait_all_terminal([first] + others, timeout=30)
    assert all(t['status'] == 'completed' for t in done.values()), done
    assert done[first]['retryCount'] == 1, 'the 429 was retried'
    calls = f.target.requests('/ok/after-hold')
    assert min(c['at'] for c in calls) >= held - 20, (calls, held)
    # climbing: 5 at the hold's end, +1 per period without a 429, up to 10
    rates = []
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline and (not rates or rates[-1] < 10):
        rates.append(f.key_state('llm')['effectiveRate'])
        time.sleep(0.25)
    assert rates[-1] == 10, rates
    climbed = sorted(set(rates))
    assert len([r for r in climbed if 5 < r < 10]) >= 3, 'climbs in steps: %s' % rates
    assert 'heldUntil' not in f.key_state('llm')
    plain = f.tasks(1, '/status/429')[0]
    assert f.cli.wait_terminal(plain)['status'] == 'completed'


def test_503_with_retry_after_holds_the_key():
    """503 with Retry-After holds a key too (a key without rate only holds);
    503 without it does not."""
    f = s_Flow()
    f.tasks(1, '/retry-after/2', {'key': 'busy', 'parallelism': 5}, maxRetries=0)
    state = wait_until(lambda: (lambda k: k if 'heldUntil' in k else None)(f.key_state('busy')),
                       10, 'the key to be held')
    assert 'effectiveRate' not in state, state
    f.tasks(1, '/status/503', {'key': 'plain-503', 'parallelism': 5}, maxRetries=0)
    f.target.wait_requests('/status/503', 1)
    time.sleep(0.3)
    assert 'heldUntil' not in f.key_state('plain-503')


def test_pause_and_resume():
    """A paused key starts no call: its tasks stay pending and are counted
    as waiting; a cancelled one leaves; resume runs the rest. A read key
    may look but not pause."""
    f = s_Flow()
    reply = f.api.put('/v1/flow-control/batch', {'parallelism': 2})
    assert reply.status == 200 and reply.json['flowControl']['parallelism'] == 2, reply
    reply = f.api.post('/v1/flow-control/batch/pause')
    assert reply.status == 200 and reply.json['flowControl']['paused'] is True, reply
    read = aqtest.HttpClient(f.gateway.port, key=f.broker.new_key('flow-team', scope='read'))
    assert read.post('/v1/flow-control/batch/resume').status == 403
    assert read.put('/v1/flow-control/batch', {'rate': 1}).status == 403
    assert f.key_state('batch', api=read)['paused'] is True
    ids = f.tasks(5, '/ok/paused', {'key': 'batch', 'parallelism': 2})
    time.sleep(1.0)
    assert f.target.requests('/ok/paused') == []
    assert all(t['status'] == 'pending' for t in f.cli.get_many(ids).values())
    state = f.key_state('batch')
    assert state['paused'] and state['waiting'] == 5 and state['inFlight'] == 0, state
    cancelled = f.cli.call('TASK_CANCEL', {'id': ids[0]})
    assert cancelled['status'] == 200 and cancelled['body']['task']['status'] == 'cancelled'
    assert f.key_state('batch')['waiting'] == 4
    reply = f.api.post('/v1/flow-control/batch/resume')
    assert reply.status == 200 and reply.json['flowControl']['paused'] is False
    done = f.cli.wait_all_terminal(ids[1:], timeout=20)
    assert all(t['status'] == 'completed' for t in done.values())
    assert len(f.target.requests('/ok/paused')) == 4
    assert f.api.post('/v1/flow-control/nothing/pause').json == {
        'error': 'Flow control key not found'}


def test_keys_belong_to_their_team():
    """Two teams with a key of the same name: each has its own limits and
    counts (parallelism 1 and 3 at the target at once), and a third team
    does not see it."""
    f = s_Flow()
    other_key = f.broker.new_key('flow-other')
    other_cli = f.broker.client(key=other_key)
    other_api = aqtest.HttpClient(f.gateway.port, key=other_key)
    task_a = {'targetUrl': f.target.url('/concurrent/300/team-a'),
              'flowControl': {'key': 'shared', 'parallelism': 1}}
    task_b = {'targetUrl': f.target.url('/concurrent/300/team-b'),
              'flowControl': {'key': 'shared', 'parallelism': 3}}
    ids_a = [t['id'] for t in f.cli.create_many([task_a] * 6)]
    ids_b = [t['id'] for t in other_cli.create_many([task_b] * 9)]
    assert f.key_state('shared')['parallelism'] == 1
    assert f.key_state('shared', api=other_api)['parallelism'] == 3
    f.cli.wait_all_terminal(ids_a, timeout=30)
    other_cli.wait_all_terminal(ids_b, timeout=30)
    assert f.target.concurrency('team-a')['max'] == 1
    assert f.target.concurrency('team-b')['max'] == 3
    third = aqtest.HttpClient(f.gateway.port, key=f.broker.new_key('flow-third'))
    reply = third.get('/v1/flow-control/shared')
    assert reply.status == 404 and reply.json == {'error': 'Flow control key not found'}
    assert third.get('/v1/flow-control').json['keys'] == []
    listed = f.api.get('/v1/flow-control').json
    assert [k['key'] for k in listed['keys']] == ['shared'] and listed['pagination']['total'] == 1


@aqtest.timeout(90)
def test_restart_keeps_limits_pause_and_the_backed_off_rate():
    """After kill -9 the key has its limits, its pause, its halved
    effective rate and its waiting tasks, which run once it is resumed."""
    f = s_Flow()
    assert f.api.put('/v1/flow-control/durable', {'rate': 6, 'period': 60,
                                                   'parallelism': 2}).status == 200
    first = f.tasks(1, '/throttle/1/1/durable', maxRetries=0,
                    flow={'key': 'durable', 'rate': 6, 'period': 60, 'parallelism': 2})[0]
    assert f.cli.wait_terminal(first)['status'] == 'failed'
    assert f.key_state('durable')['effectiveRate'] == 3
    assert f.api.post('/v1/flow-control/durable/pause').status == 200
    ids = f.tasks(3, '/ok/durable', {'key': 'durable', 'rate': 6, 'period': 60,
                                     'parallelism': 2})
    f.broker.kill9()
    f.broker.restart()
    f.cli.close()
    f.cli = f.broker.client(key=f.key)
    state = wait_until(lambda: (lambda r: r.json['flowControl'] if r.status == 200 else None)(
        f.api.get('/v1/flow-control/durable')), 15, 'the gateway to reach the broker again')
    assert state['paused'] and state['waiting'] == 3 and state['effectiveRate'] == 3, state
    assert (state['rate'], state['period'], state['parallelism']) == (6, 60, 2), state
    assert all(t['status'] == 'pending' for t in f.cli.get_many(ids).values())
    assert f.api.post('/v1/flow-control/durable/resume').status == 200
    done = f.cli.wait_all_terminal(ids, timeout=20)
    assert all(t['status'] == 'completed' for t in done.values())


@aqtest.timeout(90)
def test_a_saturated_key_delays_no_other_task():
    """One key (parallelism 1) with 300 tasks of 4 s calls waiting: tasks
    without a key and tasks of another key complete at once, and the busy
    key holds one worker slot, not sixteen."""
    f = s_Flow()
    slow = f.tasks(300, '/concurrent/4000/hol', {'key': 'slow', 'parallelism': 1},
                   timeout=30)
    wait_until(lambda: f.key_state('slow')['inFlight'] == 1, 10, 'the slow key to start one')
    started = time.monotonic()
    free = f.tasks(40, '/ok/keyless')
    fast = f.tasks(40, '/ok/other-key', {'key': 'fast', 'parallelism': 8})
    done = f.cli.wait_all_terminal(free + fast, timeout=20)
    took = time.monotonic() - started
    assert all(t['status'] == 'completed' for t in done.values())
    assert took < 3.5, 'the other tasks took %.1f s behind the busy key' % took
    state = f.key_state('slow')
    assert state['inFlight'] == 1 and state['waiting'] >= 290, state
    assert f.target.concurrency('hol')['max'] == 1
    statuses = {t['status'] for t in f.cli.get_many(slow).values()}
    assert statuses <= {'pending', 'processing', 'completed'}, statuses


def test_a_waiting_task_holds_its_slot_until_signalled():
    """parallelism counts tasks in waiting (a job's slot is held until it
    ends): the second task starts only once the first is signalled."""
    f = s_Flow()
    flow = {'key': 'job', 'parallelism': 1}
    first = f.tasks(1, '/wait/job-1', flow, maxWaitTime=60)[0]
    f.cli.wait_status(first, {'waiting'})
    second = f.tasks(1, '/ok/job-2', flow)[0]
    time.sleep(0.8)
    assert f.cli.get(second)['status'] == 'pending'
    assert f.key_state('job')['inFlight'] == 1
    reply = f.cli.call('TASK_SIGNAL', {'id': first, 'signal': {'status': 'completed'}})
    assert reply['status'] == 200, reply
    assert f.cli.wait_terminal(second)['status'] == 'completed'


def test_flow_control_is_validated_in_tasks_and_step_templates():
    """Every flowControl message, on POST /v1/tasks and on a step template
    of POST /tasks (checked when the schedule is created); a step's task
    carries its flowControl and makes its key."""
    f = s_Flow()
    cases = [
        (5, 'flowControl must be an object'),
        ({'rate': 1}, 'flowControl.key is required'),
        ({'key': 'a/b', 'rate': 1}, KEY_CHARS),
        ({'key': 'k' * 101, 'rate': 1}, KEY_CHARS),
        ({'key': 'k'}, 'flowControl.rate or flowControl.parallelism is required'),
        ({'key': 'k', 'rate': 100001}, 'flowControl.rate must be a number between 1 and 100000'),
        ({'key': 'k', 'rate': 1, 'period': 0},
         'flowControl.period must be a number between 1 and 86400'),
        ({'key': 'k', 'parallelism': 0},
         'flowControl.parallelism must be a number between 1 and 10000'),
        ({'key': 'k', 'rate': 1, 'burst': 2}, 'Unknown field: flowControl.burst'),
    ]
    for flow, message in cases:
        reply = f.api.post('/v1/tasks', {'targetUrl': f.target.url('/ok/x'), 'flowControl': flow})
        assert reply.status == 400 and reply.json == {'error': message}, (flow, reply)
    for body, message in [({}, 'rate or parallelism is required'),
                          ({'rate': 'x'}, 'rate must be a number between 1 and 100000'),
                          ({'parallelism': 1, 'key': 'k'}, 'Unknown field: key')]:
        reply = f.api.put('/v1/flow-control/k', body)
        assert reply.status == 400 and reply.json == {'error': message}, (body, reply)
    reply = f.api.put('/v1/flow-control/a:b.c_d-e', {'rate': 1})
    assert reply.status == 200 and reply.json['flowControl']['key'] == 'a:b.c_d-e', reply
    schedule = {'title': 'flow', 'description': 'a step with a key', 'schedule_kind': 'event',
                'schedule_expr': 'flow.go', 'created_by': '7d3f2c1e-5b4a-4c9d-8e2f-1a6b3c4d5e6f',
                'payload': {'steps': [{'targetUrl': f.target.url('/ok/step'),
                                       'flowControl': {'key': 'step key', 'rate': 1}}]}}
    reply = f.api.post('/tasks', schedule)
    assert reply.status == 400 and reply.json == {'error': 'payload.steps[0]: ' + KEY_CHARS}, reply
    assert f.api.get('/v1/flow-control/step-key').status == 404
    schedule['payload']['steps'][0]['flowControl'] = {'key': 'step-key', 'parallelism': 2}
    made = f.api.post('/tasks', schedule)
    assert made.status == 201, made
    assert f.api.get('/v1/flow-control/step-key').status == 404, 'made when a step task is'
    run = f.api.post('/tasks/%s/run_now' % made.json['task']['id'])
    assert run.status == 201, run
    f.target.wait_requests('/ok/step', 1)
    assert f.key_state('step-key')['parallelism'] == 2


def s_aqctl(f, key, *args):
    """(exit code, stdout, stderr) of `aqctl --broker EP --key KEY --json ARGS`."""
    argv = [aqtest.binary('aqctl'), '--broker', f.broker.client_ep, '--key', key, '--json']
    run = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30)
    with open(os.path.join(aqtest.tmpdir(), 'aqctl.log'), 'a') as log:
        log.write('=== %s\n%s%s' % (' '.join(args), run.stdout, run.stderr))
    return run.returncode, run.stdout.strip(), run.stderr.strip()


def test_aqctl_flow():
    """aqctl flow set|get|list|pause|resume show what the API shows; a read
    key may only get and list; an unknown key and bad limits are refused."""
    if not aqtest.have('aqctl'):
        return
    f = s_Flow()
    code, out, err = s_aqctl(f, f.key, 'flow', 'set', 'cli.key', '--rate', '5', '--period', '2',
                             '--parallelism', '3')
    assert code == 0, err
    made = json.loads(out)
    assert made == {'key': 'cli.key', 'rate': 5, 'period': 2, 'parallelism': 3,
                    'effectiveRate': 5, 'inFlight': 0, 'waiting': 0, 'paused': False}, made
    assert f.key_state('cli.key') == made
    code, out, err = s_aqctl(f, f.key, 'flow', 'pause', 'cli.key')
    assert code == 0 and json.loads(out)['paused'] is True, (code, out, err)
    code, out, err = s_aqctl(f, f.key, 'flow', 'get', 'cli.key')
    assert code == 0 and json.loads(out) == dict(made, paused=True), (code, out, err)
    code, out, err = s_aqctl(f, f.key, 'flow', 'resume', 'cli.key')
    assert code == 0 and json.loads(out)['paused'] is False, (code, out, err)
    code, out, err = s_aqctl(f, f.key, 'flow', 'set', 'other', '--parallelism', '1')
    assert code == 0, err
    code, out, err = s_aqctl(f, f.key, 'flow', 'list', '--limit', '1', '--offset', '1')
    listed = json.loads(out)
    assert code == 0 and [k['key'] for k in listed['keys']] == ['other'], (code, out, err)
    assert listed['pagination'] == {'total': 2, 'limit': 1, 'offset': 1, 'hasMore': False}, listed
    code, out, err = s_aqctl(f, f.key, 'flow', 'get', 'nope')
    assert code == 1 and err == 'aqctl: Flow control key not found (HTTP 404)', (code, err)
    code, out, err = s_aqctl(f, f.key, 'flow', 'set', 'cli.key')
    assert code == 1 and err == 'aqctl: rate or parallelism is required (HTTP 400)', (code, err)
    code, out, err = s_aqctl(f, f.key, 'flow', 'get')
    assert code == 2 and 'flow get needs a flow control KEY' in err, (code, err)
    read = f.broker.new_key('flow-team', scope='read')
    code, out, err = s_aqctl(f, read, 'flow', 'get', 'cli.key')
    assert code == 0 and json.loads(out)['key'] == 'cli.key', (code, out, err)
    code, out, err = s_aqctl(f, read, 'flow', 'list')
    assert code == 0 and len(json.loads(out)['keys']) == 2, (code, out, err)
    for verb in (['set', 'cli.key', '--rate', '1'], ['pause', 'cli.key'], ['resume', 'cli.key']):
        code, out, err = s_aqctl(f, read, 'flow', *verb)
        assert code == 1 and err == 'aqctl: Access denied (HTTP 403)', (verb, code, err)
