"""test_resource_bounds.py - what the largest legal requests cost (issue 14, item 6)

A fuzzer finds inputs that crash; it does not find a legal request that
costs too much. Each test here makes the largest request one key may make
of a kind, against real processes, and measures what it costs: the peak
resident memory the broker and the gateway gain (VmHWM in /proc/PID/status)
and how long the broker's loop is held, seen as the wait of another team's
request sent while it runs (the broker has no metric of its own for that).
The bounds are the ones docs/operations.md states ("Resource bounds"),
generous for a loaded 2-core machine and ASan builds (with a small
quarantine, so freed memory is not counted as growth).
"""

import os
import socket
import threading
import time

import aqtest

MiB = 1 << 20

# ASan keeps freed memory in a quarantine (256 MiB by default), which
# would count as growth: the processes measured here keep 1 MiB.
ENV = {'ASAN_OPTIONS': os.environ.get('ASAN_OPTIONS', '') + ':quarantine_size_mb=1'}


def s_anon(proc):
    """Resident anonymous memory of a process in bytes (RssAnon: the heap,
    not the store's pages mapped from its file)."""
    with open('/proc/%d/status' % proc.pid) as f:
        for line in f:
            if line.startswith('RssAnon:'):
                return int(line.split()[1]) * 1024
    raise AssertionError('no RssAnon for pid %d' % proc.pid)


def s_while(work, probe, interval=0.02):
    """Runs work() in a thread and probe() in a loop until it ends; returns
    (work's result, the probe's results)."""
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault('r', work()), daemon=True)
    thread.start()
    probes = []
    while thread.is_alive():
        probes.append(probe())
        time.sleep(interval)
    thread.join()
    probes.append(probe())
    return out['r'], probes


@aqtest.timeout(300)
def test_largest_task_page_is_bounded():
    """GET /v1/tasks with every filter and limit=100 over 100 tasks of
    almost 1 MiB each (the largest body a request may carry). The whole
    page would be a 100 MiB REPLY, over the 8 MiB a gateway takes: ZeroMQ
    dropped the gateway's connection, so that request and every other one
    held on the gateway got 503 after 10 s. A page now stops at 4 MiB of
    tasks: paging on with offset + len(tasks) while hasMore reads each task
    once, the broker's and the gateway's heaps (RssAnon, sampled: the
    store's pages the broker reads are mapped from its file) gain a few
    pages' worth, and another team's requests on the same gateway are
    answered meanwhile."""
    target, broker, procs, cli = aqtest.cluster(workers=0, env=ENV)
    gateway = aqtest.start_gateway(broker, env=ENV)
    body = 'x' * (MiB - 4096)  # with the task's other fields, within the 1 MiB request
    tasks = [{'targetUrl': 'http://127.0.0.1:9/t%d' % i, 'body': body} for i in range(100)]
    for start in range(0, len(tasks), 10):
        cli.create_many(tasks[start:start + 10], window=10, timeout=120)
    api = aqtest.HttpClient(gateway.port, key=cli.key, timeout=60)
    other = aqtest.HttpClient(gateway.port, key=broker.new_key('team-bystander'), timeout=60)
    before = (s_anon(broker.proc), s_anon(gateway.proc))
    anon = list(before)

    def pages():
        seen, sizes, slowest, offset = [], [], 0.0, 0
        while True:
            reply = api.get('/v1/tasks?status=pending&limit=100&offset=%d&sortOrder=asc' % offset)
            assert reply.status == 200, reply
            page = reply.json
            assert page['pagination']['total'] == 100 and page['tasks'], page['pagination']
            assert all(t['body'] == body for t in page['tasks'])
            seen += [t['id'] for t in page['tasks']]
            sizes.append(len(reply.data))
            slowest = max(slowest, reply.elapsed)
            offset += len(page['tasks'])
            if not page['pagination']['hasMore']:
                return seen, sizes, slowest

    def bystander():  # and samples the heaps
        anon[0] = max(anon[0], s_anon(broker.proc))
        anon[1] = max(anon[1], s_anon(gateway.proc))
        reply = other.get('/v1/tasks?limit=1')
        assert reply.status == 200, reply
        return reply.elapsed
    (seen, sizes, slowest), waits = s_while(pages, bystander, interval=0.005)
    grown = (anon[0] - before[0], anon[1] - before[1])
    print('largest task page: %d pages of at most %.1f MiB of JSON (slowest %.2f s); broker '
          '+%.0f MiB, gateway +%.0f MiB; another team waited at most %.2f s (%d requests)'
          % (len(sizes), max(sizes) / MiB, slowest, grown[0] / MiB, grown[1] / MiB, max(waits),
             len(waits)))
    assert len(seen) == 100 and len(set(seen)) == 100, len(seen)
    # docs/operations.md, "Resource bounds"
    assert max(sizes) < 8 * MiB, max(sizes)
    assert slowest < 5.0, slowest
    assert grown[0] < 64 * MiB, 'the broker grew by %.0f MiB' % (grown[0] / MiB)
    assert grown[1] < 64 * MiB, 'the gateway grew by %.0f MiB' % (grown[1] / MiB)
    assert max(waits) < 2.0, 'another team waited %.2f s' % max(waits)
    api.close()
    other.close()


@aqtest.timeout(120)
def test_preview_of_1000_fire_times_is_bounded():
    """POST /tasks/preview with count 1000 for each kind of schedule: each
    answers within its budget, the broker gains little memory, and another
    team's request sent meanwhile is served at once."""
    target, broker, procs, cli = aqtest.cluster(workers=0, env=ENV)
    gateway = aqtest.start_gateway(broker, env=ENV)
    api = aqtest.HttpClient(gateway.port, key=cli.key)
    other = broker.client(key=broker.new_key('team-bystander'))
    before = aqtest.peak_rss(broker.proc)
    bodies = [
        {'schedule_kind': 'cron', 'schedule_expr': '* * * * *', 'timezone': 'Europe/Chisinau'},
        {'schedule_kind': 'cron', 'schedule_expr': '0 0 29 2 1', 'timezone': 'America/New_York'},
        {'schedule_kind': 'rrule', 'schedule_expr': 'FREQ=SECONDLY;BYSECOND=0,30',
         'timezone': 'Australia/Lord_Howe'},
        {'schedule_kind': 'rrule',
         'schedule_expr': 'FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=9,17',
         'timezone': 'Europe/Chisinau'},
        {'schedule_kind': 'once', 'schedule_expr': '2030-01-15T10:30:00Z'},
    ]
    slowest, waits = 0.0, []
    for body in bodies:
        for _ in range(20):
            def preview():
                return api.post('/tasks/preview', dict(body, count=1000))

            def bystander():
                start = time.monotonic()
                assert other.call('TASK_LIST', {'limit': 1}).get('status') == 200
                return time.monotonic() - start
            reply, probes = s_while(preview, bystander, interval=0)
            assert reply.status in (200, 400), reply
            if reply.status == 400:  # over its budget: said so, never held longer
                assert 'takes too long' in reply.error, reply
            else:
                assert len(reply.json['fire_times']) <= 1000, reply
            slowest = max(slowest, reply.elapsed)
            waits += probes
    grown = aqtest.peak_rss(broker.proc) - before
    print('preview count=1000: slowest %.3f s; broker +%.1f MiB; another team waited at most '
          '%.3f s (%d requests)' % (slowest, grown / MiB, max(waits), len(waits)))
    assert slowest < 1.0, slowest
    assert grown < 32 * MiB, 'the broker grew by %.1f MiB' % (grown / MiB)
    assert max(waits) < 1.0, 'another team waited %.3f s' % max(waits)
    api.close()
    other.close()


def s_held(admin):
    """The requests the gateway holds for the broker (its /metrics)."""
    reply = admin.get('/metrics')
    assert reply.status == 200, reply
    for line in reply.data.decode().splitlines():
        if line.startswith('asyncqueue_gateway_held '):
            return int(line.split()[1])
    raise AssertionError('no asyncqueue_gateway_held in /metrics')


@aqtest.timeout(300)
def test_10000_held_long_polls_are_bounded():
    """10,000 long polls (GET /v1/tasks/:id?wait=25) on one pending task,
    each on its own connection, held by one gateway and one broker: the
    heaps grow by a bounded amount per poll, another team is served while
    they are held, and when the task is cancelled every poll is answered
    at once (the broker answers its waiters in the step that cancels)."""
    count = 10000
    target, broker, procs, cli = aqtest.cluster(workers=0, env=ENV)
    gateway = aqtest.start_gateway(broker, env=ENV, extra=['--per-ip', str(count + 100)])
    task = cli.create(targetUrl='http://127.0.0.1:9/held')  # no worker: it stays pending
    admin = aqtest.HttpClient(gateway.port, key=broker.admin_token)
    other = aqtest.HttpClient(gateway.port, key=broker.new_key('team-bystander'))
    before = (s_anon(broker.proc), s_anon(gateway.proc))
    request = ('GET /v1/tasks/%s?wait=25 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n'
               % (task['id'], cli.key)).encode()
    polls = []
    start = time.monotonic()
    try:
        for _ in range(count):
            s = socket.create_connection(('127.0.0.1', gateway.port))
            s.sendall(request)
            polls.append(s)
        aqtest.wait_until(lambda: s_held(admin) >= count, 20, 'the gateway to hold every poll',
                          interval=0.2)
        opened = time.monotonic() - start
        assert time.monotonic() - start < 20, 'holding them took too long for wait=25'
        held = (s_anon(broker.proc) - before[0], s_anon(gateway.proc) - before[1])
        waits = []
        for _ in range(20):
            reply = other.get('/v1/tasks?limit=1')
            assert reply.status == 200, reply
            waits.append(reply.elapsed)
        api = aqtest.HttpClient(gateway.port, key=cli.key)
        start = time.monotonic()
        reply = api.post('/v1/tasks/%s/cancel' % task['id'])
        assert reply.status == 200, reply
        answered = 0
        for s in polls:
            s.settimeout(20)
            data = b''
            while b'"status":"cancelled"' not in data:
                chunk = s.recv(65536)
                assert chunk, 'a poll was closed without its answer: %r' % data[:200]
                data += chunk
            assert data.startswith(b'HTTP/1.1 200 '), data[:200]
            answered += 1
        answer_all = time.monotonic() - start
    finally:
        for s in polls:
            s.close()
    print('%d held long polls: opened and held in %.1f s; broker heap +%.1f MiB (%.0f bytes '
          'a poll), gateway +%.1f MiB (%.0f bytes a poll); another team waited at most %.3f s; '
          'all answered %.2f s after the cancel'
          % (count, opened, held[0] / MiB, held[0] / count, held[1] / MiB, held[1] / count,
             max(waits), answer_all))
    assert answered == count
    # docs/operations.md, "Resource bounds"
    assert held[0] < count * 4096, 'the broker grew by %.1f MiB' % (held[0] / MiB)
    assert held[1] < count * 32768, 'the gateway grew by %.1f MiB' % (held[1] / MiB)
    assert max(waits) < 1.0, 'another team waited %.3f s' % max(waits)
    assert answer_all < 10.0, answer_all
    for client in (admin, other, api):
        client.close()
