"""test_core.py - process tests of the core engine (issue 2)

Real processes on loopback: aq-broker with a temp data dir, aq-worker
processes over tcp, aq-target as the callback target, and the protocol
client of aqtest.py (no gateway). Timings are measured where the calls
land: the arrival times the target records.
"""

import json
import os
import re
import random
import subprocess
import time

import aqtest
from aqtest import now_ms, iso, parse_iso, wait_until

BASE_MS = 200    # --backoff-base-ms for the retry tests
SLACK_MS = 150   # how late a retry may land (dispatch, call, commit; ASan)


def s_setup(workers=1, slots=8, allow_private=True, **broker_args):
    target = aqtest.start_target()
    broker = aqtest.start_broker(**broker_args)
    if workers:
        aqtest.start_workers(broker, workers, slots=slots, allow_private=allow_private)
    cli = broker.client(key=broker.new_key('team-%d' % random.randrange(1 << 30)))
    return target, broker, cli


def s_tag():
    return '%08x' % random.randrange(1 << 32)


def s_arrivals(target, prefix):
    return [r['at'] for r in target.requests(prefix)]


# ---------------------------------------------------------------------------
# The call itself

def test_callback_delivered_with_method_headers_body():
    target, broker, cli = s_setup()
    body = json.dumps({'action': 'process', 'data': {'id': 123, 'note': 'caf\u00e9'}})
    task = cli.create(targetUrl=target.url('/ok/deliver'), method='POST',
                      headers={'X-Custom': 'v1', 'Content-Type': 'application/json',
                               'Authorization': 'Bearer service-token'},
                      body=body)
    assert task['status'] == 'pending', task
    done = cli.wait_terminal(task['id'])
    assert done['status'] == 'completed', done
    got = target.requests('/ok/deliver')
    assert len(got) == 1, 'expected one call, target saw %d' % len(got)
    call = got[0]
    headers = call['headers']
    assert call['method'] == 'POST', call
    assert call['body'] == body, 'body %r, expected %r' % (call['body'], body)
    assert headers.get('x-custom') == 'v1', headers
    assert headers.get('content-type') == 'application/json', headers
    assert headers.get('authorization') == 'Bearer service-token', headers
    assert headers.get('asyncqueue-task-id') == task['id'], headers
    assert headers.get('asyncqueue-attempt') == '1', headers
    assert headers.get('user-agent'), 'no User-Agent: %r' % headers
    result = done.get('result') or {}
    assert result.get('statusCode') == 200, done
    assert result.get('body') == '{"ok":true}', done
    assert isinstance(result.get('duration'), int), done
    assert done.get('retryCount') == 0, done
    for field in ('createdAt', 'startedAt', 'completedAt'):
        assert field in done, '%s missing: %r' % (field, done)


def test_callback_get_has_no_body_put_delete_do():
    target, broker, cli = s_setup()
    ids = {}
    for method in ('GET', 'PUT', 'DELETE'):
        ids[method] = cli.create(targetUrl=target.url('/ok/method-%s' % method),
                                 method=method, body='payload-%s' % method,
                                 headers={'X-Method': method})['id']
    for method, task_id in ids.items():
        done = cli.wait_terminal(task_id)
        assert done['status'] == 'completed', done
        got = target.requests('/ok/method-%s' % method)
        assert len(got) == 1, '%s: target saw %d calls' % (method, len(got))
        call = got[0]
        assert call['method'] == method, call
        assert call['headers'].get('x-method') == method, call
        if method == 'GET':
            assert call['bodySize'] == 0 and call['body'] == '', 'GET carried a body: %r' % call
            assert call['headers'].get('content-length', '0') == '0', call['headers']
        else:
            assert call['body'] == 'payload-%s' % method, call


def test_2xx_3xx_4xx_completed():
    target, broker, cli = s_setup()
    codes = [200, 201, 202, 204, 301, 302, 304, 307, 400, 401, 404, 410, 422, 499]
    ids = {code: cli.create(targetUrl=target.url('/status/%d/codes' % code),
                            maxRetries=3)['id'] for code in codes}
    final = cli.wait_all_terminal(ids.values(), timeout=20)
    wrong = []
    for code, task_id in ids.items():
        task = final[task_id]
        result = task.get('result') or {}
        if task['status'] != 'completed' or result.get('statusCode') != code or task.get('retryCount') != 0:
            wrong.append('%d -> %s statusCode=%s retryCount=%s error=%s' % (
                code, task['status'], result.get('statusCode'), task.get('retryCount'), task.get('error')))
    assert not wrong, 'not completed as expected: ' + '; '.join(wrong)
    for code in codes:
        n = len(target.requests('/status/%d/codes' % code))
        assert n == 1, 'status %d was called %d times' % (code, n)
    assert target.requests('/redirected') == [], 'a redirect was followed'


def test_5xx_retried_until_max_retries_then_failed():
    target, broker, cli = s_setup(backoff_base_ms=BASE_MS)
    a = cli.create(targetUrl=target.url('/status/503/five-a'), maxRetries=2)
    b = cli.create(targetUrl=target.url('/status/500/five-b'), maxRetries=0)
    c = cli.create(targetUrl=target.url('/fail-first/2/five-c'), maxRetries=3)
    final = cli.wait_all_terminal([a['id'], b['id'], c['id']], timeout=20)
    fa, fb, fc = final[a['id']], final[b['id']], final[c['id']]
    assert fa['status'] == 'failed' and fa.get('retryCount') == 2, fa
    assert fa.get('error') == 'HTTP 503', fa
    assert len(target.requests('/status/503/five-a')) == 3, 'maxRetries=2 should make 3 calls'
    assert fb['status'] == 'failed' and fb.get('retryCount') == 0, fb
    assert fb.get('error') == 'HTTP 500', fb
    assert len(target.requests('/status/500/five-b')) == 1
    assert fc['status'] == 'completed' and fc.get('retryCount') == 2, fc
    assert (fc.get('result') or {}).get('statusCode') == 200, fc
    attempts = [r.get('headers', {}).get('asyncqueue-attempt') for r in target.requests('/status/503/five-a')]
    assert attempts == ['1', '2', '3'], 'AsyncQueue-Attempt headers %r' % attempts


def test_attempts_listed():
    target, broker, cli = s_setup(backoff_base_ms=BASE_MS)
    task = cli.create(targetUrl=target.url('/fail-first/2/attempts'), maxRetries=3)
    done = cli.wait_terminal(task['id'], timeout=15)
    assert done['status'] == 'completed', done
    reply = cli.call('TASK_ATTEMPTS', {'id': task['id']})
    assert reply.get('status') == 200, reply
    attempts = reply['body']['attempts']
    assert [a.get('attempt') for a in attempts] == [1, 2, 3], attempts
    assert [a.get('statusCode') for a in attempts] == [503, 503, 200], attempts
    for a in attempts:
        parse_iso(a['startedAt'])
        assert isinstance(a.get('duration'), int), a
    reply = cli.call('TASK_ATTEMPTS', {'id': '01890a5d-ac96-774b-bcce-b302099a8057'})
    assert reply.get('status') == 404 and reply.get('error') == 'Task not found', reply


def test_connection_refused_fails():
    target, broker, cli = s_setup(backoff_base_ms=BASE_MS)
    closed = aqtest.free_port()
    task = cli.create(targetUrl='http://127.0.0.1:%d/refused' % closed, maxRetries=1)
    done = cli.wait_terminal(task['id'], timeout=15)
    assert done['status'] == 'failed', done
    assert done.get('error') == 'fetch failed: ECONNREFUSED', done
    assert done.get('retryCount') == 1, done


# ---------------------------------------------------------------------------
# Back-off

def s_backoff(strategy, expected, tasks=1):
    """Runs `tasks` tasks against a 503 target with maxRetries = len(expected)
    and checks every gap between calls against expected [(low, high)] ms."""
    target, broker, cli = s_setup(backoff_base_ms=BASE_MS, slots=16)
    tag = s_tag()
    ids = [cli.create(targetUrl=target.url('/status/503/bo-%s-%d' % (tag, i)),
                      maxRetries=len(expected), retryBackoff=strategy)['id']
           for i in range(tasks)]
    final = cli.wait_all_terminal(ids, timeout=5 + sum(h for _, h in expected) / 1000.0 * 2)
    all_gaps, problems = [], []
    for i, task_id in enumerate(ids):
        task = final[task_id]
        if task['status'] != 'failed' or task.get('retryCount') != len(expected):
            problems.append('task %d ended %s retryCount=%s' % (i, task['status'], task.get('retryCount')))
        at = s_arrivals(target, '/status/503/bo-%s-%d' % (tag, i))
        if len(at) != len(expected) + 1:
            problems.append('task %d: %d calls, expected %d' % (i, len(at), len(expected) + 1))
            continue
        gaps = [b - a for a, b in zip(at, at[1:])]
        all_gaps.append(gaps)
        for n, (gap, (low, high)) in enumerate(zip(gaps, expected), 1):
            if gap < low - 5 or gap > high + SLACK_MS:
                problems.append('task %d retry %d after %d ms, expected %d..%d ms'
                                % (i, n, gap, low, high))
    print('%s: gaps between calls (ms) %r' % (strategy, all_gaps))
    assert not problems, '%s: %s (gaps %r)' % (strategy, '; '.join(problems), all_gaps)
    return all_gaps


def test_backoff_exponential():
    s_backoff('exponential', [(200, 200), (400, 400), (800, 800), (1600, 1600)])


def test_backoff_linear():
    s_backoff('linear', [(200, 200), (400, 400), (600, 600), (800, 800)])


def test_backoff_fixed():
    s_backoff('fixed', [(200, 200), (200, 200), (200, 200), (200, 200)])


def test_backoff_exponential_jitter():
    gaps = s_backoff('exponential_jitter', [(100, 200), (200, 400), (400, 800), (800, 1600)], tasks=5)
    last = [g[-1] for g in gaps]
    assert max(last) - min(last) > 20, 'no jitter: 4th retry gaps %r' % last


def test_retry_after_honoured():
    target, broker, cli = s_setup(backoff_base_ms=BASE_MS)
    task = cli.create(targetUrl=target.url('/retry-after/2/ra'), maxRetries=1)
    first = target.wait_requests('/retry-after/2/ra', 1, timeout=5)[0]['at']
    waiting = cli.wait_status(task['id'], 'delayed', timeout=2)
    assert waiting.get('retryCount') == 1, waiting
    assert 'nextAttemptAt' in waiting, 'no nextAttemptAt while waiting to retry: %r' % waiting
    next_at = parse_iso(waiting['nextAttemptAt'])
    assert next_at >= first + 1990, 'nextAttemptAt %s is sooner than Retry-After: 2 asks' % waiting['nextAttemptAt']
    done = cli.wait_terminal(task['id'], timeout=8)
    at = s_arrivals(target, '/retry-after/2/ra')
    assert len(at) == 2, at
    gap = at[1] - at[0]
    assert 1995 <= gap <= 2000 + 600, 'retried %d ms after a Retry-After: 2' % gap
    assert done['status'] == 'failed' and done.get('error') == 'HTTP 503', done


def test_retry_after_capped_by_backoff_cap():
    target, broker, cli = s_setup(backoff_base_ms=BASE_MS, backoff_cap_ms=1000)
    task = cli.create(targetUrl=target.url('/retry-after/30/cap'), maxRetries=1)
    done = cli.wait_terminal(task['id'], timeout=10)
    at = s_arrivals(target, '/retry-after/30/cap')
    assert len(at) == 2, 'expected 2 calls, got %r (task %r)' % (at, done)
    gap = at[1] - at[0]
    assert 995 <= gap <= 1000 + 600, 'Retry-After 30 with a 1 s cap retried after %d ms' % gap


# ---------------------------------------------------------------------------
# Time and cancellation

def test_delay_until_honoured():
    target, broker, cli = s_setup()
    start = now_ms()
    due = {}
    for i, delay in enumerate([700, 1100, 1500, 1900, 2300, 2700]):
        when = int(start + delay)
        task = cli.create(targetUrl=target.url('/ok/delay-%d' % i), delayUntil=iso(when),
                          headers={'X-Due-Ms': str(when)})
        assert task['status'] == 'delayed', task
        assert parse_iso(task['delayUntil']) == when, task
        due[i] = (task['id'], when)
    early = cli.get(due[5][0])
    assert early['status'] == 'delayed', early
    final = cli.wait_all_terminal([v[0] for v in due.values()], timeout=10)
    problems = []
    for i, (task_id, when) in due.items():
        assert final[task_id]['status'] == 'completed', final[task_id]
        at = s_arrivals(target, '/ok/delay-%d' % i)
        print('delay task %d: called %r ms after delayUntil' % (i, [a - when for a in at]))
        if len(at) != 1:
            problems.append('task %d called %d times' % (i, len(at)))
        elif at[0] < when:
            problems.append('task %d ran %d ms early' % (i, when - at[0]))
        elif at[0] - when >= 1000:
            problems.append('task %d ran %d ms late' % (i, at[0] - when))
    assert not problems, '; '.join(problems)
    # a delayUntil in the past runs at once
    task = cli.create(targetUrl=target.url('/ok/delay-past'), delayUntil=iso(now_ms() - 60000))
    assert cli.wait_terminal(task['id'], timeout=5)['status'] == 'completed'


def test_cancel_pending_and_delayed():
    target, broker, cli = s_setup(workers=0)
    pending = cli.create(targetUrl=target.url('/ok/cancel-pending'))
    delayed = cli.create(targetUrl=target.url('/ok/cancel-delayed'), delayUntil=iso(now_ms() + 1500))
    assert pending['status'] == 'pending', pending
    assert delayed['status'] == 'delayed', delayed
    for task in (pending, delayed):
        reply = cli.call('TASK_CANCEL', {'id': task['id']})
        assert reply.get('status') == 200, reply
        assert reply['body']['task']['status'] == 'cancelled', reply
        assert cli.get(task['id'])['status'] == 'cancelled'
    reply = cli.call('TASK_CANCEL', {'id': pending['id']})
    assert reply.get('status') == 409, reply
    assert reply.get('error') == 'Task cannot be cancelled in status cancelled', reply
    aqtest.start_workers(broker, 1)
    done = cli.create(targetUrl=target.url('/ok/cancel-completed'))
    done = cli.wait_terminal(done['id'])
    assert done['status'] == 'completed', done
    reply = cli.call('TASK_CANCEL', {'id': done['id']})
    assert reply.get('status') == 409, reply
    assert reply.get('error') == 'Task cannot be cancelled in status completed', reply
    reply = cli.call('TASK_CANCEL', {'id': '01890a5d-ac96-774b-bcce-b302099a8057'})
    assert reply.get('status') == 404 and reply.get('error') == 'Task not found', reply
    time.sleep(max(0.0, (parse_iso(delayed['delayUntil']) - now_ms()) / 1000.0) + 0.5)
    assert target.requests('/ok/cancel-pending') == [], 'a cancelled pending task was called'
    assert target.requests('/ok/cancel-delayed') == [], 'a cancelled delayed task was called'
    for task in (pending, delayed):
        assert cli.get(task['id'])['status'] == 'cancelled'


# ---------------------------------------------------------------------------
# Ordering and fairness

@aqtest.timeout(120)
def test_priority_high_before_low():
    target, broker, cli = s_setup(workers=0)
    low = cli.create_many([{'targetUrl': target.url('/prio/low/%d' % i), 'priority': 1}
                           for i in range(1000)])
    high = cli.create_many([{'targetUrl': target.url('/prio/high/%d' % i), 'priority': 10}
                            for i in range(100)])
    assert all(t['status'] == 'pending' for t in low + high)
    aqtest.start_workers(broker, 1, slots=1)
    target.wait_requests('/prio/high/', 100, timeout=60)
    order = [r['path'] for r in target.requests('/prio/')]
    last_high = max(i for i, p in enumerate(order) if p.startswith('/prio/high/'))
    inversions = [p for p in order[:last_high] if p.startswith('/prio/low/')]
    assert len(inversions) <= 1, '%d low-priority calls ran before the last high one (slots in flight: 1): %r' % (
        len(inversions), inversions[:10])
    highs = [int(p.rsplit('/', 1)[1]) for p in order if p.startswith('/prio/high/')]
    assert highs == sorted(highs), 'equal priority not oldest first: %r' % highs[:20]
    lows = wait_until(lambda: [int(p.rsplit('/', 1)[1]) for p in
                               (r['path'] for r in target.requests('/prio/low/'))][:20]
                      if len(target.requests('/prio/low/')) >= 20 else None, 20,
                      '20 low-priority calls')
    assert lows == sorted(lows), 'equal priority not oldest first: %r' % lows


@aqtest.timeout(150)
def test_fairness_between_teams():
    target, broker, cli_a = s_setup(slots=4)
    cli_b = broker.client(key=broker.new_key('team-b-%s' % s_tag()))
    tasks = [{'targetUrl': target.url('/sleep/20/fair-a/%d' % i)} for i in range(10000)]
    cli_a.create_many(tasks, window=1000, timeout=120)
    reply = cli_a.call('TASK_LIST', {'status': 'pending', 'limit': 1})
    assert reply.get('status') == 200, reply
    queued = reply['body']['pagination']['total']
    assert queued >= 8000, 'team A has only %d pending tasks' % queued
    created = now_ms()
    b = cli_b.create(targetUrl=target.url('/ok/fair-b'))
    at = target.wait_requests('/ok/fair-b', 1, timeout=15)[0]['at']
    assert at - created < 1000, "team B's task ran %d ms after creation behind team A's backlog" % (at - created)
    assert cli_b.wait_terminal(b['id'])['status'] == 'completed'


# ---------------------------------------------------------------------------
# Processes

def test_broker_and_two_workers_over_tcp():
    target, broker, cli = s_setup(workers=0)
    aqtest.start_workers(broker, 2, slots=2)
    assert broker.stats().get('workers') == 2
    ids = [cli.create(targetUrl=target.url('/sleep/400/two/%d' % i))['id'] for i in range(8)]
    final = cli.wait_all_terminal(ids, timeout=20)
    assert all(t['status'] == 'completed' for t in final.values()), final
    at = sorted(s_arrivals(target, '/sleep/400/two/'))
    assert len(at) == 8, at
    in_flight = max(sum(1 for b in at if a - 380 < b <= a) for a in at)
    assert in_flight >= 3, 'at most %d calls in flight: only one worker of two is used (%r)' % (in_flight, at)
    assert in_flight <= 4, '%d calls in flight with 2 workers x 2 slots: credit not respected' % in_flight


def test_worker_kill9_mid_call_task_runs_again():
    target, broker, cli = s_setup(workers=0)
    first = aqtest.start_workers(broker, 1, slots=2)[0]
    task = cli.create(targetUrl=target.url('/sleep/1500/kill9-worker'))
    target.wait_requests('/sleep/1500/kill9-worker', 1, timeout=5)
    first.kill9()
    aqtest.start_worker(broker, slots=2)
    calls = target.wait_requests('/sleep/1500/kill9-worker', 2, timeout=10)
    done = cli.wait_terminal(task['id'], timeout=10)
    assert done['status'] == 'completed', done
    assert [c['headers'].get('asyncqueue-attempt') for c in calls] == ['1', '2'], calls
    reply = cli.call('TASK_ATTEMPTS', {'id': task['id']})
    assert reply.get('status') == 200, reply
    attempts = reply['body']['attempts']
    assert len(attempts) == 2 and attempts[0].get('error') == 'worker lost', attempts


@aqtest.timeout(300)
def test_broker_kill9_five_times_under_load():
    """5,000 creates while the broker is killed 5 times; every acknowledged
    task must exist afterwards, reach a terminal status, and be called."""
    target = aqtest.start_target()
    broker = aqtest.start_broker()
    aqtest.start_workers(broker, 2, slots=16)
    key = broker.new_key('load')
    cli = broker.client(key=key)
    total, window, resend_s = 5000, 200, 3.0
    acked = {}        # index -> task id of its first 201
    promised = set()  # every task id a 201 named (resent requests may make two)
    inflight = {}     # corr -> (index, sent at)
    owner = {}        # every corr ever sent -> index
    next_index, kills, kill_at = 0, 0, [800, 1600, 2400, 3200, 4000]
    deadline = time.monotonic() + 200

    def send(index):
        corr = cli.send('TASK_CREATE', {'task': {'targetUrl': target.url('/load/%d' % index)}})
        inflight[corr], owner[corr] = (index, time.monotonic()), index

    while len(acked) < total:
        assert time.monotonic() < deadline, 'load stalled at %d acks' % len(acked)
        for corr, (index, sent) in list(inflight.items()):
            if time.monotonic() - sent > resend_s:
                del inflight[corr]
                if index not in acked:
                    send(index)
        while next_index < total and len(inflight) < window:
            send(next_index)
            next_index += 1
        reply = cli.recv_reply(0.2)
        while reply is not None:
            corr = reply.get('corr')
            inflight.pop(corr, None)
            if reply.get('status') == 201 and corr in owner:
                # a 201 is a promise, also when it answers a request resent meanwhile
                promised.add(reply['body']['task']['id'])
                acked.setdefault(owner[corr], reply['body']['task']['id'])
            reply = cli.recv_reply(0)
        if kills < len(kill_at) and len(acked) >= kill_at[kills]:
            broker.kill9()
            kills += 1
            time.sleep(0.1)
            broker.restart()
    ids = sorted(promised)
    assert kills == 5, 'only %d kills happened' % kills
    with broker.client(key=key) as check:
        lost = []
        for task_id, reply in zip(ids, check.pipeline([('TASK_GET', {'id': i}) for i in ids], timeout=60)):
            if reply.get('status') != 200:
                lost.append(task_id)
        assert not lost, '%d acknowledged tasks lost, e.g. %s' % (len(lost), lost[:5])
        final = check.wait_all_terminal(ids, timeout=120)
    bad = [t for t in final.values() if t['status'] != 'completed']
    assert not bad, '%d tasks did not complete, e.g. %s' % (len(bad), json.dumps(bad[0]))
    called = {r['headers'].get('asyncqueue-task-id') for r in target.requests('/load/')}
    never = [i for i in ids if i not in called]
    assert not never, '%d completed tasks were never called, e.g. %s' % (len(never), never[:5])


def test_events_published_for_status_changes():
    target, broker, cli = s_setup()
    auth = cli.call('AUTH', {'key': cli.key})['body']
    team, topic = auth['teamId'], auth['events']
    assert topic.startswith(team + '.'), auth
    sub = aqtest.context().socket(aqtest.zmq.SUB)
    sub.setsockopt(aqtest.zmq.LINGER, 0)
    sub.setsockopt(aqtest.zmq.SUBSCRIBE, topic.encode())
    sub.connect(broker.events_ep)
    other = broker.client(key=broker.new_key('other-%s' % s_tag()))
    try:
        time.sleep(0.3)  # the subscription travels to the broker
        noise = other.create(targetUrl=target.url('/ok/events-other'))
        task = cli.create(targetUrl=target.url('/ok/events'))
        cli.wait_terminal(task['id'])
        other.wait_terminal(noise['id'])
        seen = []
        while sub.poll(1000):
            frame_topic, frame = sub.recv_multipart()
            cmd, event = aqtest.decode(frame)
            assert cmd == 'EVENT' and frame_topic == topic.encode(), (frame_topic, cmd, event)
            assert event.get('teamId') == team and isinstance(event.get('at'), int), event
            assert event.get('id') != noise['id'], 'got another team\'s event: %r' % event
            seen.append(event['status'])
            if event['status'] == 'completed':
                break
        assert seen == ['pending', 'processing', 'completed'], 'events %r' % seen
    finally:
        sub.close(0)
        other.close()


# ---------------------------------------------------------------------------
# Robustness

def s_garbage_frames():
    """Frames that are not valid client requests (each a list of frames)."""
    rnd = random.Random(7)
    frames = [[bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 64)))] for _ in range(40)]
    header = lambda cmd: aqtest.SIGNATURE + bytes([aqtest.VERSION, cmd])
    frames += [
        [b''],                                              # a routing id and nothing else
        [b'\xaa'], [b'\xaa\xa1\x01'],                       # shorter than the header
        [b'\x00\x00\x01\x01' + aqtest.pack({'corr': 1})],   # wrong signature
        [b'\xaa\xa1\x02\x01' + aqtest.pack({'corr': 1})],   # wrong version
        [b'\xaa\xa1\xff\x01' + aqtest.pack({'corr': 1})],
        [header(99) + aqtest.pack({'corr': 1})],            # unknown command
        [header(1) + b'\x85\xa4co'],                        # truncated map
        [header(1) + aqtest.pack([1, 2, 3])],               # not a map
        [header(1) + b'\x81\x01\x01'],                      # integer key
        [header(1) + b'\x81\xa1\xff\x01'],                  # key not UTF-8
        [header(1) + aqtest.pack({}) + b'\x80'],            # trailing bytes
        [header(1) + b'\xc1'],                              # never-used type
        [header(1) + b'\x81\xa1a\xc4\x03abc'],              # bin, not str
        [header(1) + b'\x81\xa1a\xdf\xff\xff\xff\xff'],     # map claiming 4G entries
        [header(1) + b'\x81\xa1a\xdb\xff\xff\xff\xf0'],     # string longer than the frame
        [header(1) + b'\x81\xa1a' + b'\x91' * 200 + b'\x80'],  # nesting 200 deep
        [header(1) + aqtest.pack({'corr': 'x', 'key': 5, 'task': 'nope'})],
        [header(1) + aqtest.pack({'corr': 1, 'task': {'targetUrl': 5}})],
        [header(2) + aqtest.pack({'corr': 2**63 - 1, 'id': None})],
        [header(3) + aqtest.pack({'corr': -1, 'limit': 'lots', 'offset': -5})],
        [header(14) + aqtest.pack({'corr': 1, 'status': 200})],   # a REPLY to the broker
        [header(21) + aqtest.pack({'id': 'x'})],                  # a JOB to the broker
        [header(22) + aqtest.pack({'id': 'x', 'attempt': 1})],    # RESULT, never READY
        [header(15)],                                             # no body at all
        [b'part-one', b'part-two', b'part-three'],                # three frames
        [header(1), aqtest.pack({'corr': 1})],                    # header and body apart
    ]
    return frames


def s_worker_garbage(task_id):
    header = lambda cmd: aqtest.SIGNATURE + bytes([aqtest.VERSION, cmd])
    return [
        [header(22) + aqtest.pack({'id': task_id, 'attempt': 1, 'duration': 1, 'statusCode': 200})],
        [header(15)],                                             # heartbeat from a stranger
        [header(20) + aqtest.pack({'credit': 'lots'})],
        [header(20) + aqtest.pack({'credit': -5})],
        [header(20) + aqtest.pack({})],
        [header(22) + aqtest.pack({'id': 'no-such-task', 'attempt': 7, 'duration': -1})],
        [header(22) + aqtest.pack({'id': 5, 'attempt': 'x', 'statusCode': 'abc', 'headers': [1]})],
        [header(1) + aqtest.pack({'corr': 1, 'task': {}})],       # a client request to workers
        [header(23) + aqtest.pack({'extra': [1, {}]})],           # BYE from a stranger
    ]


@aqtest.timeout(90)
def test_garbage_frames_leave_broker_serving():
    target, broker, cli = s_setup(backoff_base_ms=BASE_MS)
    bystander = cli.create(targetUrl=target.url('/sleep/300/bystander'))
    for endpoint in (broker.client_ep, broker.worker_ep):
        with aqtest.Client(endpoint) as raw:
            for frames in s_garbage_frames():
                raw.send_raw(*frames)
            if endpoint == broker.worker_ep:
                for frames in s_worker_garbage(bystander['id']):
                    raw.send_raw(*frames)
            time.sleep(0.3)
            broker.proc.check_alive()
        with aqtest.Client(endpoint) as raw:   # over the size limit: peer dropped
            raw.send_raw(aqtest.encode('TASK_CREATE', {'corr': 1, 'pad': 'x' * (9 << 20)}))
            time.sleep(0.5)
        # a worker that sends READY then garbage, then vanishes
        with aqtest.Client(broker.worker_ep) as fake:
            fake.send('READY', {'credit': 2})
            for frames in s_garbage_frames()[:20]:
                fake.send_raw(*frames)
        broker.proc.check_alive()
        assert broker.stats() is not None
    # leases of the vanished fake worker expire after 5 heartbeats (1 s)
    time.sleep(1.5)
    broker.proc.check_alive()
    done = cli.wait_terminal(bystander['id'], timeout=15)
    assert done['status'] == 'completed', 'a task created before the garbage: %r' % done
    task = cli.create(targetUrl=target.url('/ok/after-garbage'))
    done = cli.wait_terminal(task['id'], timeout=15)
    assert done['status'] == 'completed', done
    assert len(target.requests('/ok/after-garbage')) >= 1
    aqtest.start_workers(broker, 1)   # still accepts new workers


def test_malformed_frames_get_error_reply():
    target, broker, cli = s_setup(workers=0)
    before = broker.stats().get('counters', {}).get('malformed', 0)
    with aqtest.Client(broker.client_ep) as raw:
        for frame, why in [(b'\x00\x00\x01\x0d\x80', 'wrong signature'),
                           (b'\xaa\xa1\x02\x0d\x80', 'wrong version'),
                           (b'\xaa\xa1\x01\x63\x80', 'unknown command'),
                           (b'\xaa\xa1\x01\x0d\x85\xa4co', 'truncated body')]:
            raw.send_raw(frame)
            msg = raw.recv(3.0)
            assert msg is not None, 'no reply to a frame with a %s' % why
            assert msg[0] == 'ERROR' and msg[1].get('code') == 400 and msg[1].get('reason'), (
                '%s answered with %r' % (why, msg))
        # readable, but a worker's command on the client socket: ERROR echoing corr
        raw.send_raw(aqtest.encode('READY', {'corr': 77, 'credit': 1}))
        msg = raw.recv(3.0)
        assert msg is not None and msg[0] == 'ERROR' and msg[1].get('corr') == 77, msg
    after = broker.stats().get('counters', {}).get('malformed', 0)
    assert after >= before + 5, 'malformed counter went from %r to %r' % (before, after)
    # a well-formed request with a broken field: a REPLY 400 echoing corr
    reply = cli.call('TASK_CREATE', {'task': 'not a map'})
    assert reply.get('status') == 400 and reply.get('error'), reply
    reply = cli.call('TASK_GET', {'id': 12345})
    assert reply.get('status') in (400, 404) and reply.get('error'), reply
    # no key / wrong key
    with broker.client() as anon:
        reply = anon.call('TASK_GET', {'id': '01890a5d-ac96-774b-bcce-b302099a8057'})
        assert reply.get('status') == 401 and reply.get('error') == 'API key required', reply
    with broker.client(key='aq_garbage') as wrong:
        reply = wrong.call('TASK_GET', {'id': '01890a5d-ac96-774b-bcce-b302099a8057'})
        assert reply.get('status') == 401 and reply.get('error') == 'Invalid or revoked API key', reply
    # a stranger on the worker socket is told to send READY
    with aqtest.Client(broker.worker_ep) as stranger:
        stranger.send('HEARTBEAT', {})
        msg = stranger.recv(3.0)
        while msg is not None and msg[0] == 'HEARTBEAT':
            msg = stranger.recv(3.0)
        assert msg is not None and msg[0] == 'ERROR' and msg[1].get('code') == 410, (
            'a HEARTBEAT without READY got %r' % (msg,))


# ---------------------------------------------------------------------------
# SSRF guard: workers without --allow-private-targets

def s_ssrf(make_urls):
    """Tasks to make_urls(target port) must fail at once as not allowed,
    without a retry, and the target must see no call."""
    target, broker, cli = s_setup(allow_private=False, backoff_base_ms=BASE_MS)
    urls = make_urls(target.port)
    ids = {url: cli.create(targetUrl=url, maxRetries=2, timeout=2)['id'] for url in urls}
    final = cli.wait_all_terminal(ids.values(), timeout=20)
    wrong = []
    for url, task_id in ids.items():
        task = final[task_id]
        error = task.get('error') or ''
        if task['status'] != 'failed' or 'destination not allowed' not in error or task.get('retryCount') != 0:
            wrong.append('%s -> %s, error %r, retryCount %s' % (url, task['status'], error, task.get('retryCount')))
    assert not wrong, 'not refused as a destination: ' + '; '.join(wrong)
    assert target.stats()['count'] == 0, 'the target was called: %r' % target.requests()


def test_ssrf_loopback_tricks_refused_by_default():
    s_ssrf(lambda p: [
        'http://127.1/', 'http://2130706433/', 'http://0x7f.1/', 'http://[::ffff:127.0.0.1]/',
        'http://localhost/', 'http://127.1:%d/ssrf' % p, 'http://2130706433:%d/ssrf' % p,
        'http://0x7f.1:%d/ssrf' % p, 'http://[::ffff:127.0.0.1]:%d/ssrf' % p,
        'http://localhost:%d/ssrf' % p, 'http://127.0.0.1:%d/ssrf' % p, 'http://[::1]:%d/ssrf' % p])


def test_ssrf_private_ranges_refused_by_default():
    s_ssrf(lambda p: [
        'http://10.1.2.3/', 'http://172.16.5.4/', 'http://192.168.1.1/',
        'http://169.254.169.254/latest/meta-data/', 'http://100.64.0.1/', 'http://0.0.0.0/',
        'http://0.0.0.0:%d/ssrf' % p, 'http://224.0.0.1/', 'http://[fd00::1]/', 'http://[fe80::1]/'])


# ---------------------------------------------------------------------------
# aqctl

def test_aqctl_key_create_prints_a_working_key():
    aqtest.binary('aqctl')
    broker = aqtest.start_broker()
    for scope in (None, 'read'):
        args = [aqtest.binary('aqctl'), '--data', broker.data, 'key', 'create', '--team', 'ctl-team']
        if scope:
            args += ['--scope', scope]
        run = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert run.returncode == 0, 'aqctl exited %d: %s' % (run.returncode, run.stderr.decode())
        out = run.stdout.decode()
        assert out.endswith('\n') and out.count('\n') == 1 and len(out.strip()) >= 22, (
            'aqctl should print the key alone: %r' % out)
        with broker.client() as cli:
            reply = cli.call('AUTH', {'key': out.strip()})
        assert reply.get('status') == 200, reply
        assert reply['body'].get('scope') == (scope or 'full') and reply['body'].get('teamId'), reply


def test_redo_log_replays_commits_after_kill9():
    """With checkpoints an hour apart every acknowledged create lives only in
    the redo log and LMDB's open transaction: after kill -9 the broker replays
    the log (and says so), every task is there, and a clean stop then leaves
    nothing to replay."""
    broker = aqtest.start_broker(extra=('--checkpoint-ms', '3600000'))
    cli = broker.client(key=broker.new_key('redo'))
    due = iso(now_ms() + 3600 * 1000)
    created = cli.create_many([{'targetUrl': 'http://127.0.0.1:9/redo/%d' % i, 'delayUntil': due}
                               for i in range(300)])
    assert len(created) == 300
    broker.kill9()
    broker.restart()
    replayed = re.findall(r'replayed (\d+) commits from the redo log', broker.proc.log())
    assert replayed and int(replayed[-1]) >= 1, broker.proc.tail()
    with broker.client(key=cli.key) as check:
        replies = check.pipeline([('TASK_GET', {'id': t['id']}) for t in created], timeout=30)
        missing = [t['id'] for t, r in zip(created, replies) if r.get('status') != 200]
        assert not missing, '%d acknowledged tasks lost, e.g. %s' % (len(missing), missing[:3])
        assert all(r['body']['task']['status'] == 'delayed' for r in replies)
    broker.proc.stop()
    broker.restart()
    assert len(re.findall('replayed', broker.proc.log())) == len(replayed), broker.proc.tail()


def test_broker_options_checked_and_documented():
    """Out-of-range broker options stop aq-broker and asyncqueue at once (exit
    2, one line saying which), and --help names every shared option."""
    data = os.path.join(aqtest.tmpdir(), 'options.data')
    bad = [(('--checkpoint-ms', '0'), '--checkpoint-ms must be 1 to 3600000'),
           (('--checkpoint-ms', '3600001'), '--checkpoint-ms must be 1 to 3600000'),
           (('--heartbeat-ms', '5'), '--heartbeat-ms must be at least 10'),
           (('--backoff-base-ms', '0'),
            '--backoff-base-ms must be at least 1 and at most --backoff-cap-ms')]
    for program in ('aq-broker', 'asyncqueue'):
        for args, message in bad:
            run = subprocess.run([aqtest.binary(program), '--data', data] + list(args),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            assert run.returncode == 2 and run.stderr.decode() == '%s: %s\n' % (program, message), \
                '%s %s -> %d %r' % (program, args, run.returncode, run.stderr)
        shown = subprocess.run([aqtest.binary(program), '--help'], stdout=subprocess.PIPE,
                               timeout=30).stdout.decode()
        for option in ('--checkpoint-ms', '--map-size', '--heartbeat-ms', '--nosync'):
            assert option in shown, '%s --help does not mention %s' % (program, option)
    assert not os.path.exists(data), 'a refused start created its data directory'


def test_second_broker_on_one_data_dir_is_refused():
    """The store is one broker's: a second aq-broker on the same --data exits
    at once with a clear message, and the first keeps its state and serves."""
    broker = aqtest.start_broker()
    cli = broker.client(key=broker.new_key('one-dir'))
    task = cli.create(targetUrl='http://127.0.0.1:9/one-dir', delayUntil=iso(now_ms() + 3600 * 1000))
    run = subprocess.run([aqtest.binary('aq-broker'), '--data', broker.data, '--insecure',
                          '--clients', 'tcp://127.0.0.1:%d' % aqtest.free_port(),
                          '--workers-endpoint', 'tcp://127.0.0.1:%d' % aqtest.free_port()],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    err = run.stderr.decode()
    assert run.returncode != 0, 'a second broker started on the same data dir: %s' % err
    assert "data directory '%s' is in use by another broker" % broker.data in err, err
    assert cli.call('TASK_GET', {'id': task['id']})['status'] == 200


@aqtest.timeout(120)
def test_store_map_grows_under_load_and_survives_restart():
    """A 1 MiB LMDB map filled far past its size: every create succeeds,
    the data file grows, and every task is there after a restart."""
    broker = aqtest.start_broker(extra=('--map-size', str(1 << 20)))
    cli = broker.client(key=broker.new_key('grow'))
    body = 'x' * 2000
    tasks = [{'targetUrl': 'http://127.0.0.1:9/grow', 'body': body,
              'delayUntil': iso(now_ms() + 3600 * 1000)} for _ in range(3000)]
    created = cli.create_many(tasks)
    assert len(created) == 3000
    size = os.path.getsize(os.path.join(broker.data, 'data.mdb'))
    assert size > 6 << 20, 'data.mdb is only %d bytes' % size
    broker.kill9()
    broker.restart()
    cli = broker.client(key=cli.key)
    reply = cli.call('TASK_LIST', {'status': 'delayed', 'limit': 1})
    assert reply['body']['pagination']['total'] == 3000, reply
    for task in random.sample(created, 50):
        assert cli.get(task['id'])['status'] == 'delayed'
