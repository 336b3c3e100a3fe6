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
    api = s_Http(aq.port, aq.new_key('%s-%08x' % (name, random.randrange(1 << 32))))
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
            task = api.create(**body)
            made.append((task, dict(status=status_of[kind], env=env, region=region, url=url,
                                    provider=body.get('provider'), wave=wave)))
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
        ({'flowControlKey': 'fal-prod'}, lambda f: False),
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
