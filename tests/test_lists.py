"""test_lists.py - labels and list filters, batch create, bulk retry and cancel (issue 13, SPEC 11)

Real processes: the all-in-one `asyncqueue` (or aq-broker, aq-gateway and
aq-worker apart where a test kills the broker) with aq-target as the
callback target, over HTTP; the protocol client of tests/aqtest.py where a
test speaks to the broker directly.

Every filter is checked against a known set of tasks whose expected
answer this file computes on its own: each filter alone and combined,
across pages of both sort orders, with the totals.
"""

import json
import os
import random
import subprocess
import time
import urllib.parse

import aqtest
from aqtest import parse_iso, wait_until

FAR = '2099-01-01T00:00:00.000Z'
NEVER = 'http://127.0.0.1:9/never'   # nothing listens: a call fails at once


class s_Http(aqtest.HttpClient):
    def create(self, **task):
        reply = self.post('/v1/tasks', task)
        assert reply.status == 201, 'POST /v1/tasks %r -> %r' % (task, reply)
        return reply.json['task']

    def list(self, **query):
        """GET /v1/tasks with query (lists repeat the parameter)."""
        pairs = []
        for name, value in query.items():
            for one in value if isinstance(value, list) else [value]:
                pairs.append((name, one))
        reply = self.get('/v1/tasks?' + urllib.parse.urlencode(pairs))
        assert reply.status == 200, 'GET /v1/tasks %r -> %r' % (query, reply)
        return reply.json

    def all_pages(self, limit=7, **query):
        """Every task the filter lists, page by page, and the totals seen."""
        ids, totals, offset = [], set(), 0
        while True:
            page = self.list(limit=limit, offset=offset, **query)
            ids += [t['id'] for t in page['tasks']]
            totals.add(page['pagination']['total'])
            assert page['pagination'].get('totalExact', True) is True, page['pagination']
            offset += limit
            assert page['pagination']['hasMore'] == (offset < page['pagination']['total'])
            if not page['pagination']['hasMore']:
                return ids, totals


def s_team(aq, name):
    """A client with the key of a fresh team (.team is its name)."""
    team = '%s-%08x' % (name, random.randrange(1 << 32))
    api = s_Http(aq.port, aq.new_key(team))
    api.team = team
    return api


def s_tag():
    return '%08x' % random.randrange(1 << 32)


# ---------------------------------------------------------------------------
# Labels and filters

LABEL_ERRORS = [
    ({'labels': ['a']}, 'labels must be an object of strings'),
    ({'labels': {'a': 1}}, 'labels must be an object of strings'),
    ({'labels': {'a b': 'x'}}, 'labels names must be 1 to 64 characters of A-Z a-z 0-9 . _ -'),
    ({'labels': {'n' * 65: 'x'}}, 'labels names must be 1 to 64 characters of A-Z a-z 0-9 . _ -'),
    ({'labels': {'a': 'x' * 257}}, 'labels values must be at most 256 characters'),
    ({'labels': {'k%d' % i: 'v' for i in range(17)}}, 'labels must have at most 16 entries'),
]
FILTER_ERRORS = [
    ('label=env', 'label must be name:value, the name 1 to 64 characters of A-Z a-z 0-9 . _ - '
                  'and the value at most 256 characters'),
    ('targetUrl=https://api.example.com',
     'targetUrl must be a URL prefix with a host and a /, such as https://api.example.com/'),
    ('flowControlKey=a%20b', 'flowControlKey must be 1 to 100 characters of A-Z a-z 0-9 . _ : -'),
    ('createdAfter=yesterday', 'createdAfter must be a valid ISO 8601 date'),
    ('createdBefore=2024-02-30', 'createdBefore must be a valid ISO 8601 date'),
    ('provider=', 'provider must be a non-empty string'),
    ('&'.join('label=a:%d' % i for i in range(17)), 'label may be given at most 16 times'),
    ('provider=fal&provider=replicate', 'Duplicate query parameter: provider'),
]


def test_labels_shown_and_checked():
    aq = aqtest.start_allinone(workers=0)
    api = s_team(aq, 'labels')
    labels = {'env': 'prod', 'customer.id': 'c-42', 'x_y-1': '', 'long': '\u00e9' * 256}
    task = api.create(targetUrl=NEVER, delayUntil=FAR, labels=labels)
    assert task['labels'] == labels
    assert api.get('/v1/tasks/%s' % task['id']).json['task']['labels'] == labels
    plain = api.create(targetUrl=NEVER, delayUntil=FAR, labels={})
    assert 'labels' not in plain, plain
    for body, message in LABEL_ERRORS:
        body = dict(targetUrl=NEVER, **body)
        reply = api.post('/v1/tasks', body)
        assert reply.status == 400 and reply.error == message, (body, reply)
    for query, message in FILTER_ERRORS:
        reply = api.get('/v1/tasks?' + query)
        assert reply.status == 400 and reply.error == message, (query, reply)


def s_known_set(target, api, other):
    """Creates the known set; returns [(task, facts)] in creation order."""
    made = []
    status_of = {'ok': 'completed', 'fail': 'failed', 'later': 'delayed'}
    for wave in range(3):
        for i in range(14):
            kind = ('ok', 'fail', 'later')[i % 3]
            env = ('prod', 'dev')[i % 2]
            region = ('eu', 'us', 'ap')[(i // 2) % 3]
            path = '/ok/a/%d' % i if i % 4 else '/ok/b/x/%d' % i
            url = target.url(path) if kind == 'ok' else NEVER + path if kind == 'fail' else \
                target.url(path)
            body = dict(targetUrl=url, maxRetries=0, labels={'env': env, 'region': region})
            if kind == 'later':
                body['delayUntil'] = FAR
            if i == 5:
                body['provider'] = 'example'
                body['delayUntil'] = FAR
                kind = 'later'
            flow = ('fal-prod', 'fal-dev', None)[i % 5] if i % 5 < 3 else None
            if flow:
                body['flowControl'] = {'key': flow, 'parallelism': 100}
            task = api.create(**body)
            made.append((task, dict(status=status_of[kind], env=env, region=region, url=url,
                                    provider=body.get('provider'), flow=flow, wave=wave)))
            if wave == 0 and i == 0:
                other.create(**body)   # the other team's twin
        time.sleep(0.05)
    return made


def test_filters_against_a_known_set():
    target = aqtest.start_target()
    aq = aqtest.start_allinone(workers=2)
    api, other = s_team(aq, 'lists'), s_team(aq, 'other')
    made = s_known_set(target, api, other)
    ids = [t['id'] for t, _ in made]
    # let the calls end: completed, failed, delayed
    for task, facts in made:
        wait_until(lambda: api.get('/v1/tasks/%s' % task['id']).json['task']['status']
                   == facts['status'], 20, 'task %s %s' % (task['id'], facts['status']))
    created = {t['id']: parse_iso(t['createdAt']) for t, _ in made}
    wave_start = [min(created[t['id']] for t, f in made if f['wave'] == w) for w in range(3)]
    base = target.url('/ok/')

    def expect(pred):
        return [t['id'] for t, f in made if pred(f)]

    cases = [
        ({}, lambda f: True),
        ({'status': 'failed'}, lambda f: f['status'] == 'failed'),
        ({'label': 'env:prod'}, lambda f: f['env'] == 'prod'),
        ({'label': ['env:prod', 'region:eu']}, lambda f: f['env'] == 'prod' and f['region'] == 'eu'),
        ({'label': ['env:dev', 'region:us'], 'status': 'completed'},
         lambda f: f['env'] == 'dev' and f['region'] == 'us' and f['status'] == 'completed'),
        ({'label': 'env:none'}, lambda f: False),
        ({'targetUrl': base}, lambda f: f['url'].startswith(base)),
        ({'targetUrl': target.url('/ok/b/')}, lambda f: f['url'].startswith(target.url('/ok/b/'))),
        ({'targetUrl': target.url('/ok/a/1')}, lambda f: f['url'].startswith(target.url('/ok/a/1'))),
        ({'targetUrl': NEVER + '/ok/a/'}, lambda f: f['url'].startswith(NEVER + '/ok/a/')),
        ({'targetUrl': base, 'status': 'delayed', 'label': 'region:ap'},
         lambda f: f['url'].startswith(base) and f['status'] == 'delayed' and f['region'] == 'ap'),
        ({'provider': 'example'}, lambda f: f['provider'] == 'example'),
        ({'provider': 'example', 'status': 'failed'}, lambda f: False),
        ({'flowControlKey': 'fal-prod'}, lambda f: f['flow'] == 'fal-prod'),
        ({'flowControlKey': 'fal-dev', 'status': 'completed', 'label': 'env:prod'},
         lambda f: f['flow'] == 'fal-dev' and f['status'] == 'completed' and f['env'] == 'prod'),
        ({'flowControlKey': 'none'}, lambda f: False),
        ({'createdAfter': aqtest.iso(wave_start[1])}, lambda f: f['wave'] >= 1),
        ({'createdBefore': aqtest.iso(wave_start[1])}, lambda f: f['wave'] == 0),
        ({'createdAfter': aqtest.iso(wave_start[1]), 'createdBefore': aqtest.iso(wave_start[2]),
          'label': 'env:prod', 'status': 'failed'},
         lambda f: f['wave'] == 1 and f['env'] == 'prod' and f['status'] == 'failed'),
    ]
    for query, pred in cases:
        want = expect(pred)
        for order, limit in (('desc', 7), ('asc', 5)):
            got, totals = api.all_pages(limit=limit, sortOrder=order, **query)
            wanted = list(reversed(want)) if order == 'desc' else want
            assert got == wanted, '%s %s: got %d tasks, want %d\n%s\n%s' % (
                query, order, len(got), len(wanted), got, wanted)
            assert totals == {len(want)}, '%s: totals %s, want %d' % (query, totals, len(want))
    # the other team sees its own twin only, whatever the filter
    assert [t['id'] for t in other.list(label='env:prod')['tasks']] == \
        [t['id'] for t in other.list()['tasks']]
    assert other.list(label='env:prod')['pagination']['total'] == 1
    assert not set(ids) & {t['id'] for t in other.list(targetUrl=base)['tasks']}
    # the tasks are the same objects GET /v1/tasks/:id returns
    page = api.list(label='env:prod', status='failed', limit=1)['tasks'][0]
    assert page == api.get('/v1/tasks/%s' % page['id']).json['task']


def s_fill(broker, team, count, *args):
    """aq-store-fill: count tasks for team straight into the broker's store,
    with the broker stopped for it (then restarted)."""
    assert not broker.proc.stop(), 'the broker did not stop cleanly'
    run = subprocess.run([aqtest.binary('aq-store-fill'), '--data', broker.data, '--team', team,
                          '--count', str(count)] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert run.returncode == 0, 'aq-store-fill: %s' % run.stdout.decode()
    broker.restart()


def test_filters_of_stored_tasks_flow_key_and_provider():
    """Tasks with a flow-control key and a provider, written by aq-store-fill
    through the broker's own code: the filters find them, exactly."""
    broker = aqtest.start_broker()
    team = 'stored-%s' % s_tag()
    key = broker.new_key(team)
    s_fill(broker, team, 30, '--flow-key', 'fal-prod', '--provider', 'fal', '--label',
           'shard:s{i%3}', '--url', 'https://queue.fal.run/fal-ai/flux/{i%2}')
    s_fill(broker, team, 20, '--status', 'completed')
    gateway = aqtest.start_gateway(broker)
    api = s_Http(gateway.port, key)
    assert api.list()['pagination']['total'] == 50
    for query, total in (({'flowControlKey': 'fal-prod'}, 30), ({'flowControlKey': 'other'}, 0),
                         ({'provider': 'fal', 'status': 'failed'}, 30),
                         ({'provider': 'fal', 'status': 'completed'}, 0),
                         ({'flowControlKey': 'fal-prod', 'label': 'shard:s1'}, 10),
                         ({'targetUrl': 'https://queue.fal.run/fal-ai/flux/1'}, 15),
                         ({'targetUrl': 'https://queue.fal.run/fal-ai/'}, 30),
                         ({'status': 'completed'}, 20)):
        ids, totals = api.all_pages(limit=9, **query)
        assert totals == {total} and len(ids) == total and len(set(ids)) == total, (query, totals)


# ---------------------------------------------------------------------------
# Batch create

BATCH_ERRORS = [
    ({'tasks': []}, 'tasks must be an array of 1 to 1000 tasks'),
    ({'tasks': {}}, 'tasks must be an array of 1 to 1000 tasks'),
    ({}, 'tasks must be an array of 1 to 1000 tasks'),
    ({'tasks': [{'targetUrl': NEVER}] * 1001}, 'tasks must be an array of 1 to 1000 tasks'),
    ({'tasks': [{'targetUrl': NEVER}], 'task': 1}, 'Unknown field: task'),
    ([], 'Request body must be a JSON object'),
]


def test_batch_all_or_nothing_in_order_idempotent():
    aq = aqtest.start_allinone(workers=0)
    api = s_team(aq, 'batch')
    read = s_Http(aq.port, aq.new_key(api.team, scope='read'))
    # one bad task: 400 naming it, nothing stored
    tasks = [dict(targetUrl=NEVER + '/%d' % i, delayUntil=FAR, labels={'n': str(i)})
             for i in range(6)]
    bad = [dict(t) for t in tasks]
    bad[3] = {'targetUrl': NEVER, 'priority': 11}
    reply = api.post('/v1/tasks/batch', {'tasks': bad})
    assert reply.status == 400 and reply.json == {
        'error': 'tasks[3]: priority must be an integer between 1 and 10', 'index': 3}, reply
    bad[3], bad[5] = dict(tasks[3]), {'url': NEVER}
    reply = api.post('/v1/tasks/batch', {'tasks': bad})
    assert reply.json == {'error': 'tasks[5]: Unknown field: url', 'index': 5}, reply
    assert api.list()['pagination']['total'] == 0
    for body, message in BATCH_ERRORS:
        reply = api.post('/v1/tasks/batch', body)
        assert reply.status == 400 and reply.error == message, (str(body)[:80], reply)
    assert api.list()['pagination']['total'] == 0
    assert read.post('/v1/tasks/batch', {'tasks': tasks}).status == 403
    # 201 with every task, in order, stored
    reply = api.post('/v1/tasks/batch', {'tasks': tasks}, headers={'Idempotency-Key': 'imp-1'})
    assert reply.status == 201, reply
    made = reply.json['tasks']
    assert [t['targetUrl'] for t in made] == [t['targetUrl'] for t in tasks]
    assert [t['labels'] for t in made] == [t['labels'] for t in tasks]
    assert all(t['status'] == 'delayed' for t in made)
    assert [api.get('/v1/tasks/%s' % t['id']).json['task'] for t in made] == made
    assert [t['id'] for t in api.list(sortOrder='asc')['tasks']] == [t['id'] for t in made]
    # the key replays the answer (200, the same tasks as they are now), whatever the body
    again = api.post('/v1/tasks/batch', {'tasks': tasks[:2]}, headers={'Idempotency-Key': 'imp-1'})
    assert again.status == 200 and again.json['tasks'] == made, again
    # a key of single creates is another namespace
    single = api.post('/v1/tasks', tasks[0], headers={'Idempotency-Key': 'imp-1'})
    assert single.status == 201
    assert api.list()['pagination']['total'] == 7
    # a thousand tasks in one transaction
    big = [dict(targetUrl=NEVER + '/big/%d' % i, delayUntil=FAR) for i in range(1000)]
    reply = api.post('/v1/tasks/batch', {'tasks': big})
    assert reply.status == 201 and len(reply.json['tasks']) == 1000
    assert len({t['id'] for t in reply.json['tasks']}) == 1000
    assert api.list(targetUrl=NEVER + '/big/')['pagination']['total'] == 1000


def test_batch_key_race_creates_one_batch():
    """Twelve batches sent at once with one Idempotency-Key over the
    protocol: one 201, eleven 200 with the same tasks, the tasks once."""
    broker = aqtest.start_broker()
    cli = broker.client(key=broker.new_key('race-%s' % s_tag()))
    body = {'batch': {'tasks': [{'targetUrl': NEVER, 'delayUntil': FAR}] * 5}, 'idem': 'race'}
    replies = cli.pipeline([('TASK_BATCH', body)] * 12)
    statuses = sorted(r['status'] for r in replies)
    assert statuses == [200] * 11 + [201], statuses
    ids = {tuple(t['id'] for t in r['body']['tasks']) for r in replies}
    assert len(ids) == 1, ids
    listed = cli.call('TASK_LIST', {})
    assert listed['body']['pagination']['total'] == 5


# ---------------------------------------------------------------------------
# Bulk retry and cancel

BULK_ERRORS = [
    ({'action': 'delete', 'ids': []}, 'action must be one of: cancel, retry'),
    ({'filter': {}}, 'action must be one of: cancel, retry'),
    ({'action': 'retry'}, 'filter or ids is required'),
    ({'action': 'retry', 'filter': {}, 'ids': ['x']}, 'filter and ids cannot be used together'),
    ({'action': 'retry', 'ids': []}, 'ids must be an array of 1 to 1000 task ids'),
    ({'action': 'retry', 'ids': ['not-an-id']}, 'ids must be an array of 1 to 1000 task ids'),
    ({'action': 'retry', 'filter': {'label': 'a:b'}}, 'Unknown field: filter.label'),
    ({'action': 'retry', 'filter': {'status': 'done'}},
     'filter.status must be one of: pending, delayed, processing, waiting, polling, completed, '
     'failed, timeout, cancelled'),
    ({'action': 'retry', 'filter': {'labels': {'a': 1}}}, 'filter.labels must be an object of strings'),
    ({'action': 'retry', 'filter': {'targetUrl': 'x'}},
     'filter.targetUrl must be a URL prefix with a host and a /, such as https://api.example.com/'),
    ({'action': 'retry', 'filter': 7}, 'filter must be an object'),
    ({'action': 'retry', 'ids': ['x'], 'why': 1}, 'Unknown field: why'),
]


def s_bulk_done(api, bulk_id, timeout=30.0):
    def check():
        job = api.get('/v1/bulk/%s' % bulk_id).json['bulk']
        return job if job['status'] == 'completed' else None
    return wait_until(check, timeout, 'bulk job %s to complete' % bulk_id, interval=0.05)


def test_bulk_cancel_by_filter_and_by_ids():
    target = aqtest.start_target()
    aq = aqtest.start_allinone(workers=1)
    api, other = s_team(aq, 'bulk'), s_team(aq, 'other')
    read = s_Http(aq.port, aq.new_key(api.team, scope='read'))
    for body, message in BULK_ERRORS:
        reply = api.post('/v1/tasks/bulk', body)
        assert reply.status == 400 and reply.error == message, (body, reply)
    later = [api.create(targetUrl=NEVER, delayUntil=FAR, labels={'job': 'nightly'})
             for _ in range(25)]
    ran = api.create(targetUrl=target.url('/ok/ran'), labels={'job': 'nightly'})
    wait_until(lambda: api.get('/v1/tasks/%s' % ran['id']).json['task']['status'] == 'completed',
               10, 'the call')
    keep = api.create(targetUrl=NEVER, delayUntil=FAR, labels={'job': 'weekly'})
    theirs = other.create(targetUrl=NEVER, delayUntil=FAR, labels={'job': 'nightly'})
    assert read.post('/v1/tasks/bulk', {'action': 'cancel', 'ids': [keep['id']]}).status == 403
    reply = api.post('/v1/tasks/bulk', {'action': 'cancel', 'filter': {'labels': {'job': 'nightly'}}})
    assert reply.status == 202, reply
    job = reply.json['bulk']
    assert job['action'] == 'cancel' and job['status'] == 'running' and job['matched'] == 26, job
    assert job['filter'] == {'labels': {'job': 'nightly'}}
    assert other.get('/v1/bulk/%s' % job['id']).status == 404
    assert other.get('/v1/bulk/%s' % job['id']).error == 'Bulk job not found'
    done = s_bulk_done(read, job['id'])
    assert (done['matched'], done['done'], done['failed']) == (26, 25, 1), done
    assert 'completedAt' in done and 'matchedExact' not in done
    assert all(api.get('/v1/tasks/%s' % t['id']).json['task']['status'] == 'cancelled'
               for t in later)
    assert api.get('/v1/tasks/%s' % keep['id']).json['task']['status'] == 'delayed'
    assert other.get('/v1/tasks/%s' % theirs['id']).json['task']['status'] == 'delayed'
    # by ids: one delayed, one completed, one unknown, one of the other team; twice given
    gone = '01a2ffff-0000-7000-8000-000000000000'
    ids = [keep['id'], ran['id'], gone, theirs['id'], keep['id']]
    reply = api.post('/v1/tasks/bulk', {'action': 'cancel', 'ids': ids})
    assert reply.status == 202 and reply.json['bulk']['matched'] == 4 and \
        reply.json['bulk']['ids'] == 4, reply
    done = s_bulk_done(api, reply.json['bulk']['id'])
    assert (done['matched'], done['done'], done['failed']) == (4, 1, 3), done
    assert api.get('/v1/tasks/%s' % keep['id']).json['task']['status'] == 'cancelled'
    assert other.get('/v1/tasks/%s' % theirs['id']).json['task']['status'] == 'delayed'
    assert api.get('/v1/bulk/01a2ffff-0000-7000-8000-000000000000').status == 404


@aqtest.timeout(240)
def test_bulk_retry_progress_and_resume_after_kill9():
    """A bulk retry of 30,000 failed tasks: GET shows it running part way,
    the broker is killed (-9) in the middle, and after the restart the job
    goes on from where its last turn committed and ends with exactly every
    task retried once. The filter names no status, so a job that started
    over would meet the tasks it retried already (pending now) and count
    them in failed."""
    count = 30000
    broker = aqtest.start_broker()
    team = 'bulk-%s' % s_tag()
    key = broker.new_key(team)
    s_fill(broker, team, count, '--label', 'outage:2026-12-01')
    s_fill(broker, team, 500, '--label', 'outage:other')
    gateway = aqtest.start_gateway(broker)
    api = s_Http(gateway.port, key)
    filter_ = {'labels': {'outage': '2026-12-01'}}
    reply = api.post('/v1/tasks/bulk', {'action': 'retry', 'filter': filter_})
    assert reply.status == 202 and reply.json['bulk']['matched'] == count, reply
    bulk_id = reply.json['bulk']['id']
    seen = []

    def part_way():
        job = api.get('/v1/bulk/%s' % bulk_id).json['bulk']
        seen.append(job['done'])
        return job if 0 < job['done'] < count // 2 else None
    job = wait_until(part_way, 60, 'the job part way', interval=0.01)
    assert job['status'] == 'running' and job['failed'] == 0, job
    broker.kill9()
    broker.restart()
    after = api.get('/v1/bulk/%s' % bulk_id)
    assert after.status == 200 and after.json['bulk']['done'] >= job['done'], after
    done = s_bulk_done(api, bulk_id, timeout=180)
    assert (done['matched'], done['done'], done['failed']) == (count, count, 0), done
    assert api.list(label='outage:2026-12-01', status='failed')['pagination']['total'] == 0
    assert api.list(label='outage:2026-12-01', status='pending')['pagination']['total'] == count
    assert api.list(label='outage:other', status='failed')['pagination']['total'] == 500
    task = api.list(label='outage:2026-12-01', limit=1)['tasks'][0]
    assert task['status'] == 'pending' and task['retryCount'] == 0 and 'error' not in task, task
    aqtest.notes.append('done seen while running: %s' % sorted(set(seen))[:8])


def test_aqctl_batch_list_bulk():
    """aqctl task batch FILE, task list with filters, task bulk, bulk get."""
    aq = aqtest.start_allinone(workers=0)
    team = 'ctl-%s' % s_tag()
    key = aq.new_key(team)
    path = os.path.join(aqtest.tmpdir(), 'batch.json')
    with open(path, 'w') as f:
        json.dump([{'targetUrl': NEVER + '/%d' % i, 'delayUntil': FAR,
                    'labels': {'env': 'prod' if i % 2 else 'dev', 'n': str(i)}} for i in range(7)], f)
    made = json.loads(aq.aqctl('--key', key, '--json', 'task', 'batch', path,
                               '--idempotency-key', 'ctl-1'))
    assert [t['labels']['n'] for t in made] == [str(i) for i in range(7)]
    again = json.loads(aq.aqctl('--key', key, '--json', 'task', 'batch', path,
                                '--idempotency-key', 'ctl-1'))
    assert [t['id'] for t in again] == [t['id'] for t in made]
    page = json.loads(aq.aqctl('--key', key, '--json', 'task', 'list', '--label', 'env:prod',
                               '--label', 'n:3', '--target-url', NEVER + '/', '--sort', 'asc'))
    assert [t['id'] for t in page['tasks']] == [made[3]['id']] and page['pagination']['total'] == 1
    job = json.loads(aq.aqctl('--key', key, '--json', 'task', 'bulk', 'cancel', '--label',
                              'env:prod', '--status', 'delayed'))
    assert job['status'] == 'running' and job['matched'] == 3, job
    assert job['filter'] == {'status': 'delayed', 'labels': {'env': 'prod'}}
    wait_until(lambda: json.loads(aq.aqctl('--key', key, '--json', 'bulk', 'get', job['id']))
               ['status'] == 'completed', 10, 'the bulk job')
    done = json.loads(aq.aqctl('--key', key, '--json', 'bulk', 'get', job['id']))
    assert (done['done'], done['failed']) == (3, 0), done
    by_ids = json.loads(aq.aqctl('--key', key, '--json', 'task', 'bulk', 'cancel', '--ids',
                                 '%s,%s' % (made[0]['id'], made[1]['id'])))
    assert by_ids['matched'] == 2 and by_ids['ids'] == 2
    out = aq.aqctl('--key', key, 'bulk', 'get', '01a2ffff-0000-7000-8000-000000000000', check=False)
    assert out == ''
    bad = subprocess.run([aqtest.binary('aqctl'), '--data', aq.data, '--key', key, 'task', 'bulk',
                          'retry', '--label', 'nocolon'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30)
    assert bad.returncode == 2 and b"--label 'nocolon' is not NAME:VALUE" in bad.stderr
