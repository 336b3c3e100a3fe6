"""test_api.py - process tests of the REST API (issue 3), over real HTTP

The all-in-one `asyncqueue` (broker + gateway + workers in one process,
--allow-private-targets, a free port, data in the test's tmp dir) with the
real aq-target as callback target; where a test needs gateway flags the
all-in-one does not take (--deadline) or two gateways in front of one
broker, separate aq-broker, aq-gateway and aq-worker processes.

Every message, default and status below is the contract of seed 000, seed
001 and SPEC sections 3 and 7; docs/api.md documents the same strings and
test_docs_cover_every_message keeps the two in step.
"""

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import os
import random
import re
import select
import shlex
import shutil
import socket
import subprocess
import threading
import time
import uuid
import weakref

import aqtest
from aqtest import now_ms, parse_iso, wait_until

SEEDS = os.path.join(os.path.dirname(aqtest.ROOT), 'shared', 'seeds')
DOCS = os.path.join(aqtest.ROOT, 'docs')
NODE_DIR = os.path.join(aqtest.ROOT, 'tests', 'node')
FAR = '2099-01-01T00:00:00.000Z'   # a delayUntil that never comes during a test
ISO_MS = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
RATE_LIMITED = 'Rate limit exceeded. Upgrade your plan for higher limits.'
TERMINAL = aqtest.TERMINAL


# ---------------------------------------------------------------------------
# HTTP helpers

s_Reply = aqtest.HttpReply


class s_Http(aqtest.HttpClient):
    """aqtest.HttpClient with /v1/tasks helpers."""

    def create(self, **task):
        reply = self.post('/v1/tasks', task)
        assert reply.status == 201, 'POST /v1/tasks %r -> %r' % (task, reply)
        return reply.json['task']

    def task(self, task_id, wait=None):
        path = '/v1/tasks/%s' % task_id + ('?wait=%d' % wait if wait is not None else '')
        reply = self.get(path)
        assert reply.status == 200, 'GET %s -> %r' % (path, reply)
        return reply.json['task']

    def wait_status(self, task_id, statuses, timeout=15.0):
        """The task once its status is in statuses, by long polls."""
        statuses = {statuses} if isinstance(statuses, str) else set(statuses)
        deadline = time.monotonic() + timeout
        task = self.task(task_id)
        while task['status'] not in statuses:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('task %s not %s after %gs: %s'
                                     % (task_id, '/'.join(sorted(statuses)), timeout, task))
            task = self.task(task_id, wait=max(1, min(5, int(left))))
            aqtest.check_processes()
        return task


_unread = weakref.WeakKeyDictionary()   # socket -> bytes received past the last response


def s_read_response(sock, timeout=5.0):
    """(status, headers, body) of one HTTP/1.1 response read from a raw
    socket (Content-Length framing), or None when the peer closes first.
    Bytes of the next responses (pipelining) are kept for the next call."""
    sock.settimeout(timeout)
    data = _unread.pop(sock, b'')
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get('content-length', '0'))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    if rest[length:]:
        _unread[sock] = rest[length:]
    return status, headers, rest[:length]


def s_request_bytes(method, path, key=None, body=b'', headers=None, length=None):
    lines = ['%s %s HTTP/1.1' % (method, path), 'Host: 127.0.0.1']
    if key:
        lines.append('Authorization: Bearer %s' % key)
    for name, value in (headers or {}).items():
        lines.append('%s: %s' % (name, value))
    if body or length is not None:
        lines.append('Content-Type: application/json')
        lines.append('Content-Length: %d' % (len(body) if length is None else length))
    return ('\r\n'.join(lines) + '\r\n\r\n').encode() + body


def s_connect(port):
    return socket.create_connection(('127.0.0.1', port), timeout=5)


def s_closed(sock, timeout):
    """True once the peer closes (or resets) sock within timeout seconds
    (0: only what has arrived already). Data that arrives is discarded."""
    deadline = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            try:
                if not sock.recv(65536):
                    return True
            except OSError:
                return True
        elif time.monotonic() >= deadline:
            return False


# ---------------------------------------------------------------------------
# Setup helpers

def s_tag():
    return '%08x' % random.randrange(1 << 32)


def s_setup(extra=(), workers=None):
    """target, all-in-one server, and a keep-alive client with a fresh team's key."""
    target = aqtest.start_target()
    aq = aqtest.start_allinone(extra=extra, workers=workers)
    return target, aq, s_team_api(aq, 'team')


def s_split(workers=1, gateways=1, gateway_extra=()):
    """Separate processes: aq-broker, aq-worker(s) and aq-gateway(s)."""
    broker = aqtest.start_broker()
    if workers:
        aqtest.start_workers(broker, workers)
    return broker, [aqtest.start_gateway(broker, extra=gateway_extra) for _ in range(gateways)]


def s_team_api(aq, prefix='other'):
    """A keep-alive client with the key of a fresh team (.team is its name)."""
    team = '%s-%s' % (prefix, s_tag())
    api = s_Http(aq.port, aq.new_key(team))
    api.team = team
    return api


def s_delayed(api, **extra):
    task = dict(targetUrl='http://127.0.0.1:9/never', delayUntil=FAR)
    task.update(extra)
    return api.create(**task)


# ---------------------------------------------------------------------------
# Validation (seed 000, SPEC 3)

def s_jansson_column(text):
    """(line, column) jansson reports for invalid JSON text, from the
    installed libjansson itself (the flags the gateway uses)."""
    lib = ctypes.CDLL(ctypes.util.find_library('jansson') or 'libjansson.so.4')

    class Error(ctypes.Structure):
        _fields_ = [('line', ctypes.c_int), ('column', ctypes.c_int), ('position', ctypes.c_int),
                    ('source', ctypes.c_char * 80), ('text', ctypes.c_char * 160)]
    lib.json_loadb.restype = ctypes.c_void_p
    lib.json_loadb.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t,
                               ctypes.POINTER(Error)]
    error = Error()
    data = text.encode('utf-8') if isinstance(text, str) else text
    JSON_REJECT_DUPLICATES, JSON_DECODE_ANY = 0x1, 0x4
    assert lib.json_loadb(data, len(data), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                          ctypes.byref(error)) is None, 'jansson parsed %r' % text
    return error.line, error.column


URL = 'https://api.example.com/webhook'
VALIDATION = [
    # (request body, message)
    ({}, 'targetUrl is required'),
    ({'method': 'GET'}, 'targetUrl is required'),
    ({'targetUrl': None}, 'targetUrl is required'),
    ({'targetUrl': 'ftp://api.example.com/x'}, 'targetUrl must be a valid HTTP/HTTPS URL'),
    ({'targetUrl': 'not a url'}, 'targetUrl must be a valid HTTP/HTTPS URL'),
    ({'targetUrl': 'http://'}, 'targetUrl must be a valid HTTP/HTTPS URL'),
    ({'targetUrl': 42}, 'targetUrl must be a valid HTTP/HTTPS URL'),
    ({'targetUrl': URL, 'method': 'PATCH'}, 'method must be one of: GET, POST, PUT, DELETE'),
    ({'targetUrl': URL, 'method': 5}, 'method must be one of: GET, POST, PUT, DELETE'),
    ({'targetUrl': URL, 'maxRetries': 11}, 'maxRetries must be a number between 0 and 10'),
    ({'targetUrl': URL, 'maxRetries': -1}, 'maxRetries must be a number between 0 and 10'),
    ({'targetUrl': URL, 'maxRetries': '3'}, 'maxRetries must be a number between 0 and 10'),
    ({'targetUrl': URL, 'priority': 0}, 'priority must be an integer between 1 and 10'),
    ({'targetUrl': URL, 'priority': 11}, 'priority must be an integer between 1 and 10'),
    ({'targetUrl': URL, 'priority': 5.5}, 'priority must be an integer between 1 and 10'),
    ({'targetUrl': URL, 'delayUntil': 'tomorrow'}, 'delayUntil must be a valid ISO 8601 date'),
    ({'targetUrl': URL, 'delayUntil': 1705314600000}, 'delayUntil must be a valid ISO 8601 date'),
    ({'targetUrl': URL, 'delayUntil': '2024-13-45T99:00:00Z'},
     'delayUntil must be a valid ISO 8601 date'),
    ({'targetUrl': URL, 'timeout': 0}, 'timeout must be a number between 1 and 300'),
    ({'targetUrl': URL, 'timeout': 301}, 'timeout must be a number between 1 and 300'),
    ({'targetUrl': URL, 'maxWaitTime': 0}, 'maxWaitTime must be a number between 1 and 86400'),
    ({'targetUrl': URL, 'maxWaitTime': 86401}, 'maxWaitTime must be a number between 1 and 86400'),
    ({'targetUrl': URL, 'retryBackoff': 'random'},
     'retryBackoff must be one of: linear, exponential, fixed, exponential_jitter'),
    ({'targetUrl': URL, 'retryBackoff': 'Linear'},
     'retryBackoff must be one of: linear, exponential, fixed, exponential_jitter'),
    ({'targetUrl': URL, 'headers': ['a']}, 'headers must be an object of strings'),
    ({'targetUrl': URL, 'headers': {'X-Count': 1}}, 'headers must be an object of strings'),
    ({'targetUrl': URL, 'headers': 'X-A: b'}, 'headers must be an object of strings'),
    ({'targetUrl': URL, 'headers': {'Bad Name': 'x'}}, 'headers must have valid HTTP header names'),
    ({'targetUrl': URL, 'headers': {'X-A': 'a\r\nX-Injected: 1'}},
     'headers must not contain CR, LF or NUL characters'),
    ({'targetUrl': URL, 'body': {'action': 'process'}}, 'body must be a string'),
    ({'targetUrl': URL, 'body': 5}, 'body must be a string'),
    ({'targetUrl': URL, 'onCompleteUrl': 'ftp://x/done'},
     'onCompleteUrl must be a valid HTTP/HTTPS URL'),
    ({'targetUrl': URL, 'onCompleteUrl': 'done'}, 'onCompleteUrl must be a valid HTTP/HTTPS URL'),
    ({'targetUrl': URL, 'delayuntil': '2030-01-01T00:00:00Z'}, 'Unknown field: delayuntil'),
    ({'TargetUrl': URL}, 'Unknown field: TargetUrl'),
]
NOT_OBJECT = 'Request body must be a JSON object'
BAD_JSON = [
    # raw bodies: (text, (line, column) jansson gives, checked against libjansson too)
    ('{"targetUrl": abc}', (1, 17)),             # SPEC 3's example column
    ('{"targetUrl": "https://x"', (1, 25)),
    ('{"targetUrl": "https://x",}', (1, 27)),
    ('{\n  "targetUrl": "https://x",\n  "maxRetries": 3,\n}', (4, 1)),
    ('{"targetUrl": "https://x", "targetUrl": "https://y"}', (1, 38)),   # duplicate key
    ("{'targetUrl': 'https://x'}", (1, 2)),
    ('{"priority": 08}', (1, 14)),
]


def test_validation_messages_verbatim():
    target, aq, api = s_setup()
    for body, message in VALIDATION:
        reply = api.post('/v1/tasks', body)
        assert reply.status == 400 and reply.json == {'error': message}, \
            'POST %s -> %r, expected 400 {"error": "%s"}' % (json.dumps(body), reply, message)
        assert reply.headers.get('content-type', '').startswith('application/json'), reply.headers
    for text, where in BAD_JSON:
        assert s_jansson_column(text) == where, \
            'libjansson puts %r at %r, the table says %r' % (text, s_jansson_column(text), where)
        reply = api.post('/v1/tasks', text)
        expected = 'Invalid JSON at line %d, column %d' % where
        assert reply.status == 400 and reply.json == {'error': expected}, \
            'POST %r -> %r, expected %s' % (text, reply, expected)
    for text in ('[1, 2]', '"https://x"', '42', 'null', '', '   '):
        reply = api.post('/v1/tasks', text)
        assert reply.status == 400 and reply.json == {'error': NOT_OBJECT}, \
            'POST %r -> %r' % (text, reply)
    reply = api.post('/v1/tasks', {'targetUrl': URL, 'provider': 'nosuch'})
    assert reply.status == 400 and reply.error.startswith('Unknown provider: nosuch'), reply
    # none of them created anything
    listed = api.get('/v1/tasks')
    assert listed.status == 200 and listed.json['pagination']['total'] == 0, listed


def test_create_defaults_in_201_body():
    target, aq, api = s_setup()
    before = now_ms()
    reply = api.post('/v1/tasks', {'targetUrl': target.url('/sleep/400/defaults')})
    after = now_ms()
    assert reply.status == 201, reply
    assert reply.headers.get('content-type', '').startswith('application/json'), reply.headers
    assert list(reply.json) == ['task'], reply
    task = reply.json['task']
    expected = {'method': 'POST', 'headers': {}, 'maxWaitTime': 30, 'timeout': 30,
                'maxRetries': 3, 'retryCount': 0, 'retryBackoff': 'exponential',
                'priority': 5, 'status': 'pending', 'targetUrl': target.url('/sleep/400/defaults')}
    for name, value in expected.items():
        assert task.get(name) == value, '%s is %r, expected %r: %s' % (name, task.get(name), value, task)
    assert aqtest.is_uuid(task['id']) and aqtest.is_uuid(task['teamId']), task
    assert ISO_MS.match(task['createdAt']), task['createdAt']
    assert before - 1000 <= parse_iso(task['createdAt']) <= after + 1000, task['createdAt']
    unset = {'body', 'delayUntil', 'onCompleteUrl', 'provider', 'pollConfig', 'result', 'error',
             'startedAt', 'completedAt', 'nextAttemptAt'}
    assert not unset & set(task), 'unset optional fields in the 201 body: %s' % (unset & set(task))
    assert set(task) == set(expected) | {'id', 'teamId', 'createdAt'}, sorted(task)

    # the seed's full example request: every field echoed as given
    seed = {'targetUrl': target.url('/ok/seed-example'), 'method': 'POST',
            'headers': {'Authorization': 'Bearer service-token'},
            'body': '{"action": "process", "data": {"id": 123}}', 'maxRetries': 3,
            'retryBackoff': 'exponential', 'priority': 8,
            'onCompleteUrl': target.url('/ok/task-complete')}
    full = api.create(**seed)
    for name, value in seed.items():
        assert full.get(name) == value, '%s: %r != %r' % (name, full.get(name), value)
    seed_keys = {'id', 'teamId', 'status', 'targetUrl', 'method', 'headers', 'body',
                 'maxWaitTime', 'timeout', 'maxRetries', 'retryCount', 'retryBackoff',
                 'priority', 'onCompleteUrl', 'createdAt'}   # the seed's example response
    assert set(full) == seed_keys, 'keys %s, the seed shows %s' % (sorted(full), sorted(seed_keys))

    # delayUntil in the future: delayed, normalized to ISO with ms
    delayed = api.create(targetUrl=target.url('/ok/later'), delayUntil='2099-01-01T00:00:00Z',
                         method='get', timeout=300, maxWaitTime=86400, maxRetries=0,
                         retryBackoff='linear', priority=10)
    assert delayed['status'] == 'delayed' and delayed['delayUntil'] == FAR, delayed
    assert delayed['method'] == 'GET' and delayed['timeout'] == 300, delayed
    assert delayed['priority'] == 10 and delayed['maxWaitTime'] == 86400, delayed
    # a past delayUntil runs now
    past = api.create(targetUrl=target.url('/ok/past'), delayUntil='2020-01-01T00:00:00.000Z')
    assert past['status'] == 'pending' and past['delayUntil'] == '2020-01-01T00:00:00.000Z', past

    # GET shows the same record; once completed it has result and times
    got = api.task(task['id'])
    assert got['id'] == task['id'] and got['createdAt'] == task['createdAt'], got
    done = api.wait_status(task['id'], TERMINAL)
    assert done['status'] == 'completed', done
    result = done.get('result') or {}
    assert result.get('statusCode') == 200 and isinstance(result.get('duration'), int), done
    assert isinstance(result.get('headers'), dict) and isinstance(result.get('body'), str), done
    for name in ('createdAt', 'startedAt', 'completedAt'):
        assert ISO_MS.match(done.get(name) or ''), '%s: %r' % (name, done.get(name))
    assert 'error' not in done and 'nextAttemptAt' not in done, done


# ---------------------------------------------------------------------------
# Auth (seed 000, SPEC 7)

ENDPOINTS = [
    # (method, path template, body, writes)
    ('POST', '/v1/tasks', {'targetUrl': URL, 'delayUntil': FAR}, True),
    ('GET', '/v1/tasks', None, False),
    ('GET', '/v1/tasks/{id}', None, False),
    ('GET', '/v1/tasks/{id}?wait=1', None, False),
    ('POST', '/v1/tasks/{id}/cancel', None, True),
    ('GET', '/v1/tasks/{id}/attempts', None, False),
    ('POST', '/v1/tasks/{id}/retry', None, True),
    ('GET', '/metrics', None, False),
]


def test_auth_matrix_on_every_endpoint():
    target, aq, api = s_setup()
    team = api.team
    read_key = aq.new_key(team, scope='read')
    revoked_key = aq.new_key(team)
    other = s_team_api(aq)
    key_id = revoked_key.split('_')[1]
    keys = json.loads(aq.aqctl('--json', 'key', 'list', '--team', team))
    assert key_id in [k['id'] for k in keys], 'key id %s not in %s' % (key_id, keys)
    aq.aqctl('key', 'revoke', key_id)
    mine = s_delayed(api)
    theirs = s_delayed(other)

    wrong = aqtest.auth_matrix(
        api, ENDPOINTS, mine['id'], theirs['id'], read_key, other.key,
        invalid=('garbage', {'Authorization': 'Basic dXNlcjpwYXNz'}, api.key + 'x', revoked_key),
        missing=(None, {'Authorization': 'Bearer'}))
    assert not wrong, '%d answers wrong:\n  %s' % (len(wrong), '\n  '.join(wrong))
    # nothing above changed either task
    assert api.task(mine['id'])['status'] == 'delayed'
    assert other.task(theirs['id'])['status'] == 'delayed'
    # the owner can; "bearer" in any case
    reply = api.post('/v1/tasks/%s/cancel' % mine['id'], key=None,
                     headers={'Authorization': 'bearer ' + api.key})
    assert reply.status == 200 and reply.json['task']['status'] == 'cancelled', reply
    # lists are per team
    listed = api.get('/v1/tasks').json
    assert [t['id'] for t in listed['tasks']] == [mine['id']], listed
    # keys are hashed at rest: no key's secret part is in the store's files
    secrets = [k.split('_', 2)[2].encode() for k in (api.key, read_key, revoked_key, other.key)]
    assert all(len(s) >= 16 for s in secrets), 'unexpected key format: %s' % api.key
    for name in os.listdir(aq.data):
        path = os.path.join(aq.data, name)
        if os.path.isfile(path):
            with open(path, 'rb') as f:
                data = f.read()
            leaked = [s for s in secrets if s in data]
            assert not leaked, 'an API key secret is stored in clear in %s' % name


@aqtest.timeout(90)
def test_cross_team_id_swaps_all_404():
    target, aq, api = s_setup()
    other = s_team_api(aq)
    ids = {api.key: [s_delayed(api)['id'] for _ in range(20)],
           other.key: [s_delayed(other)['id'] for _ in range(20)]}
    rng = random.Random(4242)
    forms = [('GET', '/v1/tasks/%s'), ('GET', '/v1/tasks/%s/attempts'),
             ('POST', '/v1/tasks/%s/cancel'), ('POST', '/v1/tasks/%s/retry'),
             ('GET', '/v1/tasks/%s?wait=5')]
    wrong = []
    start = time.monotonic()
    for i in range(1000):
        owner, intruder = (api, other) if rng.random() < 0.5 else (other, api)
        method, form = rng.choice(forms)
        task_id = rng.choice(ids[owner.key])
        reply = intruder.call(method, form % task_id)
        if reply.status != 404 or reply.json != {'error': 'Task not found'}:
            wrong.append('%s %s -> %r' % (method, form % task_id, reply))
    elapsed = time.monotonic() - start
    assert not wrong, '%d of 1000 swaps not 404 "Task not found", e.g. %s' % (len(wrong), wrong[:3])
    # ids that are no task at all, or no UUID, are the same 404
    for bogus in (str(uuid.uuid4()), 'not-a-uuid', '0' * 32, ids[api.key][0][:-1]):
        reply = api.get('/v1/tasks/%s' % bogus)
        assert reply.status == 404 and reply.json == {'error': 'Task not found'}, (bogus, reply)
    for who in (api, other):
        page = who.get('/v1/tasks?status=delayed').json['pagination']
        assert page['total'] == 20, 'swaps changed tasks: %s' % page
    aqtest.notes.append('1000 swaps in %.1fs' % elapsed)


# ---------------------------------------------------------------------------
# Lists

def test_list_filters_pagination_and_sort():
    target, aq, api = s_setup()
    other = s_team_api(aq)
    s_delayed(other)
    created = [s_delayed(api, body='n%d' % i)['id'] for i in range(12)]
    cancelled = created[2:5]
    for task_id in cancelled:
        assert api.post('/v1/tasks/%s/cancel' % task_id).status == 200
    delayed = [i for i in created if i not in cancelled]

    def page(query):
        reply = api.get('/v1/tasks' + query)
        assert reply.status == 200, '%s -> %r' % (query, reply)
        assert set(reply.json) == {'tasks', 'pagination'}, reply
        return [t['id'] for t in reply.json['tasks']], reply.json['pagination']

    ids, pg = page('')
    assert pg == {'total': 12, 'limit': 50, 'offset': 0, 'hasMore': False}, pg
    assert ids == created[::-1], 'default order is not newest first'
    ids, pg = page('?sortOrder=asc')
    assert ids == created, 'sortOrder=asc is not oldest first'
    ids, pg = page('?sortOrder=desc')
    assert ids == created[::-1]
    ids, pg = page('?status=delayed')
    assert sorted(ids) == sorted(delayed) and pg['total'] == 9, (ids, pg)
    ids, pg = page('?status=cancelled&sortOrder=asc')
    assert ids == cancelled and pg == {'total': 3, 'limit': 50, 'offset': 0, 'hasMore': False}, pg
    ids, pg = page('?status=pending')
    assert ids == [] and pg['total'] == 0 and pg['hasMore'] is False, pg
    ids, pg = page('?status=delayed&limit=5&sortOrder=asc')
    assert ids == delayed[:5] and pg == {'total': 9, 'limit': 5, 'offset': 0, 'hasMore': True}, pg
    ids, pg = page('?status=delayed&limit=5&offset=5&sortOrder=asc')
    assert ids == delayed[5:] and pg == {'total': 9, 'limit': 5, 'offset': 5, 'hasMore': False}, pg
    ids, pg = page('?limit=5&offset=20')
    assert ids == [] and pg == {'total': 12, 'limit': 5, 'offset': 20, 'hasMore': False}, pg
    ids, pg = page('?limit=100')
    assert len(ids) == 12 and pg['limit'] == 100, pg
    walked = []
    for offset in range(0, 12, 4):
        ids, pg = page('?limit=4&offset=%d' % offset)
        walked += ids
        assert pg['hasMore'] == (offset + 4 < 12), pg
    assert walked == created[::-1], 'pages overlap or skip'
    seed = api.get('/v1/tasks?status=pending&limit=10')     # the seed's example query
    assert seed.status == 200 and seed.json['pagination']['limit'] == 10, seed
    listed = api.get('/v1/tasks?limit=1').json['tasks'][0]
    assert listed == api.task(listed['id']), 'a listed task differs from GET'

    bad = [('?limit=101', 'limit must be a number between 1 and 100'),
           ('?limit=0', 'limit must be a number between 1 and 100'),
           ('?limit=ten', 'limit must be a number between 1 and 100'),
           ('?offset=-1', 'offset must be a non-negative number'),
           ('?sortOrder=up', 'sortOrder must be one of: asc, desc'),
           ('?status=done', 'status must be one of: pending, delayed, processing, waiting, '
                            'polling, completed, failed, timeout, cancelled'),
           ('?page=2', 'Unknown query parameter: page'),
           ('?limit=5&limit=6', 'Duplicate query parameter: limit')]
    for query, message in bad:
        reply = api.get('/v1/tasks' + query)
        assert reply.status == 400 and reply.json == {'error': message}, (query, reply)


# ---------------------------------------------------------------------------
# Long poll

def s_poll_in_thread(port, key, task_id, wait):
    """Starts a long poll on its own connection; returns (thread, box)
    where box gets 'reply' and 'at' (time.monotonic of the answer)."""
    box = {}

    def run():
        http = s_Http(port, key)
        box['sent'] = time.monotonic()
        try:
            box['reply'] = http.get('/v1/tasks/%s?wait=%d' % (task_id, wait))
        except Exception as e:  # reported by the caller
            box['reply'] = e
        box['at'] = time.monotonic()
        http.close()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_long_poll_returns_on_change_timeout_and_terminal():
    target, aq, api = s_setup()
    # 1. a status change from another connection (cancel): the poll answers at once
    task = s_delayed(api)
    thread, box = s_poll_in_thread(aq.port, api.key, task['id'], 20)
    time.sleep(0.5)
    assert 'reply' not in box, 'the long poll answered before any change: %r' % box.get('reply')
    cancel = api.post('/v1/tasks/%s/cancel' % task['id'])
    cancelled_at = time.monotonic()
    assert cancel.status == 200, cancel
    thread.join(5)
    reply = box.get('reply')
    assert isinstance(reply, s_Reply) and reply.status == 200, reply
    assert reply.json['task']['status'] == 'cancelled', reply
    lag = (box['at'] - cancelled_at) * 1000
    assert lag <= 100, 'long poll answered %.0f ms after the cancel' % lag

    # 2. the broker's own change (delayUntil comes): within 100 ms of it
    due = now_ms() + 1200
    task = api.create(targetUrl=target.url('/ok/poll-due'), delayUntil=aqtest.iso(due))
    assert task['status'] == 'delayed', task
    reply = api.get('/v1/tasks/%s?wait=10' % task['id'])
    arrived = now_ms()
    assert reply.status == 200 and reply.json['task']['status'] != 'delayed', reply
    assert due - 50 <= arrived <= due + 100, \
        'long poll answered %.0f ms after delayUntil (status %s)' % (arrived - due,
                                                                     reply.json['task']['status'])

    # 3. nothing changes: the current state after N seconds
    task = s_delayed(api)
    reply = api.get('/v1/tasks/%s?wait=2' % task['id'])
    assert reply.status == 200 and reply.json['task']['status'] == 'delayed', reply
    assert 1.9 <= reply.elapsed <= 2.6, 'wait=2 answered after %.2fs' % reply.elapsed

    # 4. terminal already: at once
    api.post('/v1/tasks/%s/cancel' % task['id'])
    reply = api.get('/v1/tasks/%s?wait=20' % task['id'])
    assert reply.status == 200 and reply.json['task']['status'] == 'cancelled', reply
    assert reply.elapsed < 0.3, 'terminal task held %.2fs' % reply.elapsed
    # wait=0 is an instant answer; out of range is a 400
    task = s_delayed(api)
    reply = api.get('/v1/tasks/%s?wait=0' % task['id'])
    assert reply.status == 200 and reply.elapsed < 0.3, reply
    for wait in ('26', '-1', 'abc', '2.5', '1000'):
        reply = api.get('/v1/tasks/%s?wait=%s' % (task['id'], wait))
        assert reply.status == 400 and reply.json == {
            'error': 'wait must be a number between 0 and 25'}, (wait, reply)


def test_long_polls_do_not_block_others():
    target, aq, api = s_setup()
    task = s_delayed(api)
    polls = [s_poll_in_thread(aq.port, api.key, task['id'], 3) for _ in range(60)]
    time.sleep(0.5)
    start = time.monotonic()
    for _ in range(5):
        health = api.get('/healthz', key=None)
        assert health.status == 200 and health.json == {'status': 'ok', 'broker': 'ok'}, health
        got = api.get('/v1/tasks/%s' % task['id'])
        assert got.status == 200 and got.elapsed < 0.5, got
    assert time.monotonic() - start < 2.0, 'requests beside 60 long polls took %.2fs' % (
        time.monotonic() - start)
    assert all('reply' not in box for _, box in polls), 'a long poll answered early'
    for thread, box in polls:
        thread.join(10)
        assert isinstance(box.get('reply'), s_Reply) and box['reply'].status == 200, box
        assert box['reply'].json['task']['status'] == 'delayed'


# ---------------------------------------------------------------------------
# Idempotency

def s_race(ports, key, idem, body):
    """Sends the same POST on len(ports) fresh connections as close together
    as possible; returns the parsed responses."""
    request = s_request_bytes('POST', '/v1/tasks', key, json.dumps(body).encode(),
                              {'Idempotency-Key': idem})
    socks = [s_connect(port) for port in ports]
    for sock in socks:       # everything is connected before the first byte goes out
        sock.sendall(request)
    replies = []
    for sock in socks:
        reply = s_read_response(sock, timeout=15)
        sock.close()
        assert reply is not None, 'a racing POST got no answer'
        status, headers, data = reply
        replies.append((status, json.loads(data)))
    return replies


def s_check_race(replies, what):
    statuses = sorted(status for status, _ in replies)
    assert statuses == [200] * (len(replies) - 1) + [201], \
        '%s: statuses %s, expected one 201 and %d 200' % (what, statuses, len(replies) - 1)
    ids = {body['task']['id'] for _, body in replies}
    assert len(ids) == 1, '%s: %d different tasks: %s' % (what, len(ids), sorted(ids))
    return ids.pop()


def test_idempotency_key_race_creates_one_task():
    target, aq, api = s_setup()
    body = {'targetUrl': URL, 'delayUntil': FAR, 'body': 'order-12345'}
    task_id = s_check_race(s_race([aq.port] * 20, api.key, 'order-12345', body), '20 racing POSTs')
    listed = api.get('/v1/tasks').json
    assert listed['pagination']['total'] == 1, 'idempotency race left %s' % listed
    # later repeats: 200 and the same task, even with another body
    again = api.post('/v1/tasks', dict(body, priority=9), headers={'Idempotency-Key': 'order-12345'})
    assert again.status == 200 and again.json['task']['id'] == task_id, again
    assert again.json['task'].get('priority') == 5, 'the repeat changed the task: %r' % again
    # another key, or no key, is another task; the same key in another team too
    fresh = api.post('/v1/tasks', body, headers={'Idempotency-Key': 'order-12346'})
    assert fresh.status == 201 and fresh.json['task']['id'] != task_id, fresh
    plain = api.post('/v1/tasks', body)
    assert plain.status == 201 and plain.json['task']['id'] != task_id, plain
    other = s_team_api(aq)
    theirs = other.post('/v1/tasks', body, headers={'Idempotency-Key': 'order-12345'})
    assert theirs.status == 201 and theirs.json['task']['id'] != task_id, theirs
    # a failed validation does not use up the key
    bad = api.post('/v1/tasks', {'targetUrl': 'nope'}, headers={'Idempotency-Key': 'k-2'})
    assert bad.status == 400, bad
    good = api.post('/v1/tasks', body, headers={'Idempotency-Key': 'k-2'})
    assert good.status == 201, good
    assert api.get('/v1/tasks').json['pagination']['total'] == 4


# ---------------------------------------------------------------------------
# Retry, attempts, cancel conflicts

def test_retry_failed_task_and_attempts():
    target, aq, api = s_setup(extra=['--backoff-base-ms', '50'])
    tag = s_tag()
    task = api.create(targetUrl=target.url('/fail-first/2/%s' % tag), maxRetries=1)
    done = api.wait_status(task['id'], TERMINAL)
    assert done['status'] == 'failed' and done['retryCount'] == 1, done
    assert done.get('error') == 'HTTP 503', done
    assert ISO_MS.match(done.get('completedAt', '')), done
    reply = api.get('/v1/tasks/%s/attempts' % task['id'])
    assert reply.status == 200 and list(reply.json) == ['attempts'], reply
    attempts = reply.json['attempts']
    assert [a['attempt'] for a in attempts] == [1, 2], attempts
    for a in attempts:
        assert a.get('statusCode') == 503 and isinstance(a.get('duration'), int), a
        assert ISO_MS.match(a.get('startedAt', '')), a
    # the dead-letter view
    dead = api.get('/v1/tasks?status=failed').json
    assert [t['id'] for t in dead['tasks']] == [task['id']], dead

    reply = api.post('/v1/tasks/%s/retry' % task['id'])
    assert reply.status == 200, reply
    again = reply.json['task']
    assert again['id'] == task['id'] and again['status'] in ('pending', 'processing'), again
    assert again['retryCount'] == 0 and 'error' not in again and 'completedAt' not in again, again
    done = api.wait_status(task['id'], TERMINAL)
    assert done['status'] == 'completed' and done['result']['statusCode'] == 200, done
    attempts = api.get('/v1/tasks/%s/attempts' % task['id']).json['attempts']
    assert len(attempts) == 3 and attempts[-1].get('statusCode') == 200, attempts
    assert [a['attempt'] for a in attempts] == sorted(a['attempt'] for a in attempts), attempts
    assert len(target.requests('/fail-first/2/%s' % tag)) == 3

    # only failed/timeout tasks are retried; only pending/delayed ones cancelled
    reply = api.post('/v1/tasks/%s/retry' % task['id'])
    assert reply.status == 409 and reply.json == {
        'error': 'Task cannot be retried in status completed'}, reply
    reply = api.post('/v1/tasks/%s/cancel' % task['id'])
    assert reply.status == 409 and reply.json == {
        'error': 'Task cannot be cancelled in status completed'}, reply
    delayed = s_delayed(api)
    reply = api.post('/v1/tasks/%s/retry' % delayed['id'])
    assert reply.status == 409 and reply.json == {
        'error': 'Task cannot be retried in status delayed'}, reply
    reply = api.get('/v1/tasks/%s/attempts' % delayed['id'])
    assert reply.status == 200 and reply.json == {'attempts': []}, reply
    # connection refused: the seed's error text
    refused = api.create(targetUrl='http://127.0.0.1:%d/x' % aqtest.free_port(), maxRetries=0)
    done = api.wait_status(refused['id'], TERMINAL)
    assert done['status'] == 'failed' and done.get('error') == 'fetch failed: ECONNREFUSED', done
    attempts = api.get('/v1/tasks/%s/attempts' % refused['id']).json['attempts']
    assert len(attempts) == 1 and attempts[0].get('error') == 'fetch failed: ECONNREFUSED', attempts


# ---------------------------------------------------------------------------
# /healthz, /metrics, 404, 405

PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|[+-]?Inf|NaN)$')


def s_parse_prometheus(text):
    """{(name, labels text): value}; raises on any line the text format
    does not allow, a sample before its TYPE, or a bad histogram."""
    samples = {}
    types = {}
    for number, line in enumerate(text.split('\n'), 1):
        if not line:
            continue
        if line.startswith('# HELP ') or line.startswith('# TYPE '):
            parts = line.split(' ', 3)
            assert len(parts) == 4, 'line %d: %r' % (number, line)
            if parts[1] == 'TYPE':
                assert parts[3] in ('counter', 'gauge', 'histogram', 'summary', 'untyped'), line
                types[parts[2]] = parts[3]
            continue
        assert not line.startswith('#'), 'line %d: stray comment %r' % (number, line)
        m = PROM_LINE.match(line)
        assert m, 'line %d is not a Prometheus sample: %r' % (number, line)
        name, labels, value = m.group(1), m.group(2) or '', float(m.group(3))
        family = re.sub(r'_(bucket|sum|count)$', '', name)
        assert name in types or family in types, 'line %d: %s has no TYPE before it' % (number, name)
        if labels:
            assert re.match(r'^\{([a-zA-Z_]\w*="[^"]*")(,[a-zA-Z_]\w*="[^"]*")*\}$', labels), line
        samples[(name, labels)] = value
    for family, kind in types.items():
        if kind != 'histogram':
            continue
        buckets = [(k[1], v) for k, v in samples.items() if k[0] == family + '_bucket']
        assert buckets and buckets[-1][0] == '{le="+Inf"}', '%s lacks le="+Inf"' % family
        values = [v for _, v in buckets]
        assert values == sorted(values), '%s buckets decrease: %s' % (family, buckets)
        assert samples.get((family + '_count', '')) == values[-1], '%s_count != +Inf' % family
    return samples, types


def test_healthz_and_metrics():
    target, aq, api = s_setup()
    health = api.get('/healthz', key=None)
    assert health.status == 200 and health.json == {'status': 'ok', 'broker': 'ok'}, health
    ids = [api.create(targetUrl=target.url('/ok/metrics-%d' % i))['id'] for i in range(3)]
    for task_id in ids:
        assert api.wait_status(task_id, TERMINAL)['status'] == 'completed'
    s_delayed(api)
    s_delayed(s_team_api(aq))   # another team's task: not in this team's figures

    def scrape(credential):
        reply = api.get('/metrics', key=credential)
        assert reply.status == 200, reply
        assert reply.headers.get('content-type', '').startswith('text/plain'), reply.headers
        samples, types = s_parse_prometheus(reply.text)

        def value(name, labels=''):
            assert (name, labels) in samples, '%s%s missing from /metrics' % (name, labels)
            return samples[(name, labels)]
        for status in ('pending', 'delayed', 'processing', 'waiting', 'polling', 'completed',
                       'failed', 'timeout', 'cancelled'):
            value('asyncqueue_tasks', '{status="%s"}' % status)
        return samples, types, value

    # a team key: the team's tasks by status and the tasks it created, nothing global
    samples, types, value = scrape(api.key)
    assert value('asyncqueue_tasks', '{status="delayed"}') == 1
    assert value('asyncqueue_tasks', '{status="completed"}') == 3
    assert value('asyncqueue_tasks_created_total') == 4
    assert types.get('asyncqueue_tasks_created_total') == 'counter', types
    assert set(name for name, _ in samples) == {'asyncqueue_tasks',
                                                'asyncqueue_tasks_created_total'}, samples
    # the admin token: the whole server's
    samples, types, value = scrape(aq.admin_token)
    assert value('asyncqueue_tasks', '{status="delayed"}') == 2
    assert value('asyncqueue_tasks', '{status="completed"}') == 3
    assert value('asyncqueue_tasks_created_total') == 5
    assert value('asyncqueue_tasks_dispatched_total') >= 3
    assert value('asyncqueue_tasks_completed_total') >= 3
    assert value('asyncqueue_tasks_failed_total') == 0
    assert value('asyncqueue_workers_connected') == 2      # the all-in-one's default
    assert value('asyncqueue_lmdb_bytes') > 0
    assert value('asyncqueue_gateway_connections') >= 1
    assert types.get('asyncqueue_attempt_duration_ms') == 'histogram', types
    assert value('asyncqueue_attempt_duration_ms_count') >= 3
    for name in ('asyncqueue_tasks_created_total', 'asyncqueue_tasks_completed_total'):
        assert types.get(name) == 'counter', '%s is %s' % (name, types.get(name))
    # counters count
    api.create(targetUrl=target.url('/ok/metrics-more'))
    later, _ = s_parse_prometheus(api.get('/metrics').text)
    assert later[('asyncqueue_tasks_created_total', '')] == 5
    later, _ = s_parse_prometheus(api.get('/metrics', key=aq.admin_token).text)
    assert later[('asyncqueue_tasks_created_total', '')] == 6
    # /metrics is behind the API key
    reply = api.get('/metrics', key=None)
    assert reply.status == 401 and reply.json == {'error': 'API key required'}, reply


def test_404_and_405_shapes():
    target, aq, api = s_setup()
    for path in ('/', '/v1', '/v1/taskss', '/v2/tasks', '/v1/tasks/a/b/c', '/V1/TASKS'):
        reply = api.get(path)
        assert reply.status == 404 and reply.json == {'error': 'Not found'}, (path, reply)
        assert reply.headers.get('content-type', '').startswith('application/json'), reply.headers
    cases = [('DELETE', '/v1/tasks', 'GET, POST'), ('PUT', '/v1/tasks/abc', 'GET'),
             ('DELETE', '/v1/tasks/abc', 'GET'), ('GET', '/v1/tasks/abc/cancel', 'POST'),
             ('GET', '/v1/tasks/abc/retry', 'POST'), ('POST', '/v1/tasks/abc/attempts', 'GET'),
             ('POST', '/healthz', 'GET'), ('PATCH', '/metrics', 'GET')]
    for method, path, allow in cases:
        reply = api.call(method, path)
        assert reply.status == 405 and reply.json == {'error': 'Method not allowed'}, \
            (method, path, reply)
        assert reply.headers.get('allow') == allow, (method, path, reply.headers)
    # 404 without a key too: routing comes first
    reply = api.get('/nowhere', key=None)
    assert reply.status == 404 and reply.json == {'error': 'Not found'}, reply
    reply = api.get('/v1/tasks/%s' % uuid.uuid4())
    assert reply.status == 404 and reply.json == {'error': 'Task not found'}, reply
    reply = api.post('/v1/tasks/%s/cancel' % uuid.uuid4())
    assert reply.status == 404 and reply.json == {'error': 'Task not found'}, reply


def test_pipelining_and_abandoned_requests():
    target, aq, api = s_setup()
    task = s_delayed(api)
    body = json.dumps({'targetUrl': URL, 'delayUntil': FAR}).encode()
    # pipelined requests, local answers and broker answers mixed: in order
    sock = s_connect(aq.port)
    sock.sendall(s_request_bytes('GET', '/healthz')
                 + s_request_bytes('POST', '/v1/tasks', api.key, body)
                 + s_request_bytes('GET', '/v1/tasks/%s' % task['id'], api.key)
                 + s_request_bytes('GET', '/nowhere')
                 + s_request_bytes('GET', '/v1/tasks?limit=3', api.key))
    got = [s_read_response(sock, 5) for _ in range(5)]
    sock.close()
    assert [r and r[0] for r in got] == [200, 201, 200, 404, 200], got
    assert json.loads(got[2][2])['task']['id'] == task['id'], got[2]
    assert json.loads(got[4][2])['pagination']['limit'] == 3, got[4]
    # a long poll whose client goes away; the answer comes later to nobody
    for _ in range(5):
        sock = s_connect(aq.port)
        sock.sendall(s_request_bytes('GET', '/v1/tasks/%s?wait=10' % task['id'], api.key))
        sock.close()
    time.sleep(0.3)
    assert api.post('/v1/tasks/%s/cancel' % task['id']).status == 200
    # a request cut off in the middle of its body
    sock = s_connect(aq.port)
    sock.sendall(s_request_bytes('POST', '/v1/tasks', api.key, length=len(body)) + body[:10])
    sock.close()
    time.sleep(0.3)
    s_healthz_fast(aq.port)
    assert api.get('/v1/tasks/%s' % task['id']).json['task']['status'] == 'cancelled'
    # the longest Idempotency-Key, and one character more
    ok = api.post('/v1/tasks', body, headers={'Idempotency-Key': 'k' * 255})
    assert ok.status == 201, ok
    long = api.post('/v1/tasks', body, headers={'Idempotency-Key': 'k' * 256})
    assert long.status == 400 and long.json == {
        'error': 'Idempotency-Key must be at most 255 characters'}, long
    # a request line over the limit
    huge = api.get('/v1/tasks?status=' + 'a' * 40000)
    assert huge.status == 414, huge
    s_healthz_fast(aq.port)


# ---------------------------------------------------------------------------
# Slow and oversized clients

def s_healthz_fast(port, limit=0.5):
    http = s_Http(port)
    try:
        reply = http.get('/healthz', key=None)
    finally:
        http.close()
    assert reply.status == 200 and reply.elapsed < limit, \
        '/healthz took %.2fs: %r' % (reply.elapsed, reply)


def test_oversize_413_without_reading_the_body():
    target, aq, api = s_setup()
    mib = 1 << 20
    # 2 MiB announced, never sent: the answer comes anyway, at once
    sock = s_connect(aq.port)
    start = time.monotonic()
    sock.sendall(s_request_bytes('POST', '/v1/tasks', api.key, length=2 * mib))
    reply = s_read_response(sock, timeout=3)
    elapsed = time.monotonic() - start
    assert reply is not None, 'no answer to a 2 MiB Content-Length within 3 s'
    status, headers, body = reply
    assert status == 413 and json.loads(body) == {'error': 'Request body too large'}, reply
    assert elapsed < 1.0, '413 took %.2fs' % elapsed
    s_healthz_fast(aq.port)
    assert s_closed(sock, 3), 'connection left open after the 413'
    sock.close()
    # one byte over the limit is refused; exactly the limit is read
    sock = s_connect(aq.port)
    sock.sendall(s_request_bytes('POST', '/v1/tasks', api.key, length=mib + 1))
    reply = s_read_response(sock, timeout=3)
    assert reply and reply[0] == 413, reply
    sock.close()
    task = json.dumps({'targetUrl': URL, 'delayUntil': FAR})
    exact = (task + ' ' * (mib - len(task))).encode()
    assert len(exact) == mib
    reply = api.post('/v1/tasks', exact)
    assert reply.status == 201, 'a body of exactly 1 MiB: %r' % reply
    # chunked (no Content-Length) past the limit: 413 too
    sock = s_connect(aq.port)
    head = s_request_bytes('POST', '/v1/tasks', api.key, headers={'Transfer-Encoding': 'chunked',
                                                                  'Content-Type': 'application/json'})
    sock.sendall(head)
    chunk = b'%x\r\n%s\r\n' % (256 * 1024, b' ' * (256 * 1024))
    try:
        for _ in range(6):
            sock.sendall(chunk)
        sock.sendall(b'0\r\n\r\n')
        reply = s_read_response(sock, timeout=5)
    except OSError as e:
        reply = e
    assert not isinstance(reply, tuple) or reply[0] == 413, 'chunked 1.5 MiB: %r' % (reply,)
    sock.close()
    s_healthz_fast(aq.port)
    # other limits: header block, nesting depth, string length
    big_header = api.get('/healthz', key=None, headers={'X-Big': 'a' * 40000})
    assert big_header.status == 431, 'a 40 kB header: %r' % big_header
    deep = '{"targetUrl": "%s", "headers": %s1%s}' % (URL, '{"a":' * 40, '}' * 40)
    reply = api.post('/v1/tasks', deep)
    assert reply.status == 400 and reply.json == {
        'error': 'JSON nesting must be at most 32 levels deep'}, reply
    reply = api.post('/v1/tasks', {'targetUrl': URL, 'body': 'x' * 300000})
    assert reply.status == 400 and reply.json == {
        'error': 'JSON strings must be at most 262144 bytes'}, reply
    s_healthz_fast(aq.port)


def s_trickle(port, box, limit):
    """A slowloris client: the request line, then one header byte a second,
    never the end of the headers. box['cut'] = seconds until the server
    closed the connection (None if it had not after limit seconds)."""
    sock = s_connect(port)
    start = time.monotonic()
    sock.sendall(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ')
    box['cut'] = None
    try:
        while time.monotonic() - start < limit:
            if s_closed(sock, 1.0):
                box['cut'] = time.monotonic() - start
                return
            try:
                sock.sendall(b'a')
            except OSError:
                box['cut'] = time.monotonic() - start
                return
    finally:
        sock.close()


def test_slowloris_cut_off_while_healthz_answers():
    deadline = 2
    broker, (gateway,) = s_split(workers=0, gateway_extra=['--deadline', str(deadline),
                                                           '--per-ip', '8'])
    port = gateway.port
    clients = []
    for _ in range(5):
        box = {}
        thread = threading.Thread(target=s_trickle, args=(port, box, deadline + 4), daemon=True)
        thread.start()
        clients.append((thread, box))
    start = time.monotonic()
    while any(thread.is_alive() for thread, _ in clients) and time.monotonic() - start < deadline + 6:
        s_healthz_fast(port)        # the server keeps answering everyone else
        time.sleep(0.3)
    cut = [box.get('cut') for _, box in clients]
    assert all(t is not None for t in cut), \
        'slow clients not cut off within %ds of --deadline %d: %s' % (deadline + 4, deadline, cut)
    assert all(deadline - 0.5 <= t <= deadline + 1.0 for t in cut), \
        'cut off after %s s with --deadline %d' % (['%.2f' % t for t in cut], deadline)
    # an idle keep-alive connection between requests gets the same deadline
    http = s_Http(port)
    assert http.get('/healthz', key=None).status == 200
    idle = time.monotonic()
    assert s_closed(http.conn.sock, deadline + 2), 'an idle connection outlived the deadline'
    assert time.monotonic() - idle >= deadline - 0.5
    http.close()
    s_healthz_fast(port)
    # --per-ip 8: a ninth connection from the same address is closed at once
    time.sleep(0.3)     # the closed connections above are gone from the count
    socks = [s_connect(port) for _ in range(8)]
    extra = s_connect(port)
    try:
        assert s_closed(extra, 1.0), 'a 9th connection from one address was kept with --per-ip 8'
        assert not any(s_closed(sock, 0) for sock in socks), 'the 8 allowed connections were closed'
    finally:
        for sock in socks + [extra]:
            sock.close()
    time.sleep(0.3)
    s_healthz_fast(port)


# ---------------------------------------------------------------------------
# Rate limit (SPEC 7)

def test_rate_limit_429_with_retry_after():
    target, aq, api = s_setup()
    other = s_team_api(aq)
    aq.aqctl('team', 'limit', api.team, '--rps', '2', '--burst', '2')
    replies = [api.get('/v1/tasks') for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 429], replies
    limited = replies[2]
    assert limited.json == {'error': RATE_LIMITED}, limited
    retry_after = limited.headers.get('retry-after')
    assert retry_after and retry_after.isdigit() and 1 <= int(retry_after) <= 2, limited.headers
    # writes are limited too; other teams and /healthz are not
    reply = api.post('/v1/tasks', {'targetUrl': URL, 'delayUntil': FAR})
    assert reply.status == 429 and reply.json == {'error': RATE_LIMITED}, reply
    assert all(other.get('/v1/tasks').status == 200 for _ in range(5))
    assert api.get('/healthz', key=None).status == 200
    time.sleep(int(retry_after))
    assert api.get('/v1/tasks').status == 200
    # lifting the limit
    aq.aqctl('team', 'limit', api.team, '--rps', '0')
    assert all(api.get('/v1/tasks').status == 200 for _ in range(10))


# ---------------------------------------------------------------------------
# Standard Webhooks

def s_secret(aq, team, rotate=False):
    args = ['--json', 'team', 'secret', team] + (['--rotate'] if rotate else [])
    secret = json.loads(aq.aqctl(*args)).get('signingSecret', '')
    assert secret.startswith('whsec_'), 'team secret: %r' % secret
    return secret


def s_verify(secret, headers, body, tolerance=300):
    """Standard Webhooks verification (what a target would do): True when
    one of the v1 signatures is HMAC-SHA256(key, id.timestamp.body)."""
    key = base64.b64decode(secret[len('whsec_'):])
    msg_id = headers.get('webhook-id', '')
    stamp = headers.get('webhook-timestamp', '')
    if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > tolerance:
        return False
    signed = ('%s.%s.' % (msg_id, stamp)).encode() + body.encode('utf-8')
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for part in headers.get('webhook-signature', '').split(' '):
        version, _, signature = part.partition(',')
        if version == 'v1' and hmac.compare_digest(signature, expected):
            return True
    return False


def s_docs_verifier():
    """The verify() of docs/api.md's Python snippet, so the docs' code is
    checked against real calls too."""
    with open(os.path.join(DOCS, 'api.md'), encoding='utf-8') as f:
        text = f.read()
    section = text[text.index('### Verifying signatures'):]
    code = section[section.index('```python\n') + 10:]
    code = code[:code.index('```')]
    scope = {}
    exec(compile(code, 'docs/api.md', 'exec'), scope)
    return scope['verify']


def test_webhook_signature_verifies_and_id_is_stable():
    target, aq, api = s_setup(extra=['--backoff-base-ms', '100'])
    secret = s_secret(aq, api.team)
    docs_verify = s_docs_verifier()
    tag = s_tag()
    body = json.dumps({'orderId': 12345, 'note': 'caf\u00e9 \u2713'}, ensure_ascii=False)
    task = api.create(targetUrl=target.url('/fail-first/2/%s' % tag), body=body, maxRetries=3,
                      headers={'X-Custom': 'v1'})
    done = api.wait_status(task['id'], TERMINAL)
    assert done['status'] == 'completed' and done['retryCount'] == 2, done
    calls = target.requests('/fail-first/2/%s' % tag)
    assert len(calls) == 3, 'expected 3 attempts, target saw %d' % len(calls)
    for number, call in enumerate(calls, 1):
        headers = call['headers']
        assert headers.get('webhook-id') == task['id'], 'attempt %d: webhook-id %r, task %s' % (
            number, headers.get('webhook-id'), task['id'])
        stamp = headers.get('webhook-timestamp', '')
        assert stamp.isdigit() and abs(int(stamp) * 1000 - call['at']) < 5000, \
            (number, stamp, call['at'])
        assert call['body'] == body, call
        assert s_verify(secret, headers, call['body']), \
            'attempt %d: signature %r does not verify' % (number, headers.get('webhook-signature'))
        assert docs_verify(secret, headers, call['body']), 'the verifier in docs/api.md refuses it'
        assert not docs_verify(secret, headers, call['body'] + ' ')
        # the verifier can fail: a changed body, id or secret does not verify
        assert not s_verify(secret, headers, call['body'] + ' ')
        assert not s_verify(secret, dict(headers, **{'webhook-id': str(uuid.uuid4())}), call['body'])
        assert not s_verify('whsec_' + base64.b64encode(b'x' * 32).decode(), headers, call['body'])
        assert headers.get('asyncqueue-task-id') == task['id'] and headers.get('x-custom') == 'v1'
        assert headers.get('asyncqueue-attempt') == str(number), headers
    # GET sends no body and signs the empty payload
    get = api.create(targetUrl=target.url('/ok/sig-get-%s' % tag), method='GET', body='ignored')
    api.wait_status(get['id'], TERMINAL)
    (call,) = target.requests('/ok/sig-get-%s' % tag)
    assert call['body'] == '' and s_verify(secret, call['headers'], ''), call
    # a rotated secret signs the next calls; the old one no longer verifies
    new_secret = s_secret(aq, api.team, rotate=True)
    assert new_secret != secret
    rotated = api.create(targetUrl=target.url('/ok/sig-rot-%s' % tag), body='{}')
    api.wait_status(rotated['id'], TERMINAL)
    (call,) = target.requests('/ok/sig-rot-%s' % tag)
    assert s_verify(new_secret, call['headers'], '{}') and not s_verify(secret, call['headers'], '{}')
    # each team signs with its own secret
    other = s_team_api(aq)
    theirs = other.create(targetUrl=target.url('/ok/sig-other-%s' % tag), body='{}')
    other.wait_status(theirs['id'], TERMINAL)
    (call,) = target.requests('/ok/sig-other-%s' % tag)
    assert s_verify(s_secret(aq, other.team), call['headers'], '{}')
    assert not s_verify(new_secret, call['headers'], '{}')


def test_on_complete_url_notified():
    target, aq, api = s_setup(extra=['--backoff-base-ms', '50'])
    secret = s_secret(aq, api.team)
    tag = s_tag()
    ok = api.create(targetUrl=target.url('/ok/oc-%s' % tag),
                    onCompleteUrl=target.url('/ok/oc-done-completed-%s' % tag))
    failed = api.create(targetUrl=target.url('/status/500/oc-%s' % tag), maxRetries=0,
                        onCompleteUrl=target.url('/ok/oc-done-failed-%s' % tag))
    cancelled = s_delayed(api, onCompleteUrl=target.url('/ok/oc-done-cancelled-%s' % tag))
    assert api.post('/v1/tasks/%s/cancel' % cancelled['id']).status == 200
    for task, outcome in ((ok, 'completed'), (failed, 'failed')):
        final = api.wait_status(task['id'], TERMINAL)
        assert final['status'] == outcome, final
        try:
            (call,) = target.wait_requests('/ok/oc-done-%s-%s' % (outcome, tag), 1, timeout=5)
        except AssertionError as e:
            raise AssertionError('onCompleteUrl of a %s task was never called (seed 000: "Webhook '
                                 'URL to notify when task completes (success or failure)"): %s'
                                 % (outcome, e))
        assert call['method'] == 'POST', call
        sent = json.loads(call['body'])
        shown = sent.get('task', sent)
        assert shown.get('id') == task['id'] and shown.get('status') == outcome, sent
        assert call['headers'].get('webhook-id', '').startswith(task['id']), call['headers']
        assert s_verify(secret, call['headers'], call['body']), call['headers']
        delivered = wait_until(lambda: api.task(task['id']).get('onComplete', {}).get('status')
                               == 'delivered' and api.task(task['id']), 5,
                               'onComplete.status delivered')
        assert delivered['onComplete'].get('attempts') == 1, delivered
    # a cancelled task is not notified
    assert target.requests('/ok/oc-done-cancelled-%s' % tag) == []
    assert 'onComplete' not in api.task(cancelled['id']), api.task(cancelled['id'])


# ---------------------------------------------------------------------------
# The seeds' examples, run for real

def s_seed(name):
    for entry in os.listdir(SEEDS):
        if entry.startswith(name):
            with open(os.path.join(SEEDS, entry), encoding='utf-8') as f:
                return f.read()
    raise AssertionError('seed %s* not found in %s' % (name, SEEDS))


def s_squash(text):
    return re.sub(r'\s+', '', text)


def s_in_seed(code, seed_name):
    """Asserts code appears in the seed (whitespace aside: the seed's text
    lost its line breaks), so the examples below stay the seed's."""
    assert s_squash(code) in s_squash(s_seed(seed_name)), \
        'this example is no longer in seed %s:\n%s' % (seed_name, code)


SEED_CURL = [
    # seed 001, "Create a task" / "Check status" / "List pending tasks" / "Cancel a task"
    '''curl -X POST https://api.asyncqueue.io/v1/tasks \\
  -H "Authorization: Bearer your-api-key" \\
  -H "Content-Type: application/json" \\
  -d '{"targetUrl": "https://api.example.com/webhook"}\'''',
    '''curl https://api.asyncqueue.io/v1/tasks/TASK_ID \\
  -H "Authorization: Bearer your-api-key"''',
    '''curl "https://api.asyncqueue.io/v1/tasks?status=pending&limit=10" \\
  -H "Authorization: Bearer your-api-key"''',
    '''curl -X POST https://api.asyncqueue.io/v1/tasks/TASK_ID/cancel \\
  -H "Authorization: Bearer your-api-key"''',
]
SEED_000_CURL = '''curl -X POST https://api.asyncqueue.io/v1/tasks \\
  -H "Authorization: Bearer your-api-key" \\
  -H "Content-Type: application/json" \\
  -d '{
    "targetUrl": "https://api.example.com/webhook",
    "method": "POST",
    "headers": {
      "Authorization": "Bearer service-token"
    },
    "body": "{\\"action\\": \\"process\\", \\"data\\": {\\"id\\": 123}}",
    "maxRetries": 3,
    "retryBackoff": "exponential",
    "priority": 8,
    "onCompleteUrl": "https://api.example.com/task-complete"
  }\''''
SEED_000_POLL = '''curl "https://api.asyncqueue.io/v1/tasks/550e8400-e29b-41d4-a716-446655440000?wait=20" \\
  -H "Authorization: Bearer your-api-key"'''


def s_curl(command, base, key, swaps=()):
    """Runs a seed curl command with /usr/bin/curl, the base URL and key
    swapped; returns (http status, parsed JSON body)."""
    command = command.replace('https://api.asyncqueue.io', base).replace('your-api-key', key)
    for old, new in swaps:
        command = command.replace(old, new)
    argv = shlex.split(command.replace('\\\n', ' '))
    assert argv[0] == 'curl'
    argv = ['/usr/bin/curl', '-sS', '--max-time', '30', '-w', '\n%{http_code}'] + argv[1:]
    run = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=40)
    assert run.returncode == 0, 'curl failed (%d): %s' % (run.returncode, run.stderr.decode())
    body, _, status = run.stdout.decode().rpartition('\n')
    return int(status), json.loads(body)


def test_seed_curl_commands():
    assert os.access('/usr/bin/curl', os.X_OK), '/usr/bin/curl is not installed'
    target, aq, api = s_setup()
    for command in SEED_CURL + [SEED_000_CURL, SEED_000_POLL]:
        s_in_seed(command, '001' if command in SEED_CURL else '000')
    tag = s_tag()
    hook = target.url('/ok/curl-%s' % tag)
    # the local target stands in for api.example.com (tests stay on loopback)
    status, body = s_curl(SEED_CURL[0], aq.base, api.key, [('https://api.example.com/webhook', hook)])
    assert status == 201 and body['task']['targetUrl'] == hook, (status, body)
    task_id = body['task']['id']
    status, body = s_curl(SEED_CURL[1], aq.base, api.key, [('TASK_ID', task_id)])
    assert status == 200 and body['task']['id'] == task_id, (status, body)
    assert target.wait_requests('/ok/curl-%s' % tag, 1)
    assert api.wait_status(task_id, TERMINAL)['status'] == 'completed'
    later = s_delayed(api)
    status, body = s_curl(SEED_CURL[2], aq.base, api.key)
    assert status == 200 and body['pagination']['limit'] == 10, (status, body)
    assert set(body) == {'tasks', 'pagination'} and all(t['status'] == 'pending' for t in body['tasks'])
    status, body = s_curl(SEED_CURL[3], aq.base, api.key, [('TASK_ID', later['id'])])
    assert status == 200 and body['task']['status'] == 'cancelled', (status, body)
    assert ISO_MS.match(body['task'].get('completedAt', '')), body
    # seed 000's full example and its long poll
    status, body = s_curl(SEED_000_CURL, aq.base, api.key,
                          [('https://api.example.com/webhook', hook + '-full'),
                           ('https://api.example.com/task-complete', target.url('/ok/done-%s' % tag))])
    assert status == 201 and body['task']['priority'] == 8, (status, body)
    assert body['task']['body'] == '{"action": "process", "data": {"id": 123}}', body
    full_id = body['task']['id']
    status, body = s_curl(SEED_000_POLL, aq.base, api.key,
                          [('550e8400-e29b-41d4-a716-446655440000', full_id)])
    assert status == 200 and body['task']['id'] == full_id, (status, body)
    done = api.wait_status(full_id, TERMINAL)
    assert done['status'] == 'completed', done
    (call,) = target.requests('/ok/curl-%s-full' % tag)
    assert call['headers'].get('authorization') == 'Bearer service-token', call
    assert call['body'] == '{"action": "process", "data": {"id": 123}}', call


SEED_JS = '''const API_KEY = 'your-api-key';
const BASE_URL = 'https://api.asyncqueue.io';

async function createTask(taskData) {
  const response = await fetch(`${BASE_URL}/v1/tasks`, {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${API_KEY}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify(taskData)
  });
  return response.json();
}

const { task } = await createTask({
  targetUrl: 'https://api.example.com/process',
  body: JSON.stringify({ orderId: 12345 }),
  maxRetries: 5
});
'''

SEED_PY = '''import requests

API_KEY = 'your-api-key'
BASE_URL = 'https://api.asyncqueue.io'

headers = {
    'Authorization': f'Bearer {API_KEY}',
    'Content-Type': 'application/json'
}

def create_task(task_data):
    response = requests.post(
        f'{BASE_URL}/v1/tasks',
        headers=headers,
        json=task_data
    )
    return response.json()

result = create_task({
    'targetUrl': 'https://api.example.com/process',
    'body': '{"orderId": 12345}',
    'maxRetries': 5
})
'''


def s_run_example(code, suffix, argv0, aq, api, target, tail, expected_body):
    s_in_seed(code, '001')
    tag = s_tag()
    hook = target.url('/ok/example-%s' % tag)
    code = (code.replace('https://api.asyncqueue.io', aq.base).replace('your-api-key', api.key)
            .replace('https://api.example.com/process', hook)) + tail
    path = os.path.join(aqtest.tmpdir(), 'example-%s.%s' % (tag, suffix))
    with open(path, 'w') as f:
        f.write(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ASAN', 'UBSAN', 'LD_'))}
    env.pop('NO_PROXY', None)
    env.update({'NO_PROXY': '127.0.0.1,localhost', 'no_proxy': '127.0.0.1,localhost'})
    for name in ('HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy'):
        env.pop(name, None)
    run = subprocess.run([argv0, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=60, env=env, cwd=aqtest.tmpdir())
    assert run.returncode == 0, '%s %s exited %d:\n%s' % (argv0, path, run.returncode,
                                                        run.stderr.decode()[-2000:])
    out = run.stdout.decode().strip().split('\n')[-1]
    task = json.loads(out)
    assert task.get('status') == 'pending' and task.get('maxRetries') == 5, task
    assert task.get('targetUrl') == hook, task
    done = api.wait_status(task['id'], TERMINAL)
    assert done['status'] == 'completed', done
    (call,) = target.requests('/ok/example-%s' % tag)
    assert call['method'] == 'POST' and call['body'] == expected_body, call
    assert call['headers'].get('webhook-id') == task['id'], call['headers']


def test_seed_javascript_example_with_node():
    node = shutil.which('node')
    assert node, 'node is not installed'
    target, aq, api = s_setup()
    s_run_example(SEED_JS, 'mjs', node, aq, api, target, 'console.log(JSON.stringify(task));\n',
                  '{"orderId":12345}')


def test_seed_python_example_with_python3_requests():
    assert os.access('/usr/bin/python3', os.X_OK), '/usr/bin/python3 is not installed'
    target, aq, api = s_setup()
    s_run_example(SEED_PY, 'py', '/usr/bin/python3', aq, api, target,
                  'import json\nprint(json.dumps(result["task"]))\n', '{"orderId": 12345}')


# ---------------------------------------------------------------------------
# Two gateways in front of one broker

def test_two_gateways_one_broker():
    target = aqtest.start_target()
    broker, (gw1, gw2) = s_split(workers=1, gateways=2)
    key = broker.new_key('team-' + s_tag())
    one, two = s_Http(gw1.port, key), s_Http(gw2.port, key)
    # created through one, seen through the other
    task = one.create(targetUrl=target.url('/ok/two-gw'))
    assert two.wait_status(task['id'], TERMINAL)['status'] == 'completed'
    # a long poll held by gateway 2 answers when gateway 1 cancels
    delayed = s_delayed(one)
    thread, box = s_poll_in_thread(gw2.port, key, delayed['id'], 20)
    time.sleep(0.4)
    assert 'reply' not in box
    assert one.post('/v1/tasks/%s/cancel' % delayed['id']).status == 200
    cancelled_at = time.monotonic()
    thread.join(5)
    reply = box.get('reply')
    assert isinstance(reply, s_Reply) and reply.json['task']['status'] == 'cancelled', box
    assert (box['at'] - cancelled_at) * 1000 <= 100, 'poll on gateway 2 answered %.0f ms late' % (
        (box['at'] - cancelled_at) * 1000)
    # the idempotency race across both gateways still makes one task
    body = {'targetUrl': URL, 'delayUntil': FAR}
    task_id = s_check_race(s_race([gw1.port, gw2.port] * 10, key, 'two-gw-race', body),
                           '20 POSTs over two gateways')
    listed = two.get('/v1/tasks?status=delayed').json
    assert [t['id'] for t in listed['tasks']] == [task_id], listed
    # one gateway going away leaves the other serving
    assert not gw1.proc.stop(), 'gateway 1 did not stop cleanly'
    assert two.task(task_id)['id'] == task_id
    health = two.get('/healthz', key=None)
    assert health.json == {'status': 'ok', 'broker': 'ok'}, health
    # the broker dies: /healthz says so; it comes back: the gateway serves again
    broker.kill9()
    wait_until(lambda: two.get('/healthz', key=None).json == {'status': 'ok', 'broker': 'unreachable'},
               8, '/healthz to report the broker unreachable', interval=0.2)
    broker.proc.restart()
    wait_until(lambda: two.get('/healthz', key=None).json == {'status': 'ok', 'broker': 'ok'},
               15, '/healthz to report the broker back', interval=0.2)
    assert two.task(task_id)['id'] == task_id, 'the task is gone after a broker restart'


# ---------------------------------------------------------------------------
# Docs

def test_openapi_lint_clean():
    redocly = os.path.join(NODE_DIR, 'node_modules', '.bin', 'redocly')
    if not os.access(redocly, os.X_OK):
        npm = shutil.which('npm')
        assert npm, 'npm is not installed (needed for @redocly/cli)'
        run = subprocess.run([npm, 'ci', '--prefix', NODE_DIR, '--prefer-offline', '--no-audit',
                              '--no-fund', '--loglevel=error'],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        assert run.returncode == 0, 'npm ci failed:\n%s' % run.stdout.decode()[-3000:]
    env = dict(os.environ, REDOCLY_TELEMETRY='off', REDOCLY_SUPPRESS_UPDATE_NOTICE='true',
               NO_COLOR='1', FORCE_COLOR='0')
    run = subprocess.run([redocly, 'lint', '--format', 'json', os.path.join(DOCS, 'openapi.yaml')],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, env=env,
                         cwd=aqtest.ROOT)
    out = run.stdout.decode()
    try:
        report = json.loads(out[out.index('{'):])
    except ValueError:
        raise AssertionError('redocly lint printed no JSON report (exit %d):\n%s\n%s'
                             % (run.returncode, out[-2000:], run.stderr.decode()[-2000:]))
    problems = report.get('problems', [])
    errors = [p for p in problems if p.get('severity') == 'error']
    warnings = [p for p in problems if p.get('severity') == 'warn']
    assert run.returncode == 0 and not errors and not warnings, \
        'redocly lint: %d errors, %d warnings:\n%s' % (
            len(errors), len(warnings),
            '\n'.join('%s %s: %s' % (p.get('severity'), p.get('ruleId'), p.get('message'))
                      for p in problems[:20]))


def test_docs_cover_every_message():
    with open(os.path.join(DOCS, 'api.md'), encoding='utf-8') as f:
        api_md = f.read()
    with open(os.path.join(DOCS, 'openapi.yaml'), encoding='utf-8') as f:
        openapi = f.read()
    messages = {message for _, message in VALIDATION} | {
        NOT_OBJECT, 'Invalid JSON at line 1, column 17', 'API key required',
        'Invalid or revoked API key', 'Access denied', 'Task not found', RATE_LIMITED,
        'Not found', 'Method not allowed', 'Request body too large',
        'wait must be a number between 0 and 25', 'limit must be a number between 1 and 100',
        'offset must be a non-negative number', 'sortOrder must be one of: asc, desc',
        'Task cannot be cancelled in status completed', 'Task cannot be retried in status completed',
        'JSON nesting must be at most 32 levels deep', 'JSON strings must be at most 262144 bytes',
        'Unknown query parameter: page', 'Duplicate query parameter: limit',
        'Idempotency-Key must be at most 255 characters', 'fetch failed: ECONNREFUSED', 'HTTP 503'}
    missing = sorted(m for m in messages if m not in api_md)
    assert not missing, 'docs/api.md lacks these messages: %s' % missing
    for path in ('/v1/tasks:', '/v1/tasks/{id}:', '/v1/tasks/{id}/cancel:',
                 '/v1/tasks/{id}/attempts:', '/v1/tasks/{id}/retry:', '/healthz:', '/metrics:'):
        assert '\n  %s' % path in openapi, 'docs/openapi.yaml lacks %s' % path
