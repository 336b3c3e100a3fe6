"""test_schedules.py - process tests of scheduled tasks (/tasks, /events), over real HTTP

The all-in-one `asyncqueue` with the real aq-target as the steps' target;
test_broker_kill9_schedule_no_run_lost_or_doubled runs aq-broker, aq-worker
and aq-gateway apart so the broker alone can die. Schedules are fast: an
RRULE "FREQ=SECONDLY;INTERVAL=2" (every 2 s from the schedule's creation)
and `once` a few seconds ahead; run_now and events where a test is about the
run rather than the clock.

Every message, default and status below is the contract of
notes/sched-contract.md (seed 002, SPEC section 6). Runs are matched to the
target's records by the AsyncQueue-Task-Id header a step's call carries (the
step task's id, listed in the run's "steps").

Read into the contract where it is silent (each assert says which):
- a run_now or event run has scheduled_at null; a canceled schedule, and a
  once that has fired, have next_run_at null;
- a run's "steps" lists its step tasks in the order they were created;
- POST /tasks/preview may carry "count" in its body (proto/aq_proto.h);
- snooze sets next_run_at to snoozed_until exactly when it was earlier;
- runs sharing a concurrency_key wait as "waiting", run_now runs included;
- a coalesced run's scheduled_at is one of the missed fire times (or the
  resume/restart instant), never a later fire time; an every-2-s RRULE keeps
  its grid (the first run's scheduled_at + 2 s steps) across pause and restart;
- aqctl prints the reply as JSON like its `task` commands (compact after a
  global --json; `--json` after `schedule create` is the body) and exits 1
  when the broker refuses.
"""

import datetime
import http.client
import json
import math
import os
import random
import re
import subprocess
import time
import uuid
import zoneinfo

import aqtest
from aqtest import now_ms, parse_iso, wait_until

ISO_MS = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
NEVER = 'http://127.0.0.1:9/never'     # a step target nothing listens on
URL = 'https://api.example.com/webhook'
AGENT = '7d3f2c1e-5b4a-4c9d-8e2f-1a6b3c4d5e6f'
EVERY_2S = 'FREQ=SECONDLY;INTERVAL=2'
PERIOD_MS = 2000
BASE_MS = '50'                          # --backoff-base-ms where run retries happen
SCHEDULE_KEYS = {'id', 'team_id', 'title', 'description', 'schedule_kind', 'schedule_expr',
                 'timezone', 'payload', 'created_by', 'priority', 'max_retries',
                 'backoff_strategy', 'dedupe_key', 'dedupe_window_seconds', 'concurrency_key',
                 'status', 'next_run_at', 'last_run_at', 'snoozed_until', 'snooze_reason',
                 'created_at', 'updated_at'}
RUN_KEYS = {'id', 'task_id', 'trigger', 'status', 'attempt', 'step', 'steps_total',
            'scheduled_at', 'started_at', 'finished_at', 'next_attempt_at', 'error', 'steps'}
RUN_DONE = {'completed', 'failed', 'skipped'}
NOT_FOUND = {'error': 'Task not found'}


# ---------------------------------------------------------------------------
# HTTP

class s_Api(aqtest.HttpClient):
    """One keep-alive connection with a team's key (key=None: none sent)."""

    def __init__(self, port, key, team=None):
        super().__init__(port, key)
        self.team = team

    def create(self, body):
        reply = self.post('/tasks', body)
        assert reply.status == 201, 'POST /tasks %s -> %r' % (json.dumps(body)[:400], reply)
        return reply.json['task']

    def schedule(self, sid):
        reply = self.get('/tasks/%s' % sid)
        assert reply.status == 200, 'GET /tasks/%s -> %r' % (sid, reply)
        return reply.json['task']

    def act(self, sid, verb, body=None, status=200):
        """POST /tasks/:id/<verb>; asserts the status; returns the reply's JSON."""
        reply = self.post('/tasks/%s/%s' % (sid, verb), body)
        assert reply.status == status, 'POST /tasks/%s/%s -> %r, expected %d' % (
            sid, verb, reply, status)
        return reply.json

    def run_now(self, sid):
        return self.act(sid, 'run_now', status=201)['run']

    def runs(self, sid):
        """Every run of the schedule, newest first."""
        out, offset = [], 0
        while True:
            reply = self.get('/tasks/%s/runs?limit=100&offset=%d' % (sid, offset))
            assert reply.status == 200, 'GET /tasks/%s/runs -> %r' % (sid, reply)
            out += reply.json['runs']
            if not reply.json['pagination']['has_more']:
                return out
            offset += 100

    def wait_runs(self, sid, check, timeout, what):
        """The schedule's runs once check(runs) is true."""
        last = []

        def poll():
            last[:] = self.runs(sid)
            return check(last)
        try:
            wait_until(poll, timeout, what, interval=0.1)
        except AssertionError as e:
            raise AssertionError('%s; runs: %s' % (e, s_show_runs(last)))
        return list(last)

    def step_task(self, task_id):
        reply = self.get('/v1/tasks/%s' % task_id)
        assert reply.status == 200, 'GET /v1/tasks/%s -> %r' % (task_id, reply)
        return reply.json['task']


def s_show_runs(runs):
    return json.dumps([{k: r.get(k) for k in ('trigger', 'status', 'attempt', 'scheduled_at',
                                               'started_at', 'error')} for r in runs])


# ---------------------------------------------------------------------------
# Setup and helpers

def s_tag():
    return '%08x' % random.randrange(1 << 32)


def s_setup(extra=()):
    """target, all-in-one server, and a client with a fresh team's key."""
    target = aqtest.start_target()
    aq = aqtest.start_allinone(extra=list(extra))
    return target, aq, s_team(aq, 'team')


def s_team(aq, prefix='other'):
    team = '%s-%s' % (prefix, s_tag())
    return s_Api(aq.port, aq.new_key(team), team)


DROP = object()


def s_body(**fields):
    """A valid POST /tasks body (a daily cron into NEVER), fields overriding;
    DROP removes one."""
    body = {'title': 'nightly report', 'description': 'builds the nightly report',
            'schedule_kind': 'cron', 'schedule_expr': '0 9 * * *',
            'payload': {'steps': [{'targetUrl': NEVER}]}, 'created_by': AGENT}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not DROP}


def s_steps(*urls, **extra):
    """payload {"steps": [...]} of templates that call urls, no task retries."""
    return {'steps': [dict({'targetUrl': url, 'maxRetries': 0}, **extra) for url in urls]}


def s_every_2s(target_url, **fields):
    """An RRULE every 2 s calling target_url (fields override)."""
    fields.setdefault('payload', s_steps(target_url))
    return s_body(**dict({'schedule_kind': 'rrule', 'schedule_expr': EVERY_2S}, **fields))


def s_event(name, target_url, **fields):
    """An event task fired by `name`, calling target_url (fields override)."""
    fields.setdefault('payload', s_steps(target_url))
    return s_body(**dict({'schedule_kind': 'event', 'schedule_expr': name}, **fields))


def s_ms(text):
    """Epoch ms (an int) of an ISO timestamp; None for None."""
    return None if text is None else int(round(parse_iso(text)))


def s_sleep_until(ms):
    delay = (ms - now_ms()) / 1000.0
    if delay > 0:
        time.sleep(delay)


def s_mid_gap(grid_ms, after_ms):
    """The first instant at or after after_ms halfway between two fire
    times of an every-2-s schedule whose fire times include grid_ms."""
    k = math.ceil((after_ms - grid_ms - PERIOD_MS // 2) / PERIOD_MS)
    return int(grid_ms + PERIOD_MS // 2 + k * PERIOD_MS)


def s_grid_at_or_after(grid_ms, t_ms):
    """The first fire time at or after t_ms of an every-2-s schedule."""
    return int(grid_ms + math.ceil((t_ms - grid_ms) / PERIOD_MS) * PERIOD_MS)


def s_on_grid(grid_ms, t_ms):
    return (t_ms - grid_ms) % PERIOD_MS == 0


def s_schedule_runs(runs):
    """The runs of trigger "schedule", oldest fire time first."""
    return sorted((r for r in runs if r['trigger'] == 'schedule'),
                  key=lambda r: s_ms(r['scheduled_at']))


def s_done(count, trigger=None):
    """A wait_runs check: at least count finished runs (of trigger)."""
    return lambda runs: len([r for r in runs if r['status'] in RUN_DONE
                             and (trigger is None or r['trigger'] == trigger)]) >= count


def s_calls(target, prefix):
    """{step task id: [target records]} of the calls under prefix."""
    out = {}
    for record in target.requests(prefix):
        out.setdefault(record['headers'].get('asyncqueue-task-id'), []).append(record)
    return out


def s_local_fires(zone, after_ms, count, day_ok, hour, minute):
    """The next count instants (ISO, ms, Z) strictly after after_ms at which
    the local wall clock in zone reads hour:minute on a day for which
    day_ok(date) holds: the expectation of a cron/rrule preview, computed
    with zoneinfo alone (times chosen away from DST changes)."""
    tz = zoneinfo.ZoneInfo(zone)
    day = datetime.timedelta(days=1)
    start = datetime.datetime.fromtimestamp(after_ms / 1000.0, tz).date() - day
    out = []
    for offset in range(0, 800):
        date = start + offset * day
        if not day_ok(date):
            continue
        local = datetime.datetime(date.year, date.month, date.day, hour, minute, tzinfo=tz)
        ms = int(local.timestamp() * 1000)
        if ms > after_ms:
            out.append(aqtest.iso(ms))
            if len(out) == count:
                return out
    raise AssertionError('no %d fire times found' % count)


def s_iso_offset(ms, hours):
    """ms as ISO 8601 with a numeric UTC offset, e.g. 2030-01-01T12:00:00.000+03:00."""
    tz = datetime.timezone(datetime.timedelta(hours=hours))
    return datetime.datetime.fromtimestamp(ms / 1000.0, tz).isoformat(timespec='milliseconds')


# ---------------------------------------------------------------------------
# Create: defaults and validation

def test_schedule_create_defaults_in_201_body():
    target, aq, api = s_setup()
    before = now_ms()
    reply = api.post('/tasks', s_body())
    after = now_ms()
    assert reply.status == 201, reply
    assert reply.headers.get('content-type', '').startswith('application/json'), reply.headers
    assert list(reply.json) == ['task'], reply
    task = reply.json['task']
    assert set(task) == SCHEDULE_KEYS, 'keys %s; missing %s, extra %s' % (
        sorted(task), sorted(SCHEDULE_KEYS - set(task)), sorted(set(task) - SCHEDULE_KEYS))
    expected = {'title': 'nightly report', 'description': 'builds the nightly report',
                'schedule_kind': 'cron', 'schedule_expr': '0 9 * * *', 'timezone': 'UTC',
                'created_by': AGENT, 'priority': 5, 'max_retries': 3,
                'backoff_strategy': 'exponential_jitter', 'status': 'active',
                'dedupe_key': None, 'dedupe_window_seconds': None, 'concurrency_key': None,
                'last_run_at': None, 'snoozed_until': None, 'snooze_reason': None}
    wrong = {k: task[k] for k, v in expected.items() if task[k] != v or type(task[k]) != type(v)}
    assert not wrong, 'not the defaults: %s (expected %s)' % (
        wrong, {k: expected[k] for k in wrong})
    assert aqtest.is_uuid(task['id']) and aqtest.is_uuid(task['team_id']), task
    assert [s['targetUrl'] for s in task['payload']['steps']] == [NEVER], task['payload']
    for name in ('created_at', 'updated_at', 'next_run_at'):
        assert ISO_MS.match(task[name] or ''), '%s: %r' % (name, task[name])
    assert before - 1000 <= s_ms(task['created_at']) <= after + 1000, task['created_at']
    assert s_ms(task['updated_at']) >= s_ms(task['created_at']), task
    nine = s_local_fires('UTC', before, 1, lambda d: True, 9, 0)[0]
    assert task['next_run_at'] == nine, 'next_run_at %s, expected %s' % (task['next_run_at'], nine)
    # the team is the key's team: the same team_id as a /v1/tasks task's teamId
    v1 = api.post('/v1/tasks', {'targetUrl': NEVER, 'delayUntil': '2099-01-01T00:00:00.000Z'})
    assert v1.status == 201 and v1.json['task']['teamId'] == task['team_id'], (v1, task['team_id'])
    # GET shows the same record
    assert api.schedule(task['id']) == task, 'GET differs from the 201 body'

    # every optional field given: echoed
    full = s_body(title='t' * 200, description='d' * 2000, schedule_kind='rrule',
                  schedule_expr='FREQ=DAILY;BYHOUR=3;BYMINUTE=15;BYSECOND=0',
                  timezone='Europe/Chisinau', priority=1, max_retries=10,
                  backoff_strategy='fixed', dedupe_key='k' * 200, dedupe_window_seconds=2592000,
                  concurrency_key='c' * 200)
    got = api.create(full)
    for name, value in full.items():
        if name != 'payload':
            assert got[name] == value, '%s: %r, expected %r' % (name, got[name], value)
    for name in ('linear', 'exponential_jitter'):
        assert api.create(s_body(backoff_strategy=name))['backoff_strategy'] == name
    assert api.create(s_body(priority=9, max_retries=0))['priority'] == 9
    # dedupe_key without a window: 300 s
    deduped = api.create(s_body(dedupe_key='nightly'))
    assert deduped['dedupe_key'] == 'nightly' and deduped['dedupe_window_seconds'] == 300, deduped
    # an event task needs no schedule_expr, and has no next run
    event = api.create(s_body(schedule_kind='event', schedule_expr=DROP))
    assert event['schedule_kind'] == 'event' and event['schedule_expr'] is None, event
    assert event['next_run_at'] is None and event['status'] == 'active', event
    named = api.create(s_body(schedule_kind='event', schedule_expr='invoice.paid'))
    assert named['schedule_expr'] == 'invoice.paid' and named['next_run_at'] is None, named
    # a once: next_run_at is that instant; a bare template is one step
    at = now_ms() + 3600 * 1000
    once = api.create(s_body(schedule_kind='once', schedule_expr=aqtest.iso(at),
                             payload={'targetUrl': NEVER, 'method': 'GET'}))
    assert once['next_run_at'] == aqtest.iso(at), once
    listed = api.get('/tasks?limit=100')
    assert listed.status == 200 and listed.json['pagination']['total'] == 9, listed


VALIDATION = [
    # (fields changed from s_body(), exact message)
    ({'title': DROP}, 'title is required'),
    ({'title': ''}, 'title must be a string of 1 to 200 characters'),
    ({'title': 't' * 201}, 'title must be a string of 1 to 200 characters'),
    ({'title': 7}, 'title must be a string of 1 to 200 characters'),
    ({'description': DROP}, 'description is required'),
    ({'description': 'd' * 2001}, 'description must be a string of at most 2000 characters'),
    ({'description': 5}, 'description must be a string of at most 2000 characters'),
    ({'schedule_kind': DROP}, 'schedule_kind is required'),
    ({'schedule_kind': 'weekly'}, 'schedule_kind must be one of: cron, rrule, once, event'),
    ({'schedule_kind': 'CRON'}, 'schedule_kind must be one of: cron, rrule, once, event'),
    ({'schedule_expr': DROP}, 'schedule_expr is required'),
    ({'schedule_kind': 'rrule', 'schedule_expr': DROP}, 'schedule_expr is required'),
    ({'schedule_kind': 'once', 'schedule_expr': DROP}, 'schedule_expr is required'),
    ({'timezone': 'Mars/Olympus_Mons'}, 'timezone must be a valid IANA time zone'),
    ({'timezone': 'Europe/Atlantis'}, 'timezone must be a valid IANA time zone'),
    ({'timezone': '../../etc/passwd'}, 'timezone must be a valid IANA time zone'),
    ({'timezone': ''}, 'timezone must be a valid IANA time zone'),
    ({'timezone': 3}, 'timezone must be a valid IANA time zone'),
    ({'schedule_kind': 'once', 'schedule_expr': 'tomorrow at nine'},
     'schedule_expr must be an ISO 8601 date-time'),
    ({'schedule_kind': 'once', 'schedule_expr': '2030-02-30T09:00:00Z'},
     'schedule_expr must be an ISO 8601 date-time'),
    ({'payload': DROP}, 'payload is required'),
    ({'payload': 'run it'}, 'payload must be an object'),
    ({'payload': [{'targetUrl': URL}]}, 'payload must be an object'),
    ({'payload': {'steps': []}}, 'payload.steps must be an array of 1 to 50 task templates'),
    ({'payload': {'steps': [{'targetUrl': URL}] * 51}},
     'payload.steps must be an array of 1 to 50 task templates'),
    ({'payload': {'steps': {'targetUrl': URL}}},
     'payload.steps must be an array of 1 to 50 task templates'),
    ({'payload': {'steps': [{}]}}, 'payload.steps[0]: targetUrl is required'),
    ({'payload': {'steps': [{'method': 'GET'}]}}, 'payload.steps[0]: targetUrl is required'),
    ({'payload': {'steps': [{'targetUrl': URL}, {'targetUrl': 'ftp://x/y'}]}},
     'payload.steps[1]: targetUrl must be a valid HTTP/HTTPS URL'),
    ({'payload': {'steps': [{'targetUrl': URL, 'priority': 11}]}},
     'payload.steps[0]: priority must be an integer between 1 and 10'),
    ({'payload': {'steps': [{'targetUrl': URL, 'bogus': 1}]}},
     'payload.steps[0]: Unknown field: bogus'),
    ({'created_by': DROP}, 'created_by is required'),
    ({'created_by': 'agent-7'}, 'created_by must be a UUID'),
    ({'created_by': AGENT[:-1]}, 'created_by must be a UUID'),
    ({'created_by': 42}, 'created_by must be a UUID'),
    ({'priority': 0}, 'priority must be an integer between 1 and 9'),
    ({'priority': 10}, 'priority must be an integer between 1 and 9'),
    ({'priority': 5.5}, 'priority must be an integer between 1 and 9'),
    ({'priority': '5'}, 'priority must be an integer between 1 and 9'),
    ({'max_retries': -1}, 'max_retries must be an integer between 0 and 10'),
    ({'max_retries': 11}, 'max_retries must be an integer between 0 and 10'),
    ({'backoff_strategy': 'exponential'},
     'backoff_strategy must be one of: exponential_jitter, linear, fixed'),
    ({'dedupe_key': ''}, 'dedupe_key must be a string of 1 to 200 characters'),
    ({'dedupe_key': 'k' * 201}, 'dedupe_key must be a string of 1 to 200 characters'),
    ({'dedupe_key': 'k', 'dedupe_window_seconds': 0},
     'dedupe_window_seconds must be an integer between 1 and 2592000'),
    ({'dedupe_key': 'k', 'dedupe_window_seconds': 2592001},
     'dedupe_window_seconds must be an integer between 1 and 2592000'),
    ({'concurrency_key': ''}, 'concurrency_key must be a string of 1 to 200 characters'),
    ({'concurrency_key': 'c' * 201}, 'concurrency_key must be a string of 1 to 200 characters'),
    ({'schedule': '0 9 * * *'}, 'Unknown field: schedule'),
    ({'Title': 'x'}, 'Unknown field: Title'),
]
BAD_EXPRESSIONS = [
    # (kind, expression, message prefix: the why after it is the parser's)
    ('cron', '61 * * * *', 'Invalid cron expression: '),
    ('cron', '* * *', 'Invalid cron expression: '),
    ('cron', '0 9 * * FUNDAY', 'Invalid cron expression: '),
    ('cron', '0 25 * * *', 'Invalid cron expression: '),
    ('rrule', 'FREQ=SOMETIMES', 'Invalid RRULE: '),
    ('rrule', 'every two seconds', 'Invalid RRULE: '),
]
NOT_OBJECT = 'Request body must be a JSON object'


def test_schedule_create_validation_messages():
    target, aq, api = s_setup()
    wrong = []
    for fields, message in VALIDATION:
        body = s_body(**fields)
        reply = api.post('/tasks', body)
        if reply.status != 400 or reply.json != {'error': message}:
            shown = {k: '<absent>' if v is DROP else v for k, v in fields.items()}
            wrong.append('%s -> %r, expected 400 "%s"' % (json.dumps(shown)[:160], reply, message))
    for kind, expr, prefix in BAD_EXPRESSIONS:
        reply = api.post('/tasks', s_body(schedule_kind=kind, schedule_expr=expr))
        if not (reply.status == 400 and reply.error and reply.error.startswith(prefix)
                and len(reply.error) > len(prefix)):
            wrong.append('%s %r -> %r, expected 400 "%s<why>"' % (kind, expr, reply, prefix))
    for text in ('[1, 2]', '"cron"', '42', 'null', ''):
        reply = api.post('/tasks', text)
        if reply.status != 400 or reply.json != {'error': NOT_OBJECT}:
            wrong.append('raw %r -> %r' % (text, reply))
    assert not wrong, '%d of %d bad bodies answered wrongly:\n  %s' % (
        len(wrong), len(VALIDATION) + len(BAD_EXPRESSIONS) + 5, '\n  '.join(wrong))
    listed = api.get('/tasks')
    assert listed.status == 200 and listed.json['pagination']['total'] == 0, \
        'rejected bodies created schedules: %r' % listed


# ---------------------------------------------------------------------------
# Auth

ENDPOINTS = [
    # (method, path, body, writes)
    ('POST', '/tasks', s_body(), True),
    ('GET', '/tasks', None, False),
    ('GET', '/tasks/{id}', None, False),
    ('PUT', '/tasks/{id}', {'title': 'renamed'}, True),
    ('POST', '/tasks/{id}/run_now', None, True),
    ('POST', '/tasks/{id}/snooze', {'delay_seconds': 60}, True),
    ('POST', '/tasks/{id}/pause', None, True),
    ('POST', '/tasks/{id}/resume', None, True),
    ('POST', '/tasks/{id}/cancel', None, True),
    ('GET', '/tasks/{id}/runs', None, False),
    ('GET', '/tasks/{id}/preview?count=2', None, False),
    # a preview changes nothing: a read key may ask for one
    ('POST', '/tasks/preview', {'schedule_kind': 'cron', 'schedule_expr': '0 9 * * *'}, False),
    ('POST', '/events', {'name': 'x'}, True),
]


def test_schedule_auth_and_other_teams():
    target, aq, api = s_setup()
    read_key = aq.new_key(api.team, scope='read')
    other = s_team(aq)
    mine = api.create(s_body(title='mine'))
    theirs = other.create(s_body(title='theirs'))
    wrong = aqtest.auth_matrix(api, ENDPOINTS, mine['id'], theirs['id'], read_key, other.key,
                               bogus_ids=(str(uuid.uuid4()), 'not-a-uuid'))
    assert not wrong, '%d answers wrong:\n  %s' % (len(wrong), '\n  '.join(wrong))
    # nothing above changed either schedule, or made a run
    for who, task in ((api, mine), (other, theirs)):
        now = who.schedule(task['id'])
        assert now == task, 'a refused request changed %s: %s' % (task['title'], now)
        assert who.runs(task['id']) == [], 'a refused request made a run'
    # each team lists its own
    assert [t['id'] for t in api.get('/tasks').json['tasks']] == [mine['id']]
    assert [t['id'] for t in other.get('/tasks').json['tasks']] == [theirs['id']]
    # the owner can write
    reply = api.put('/tasks/%s' % mine['id'], {'title': 'renamed'})
    assert reply.status == 200 and reply.json['task']['title'] == 'renamed', reply


# ---------------------------------------------------------------------------
# List, preview

def test_schedule_list_filters_and_pagination():
    target, aq, api = s_setup()
    other = s_team(aq)
    other.create(s_body())
    u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
    far = '2099-06-01T12:00:00.000Z'
    bodies = [s_body(created_by=u1),
              s_body(created_by=u2, schedule_kind='rrule',
                     schedule_expr='FREQ=DAILY;BYHOUR=3;BYMINUTE=0;BYSECOND=0'),
              s_body(created_by=u1, schedule_kind='once', schedule_expr=far),
              s_body(created_by=u2, schedule_kind='event', schedule_expr='invoice.paid'),
              s_body(created_by=u1, schedule_expr='30 4 * * *'),
              s_body(created_by=u2, schedule_expr='45 5 * * *'),
              s_body(created_by=u1, schedule_kind='event', schedule_expr='order.shipped')]
    ids = [api.create(b)['id'] for b in bodies]
    api.act(ids[4], 'pause')
    api.act(ids[5], 'cancel')
    newest = ids[::-1]

    def page(query):
        reply = api.get('/tasks' + query)
        assert reply.status == 200, '%s -> %r' % (query, reply)
        assert set(reply.json) == {'tasks', 'pagination'}, reply
        return [t['id'] for t in reply.json['tasks']], reply.json['pagination']

    def expect(query, want, **pagination):
        got, pg = page(query)
        assert got == want, 'GET /tasks%s: %s, expected %s' % (query, got, want)
        assert pg['hasMore'] is pg['has_more'], pg
        for name, value in pagination.items():
            assert pg[name] == value, 'GET /tasks%s: pagination %s, expected %s=%r' % (
                query, pg, name, value)
        return pg

    pg = expect('', newest)
    assert pg == {'total': 7, 'limit': 50, 'offset': 0, 'hasMore': False, 'has_more': False}, pg
    expect('?status=active', [i for i in newest if i not in (ids[4], ids[5])], total=5)
    expect('?status=paused', [ids[4]], total=1)
    expect('?status=canceled', [ids[5]], total=1)
    expect('?created_by=%s' % u1, [ids[6], ids[4], ids[2], ids[0]], total=4)
    expect('?created_by=%s' % u2, [ids[5], ids[3], ids[1]], total=3)
    expect('?schedule_kind=cron', [ids[5], ids[4], ids[0]], total=3)
    expect('?schedule_kind=rrule', [ids[1]], total=1)
    expect('?schedule_kind=once', [ids[2]], total=1)
    expect('?schedule_kind=event', [ids[6], ids[3]], total=2)
    expect('?status=active&schedule_kind=cron', [ids[0]], total=1)
    expect('?status=active&created_by=%s&schedule_kind=event' % u1, [ids[6]], total=1)
    expect('?created_by=%s' % uuid.uuid4(), [], total=0, has_more=False)
    expect('?limit=3', newest[:3], total=7, limit=3, offset=0, has_more=True)
    expect('?limit=3&offset=3', newest[3:6], total=7, offset=3, has_more=True)
    expect('?limit=3&offset=6', newest[6:], total=7, offset=6, has_more=False)
    expect('?limit=3&offset=30', [], total=7, has_more=False)
    expect('?status=active&limit=2&offset=2', [i for i in newest if i not in (ids[4], ids[5])][2:4],
           total=5, has_more=True)
    expect('?limit=100', newest, limit=100)
    listed = api.get('/tasks?limit=1').json['tasks'][0]
    assert listed == api.schedule(listed['id']), 'a listed schedule differs from GET'
    bad = [('?status=done', 'status must be one of: active, paused, canceled'),
           ('?status=cancelled', 'status must be one of: active, paused, canceled'),
           ('?schedule_kind=weekly', 'schedule_kind must be one of: cron, rrule, once, event'),
           ('?created_by=agent-7', 'created_by must be a UUID'),
           ('?limit=0', 'limit must be a number between 1 and 100'),
           ('?limit=101', 'limit must be a number between 1 and 100'),
           ('?limit=ten', 'limit must be a number between 1 and 100'),
           ('?offset=-1', 'offset must be a non-negative number')]
    for query, message in bad:
        reply = api.get('/tasks' + query)
        assert reply.status == 400 and reply.json == {'error': message}, (query, reply)


def test_schedule_preview_matches_zoneinfo():
    target, aq, api = s_setup()
    zone = 'Europe/Chisinau'
    weekdays = api.create(s_body(schedule_expr='0 9 * * 1-5', timezone=zone))
    before = now_ms()
    reply = api.get('/tasks/%s/preview?count=5' % weekdays['id'])
    assert reply.status == 200, reply
    want = s_local_fires(zone, before, 5, lambda d: d.weekday() < 5, 9, 0)
    assert reply.json == {'schedule_kind': 'cron', 'schedule_expr': '0 9 * * 1-5',
                          'timezone': zone, 'fire_times': want}, \
        'preview %r, expected fire_times %s' % (reply, want)
    assert weekdays['next_run_at'] == s_local_fires(zone, s_ms(weekdays['created_at']), 1,
                                                    lambda d: d.weekday() < 5, 9, 0)[0], weekdays
    # count defaults to 5; up to 1000
    reply = api.get('/tasks/%s/preview' % weekdays['id'])
    assert reply.status == 200 and reply.json['fire_times'] == want, reply
    reply = api.get('/tasks/%s/preview?count=1000' % weekdays['id'])
    assert reply.status == 200 and len(reply.json['fire_times']) == 1000, reply
    times = [s_ms(t) for t in reply.json['fire_times']]
    assert times == sorted(set(times)), 'fire times not strictly increasing'
    for count in ('0', '1001', '-1', 'five', '2.5'):
        reply = api.get('/tasks/%s/preview?count=%s' % (weekdays['id'], count))
        assert reply.status == 400 and reply.json == {
            'error': 'count must be a number between 1 and 1000'}, (count, reply)

    # POST /tasks/preview: the same schedule before it exists
    body = {'schedule_kind': 'cron', 'schedule_expr': '0 9 * * 1-5', 'timezone': zone}
    before = now_ms()
    reply = api.post('/tasks/preview', body)
    want = s_local_fires(zone, before, 5, lambda d: d.weekday() < 5, 9, 0)
    assert reply.status == 200 and reply.json == dict(body, fire_times=want), reply
    # Vixie's rule: both day fields restricted -> either matches (the 1st, or a Monday)
    body = {'schedule_kind': 'cron', 'schedule_expr': '0 12 1 * MON', 'timezone': zone}
    before = now_ms()
    reply = api.post('/tasks/preview', body)
    want = s_local_fires(zone, before, 5, lambda d: d.day == 1 or d.weekday() == 0, 12, 0)
    assert reply.status == 200 and reply.json['fire_times'] == want, (reply, want)
    # an RRULE in the zone
    body = {'schedule_kind': 'rrule', 'schedule_expr': 'FREQ=DAILY;BYHOUR=9;BYMINUTE=30;BYSECOND=0',
            'timezone': zone}
    before = now_ms()
    reply = api.post('/tasks/preview', body)
    want = s_local_fires(zone, before, 5, lambda d: True, 9, 30)
    assert reply.status == 200 and reply.json['fire_times'] == want, (reply, want)
    # the count may travel in the body (proto: schedule:{..., count?})
    reply = api.post('/tasks/preview', dict(body, count=2))
    assert reply.status == 200 and reply.json['fire_times'] == want[:2], reply
    # timezone defaults to UTC
    before = now_ms()
    reply = api.post('/tasks/preview', {'schedule_kind': 'cron', 'schedule_expr': '15 6 * * *'})
    want = s_local_fires('UTC', before, 5, lambda d: True, 6, 15)
    assert reply.status == 200 and reply.json == {
        'schedule_kind': 'cron', 'schedule_expr': '15 6 * * *', 'timezone': 'UTC',
        'fire_times': want}, reply
    # every 2 s from the schedule's creation; a once; an event has none
    rr = api.create(s_every_2s(NEVER))
    reply = api.get('/tasks/%s/preview?count=4' % rr['id'])
    times = [s_ms(t) for t in reply.json['fire_times']]
    assert len(times) == 4 and all(b - a == PERIOD_MS for a, b in zip(times, times[1:])), reply
    assert s_on_grid(s_ms(rr['next_run_at']), times[0]), (rr['next_run_at'], reply)
    at = aqtest.iso(now_ms() + 86400 * 1000)
    once = api.create(s_body(schedule_kind='once', schedule_expr=at))
    reply = api.get('/tasks/%s/preview?count=5' % once['id'])
    assert reply.status == 200 and reply.json['fire_times'] == [at], reply
    event = api.create(s_body(schedule_kind='event', schedule_expr='invoice.paid'))
    reply = api.get('/tasks/%s/preview' % event['id'])
    assert reply.status == 200 and reply.json['fire_times'] == [], reply
    # POST /tasks/preview validates like POST /tasks
    for body, message in (
            ({'schedule_kind': 'cron', 'schedule_expr': '0 9 * * *', 'timezone': 'Mars/Base'},
             'timezone must be a valid IANA time zone'),
            ({'schedule_kind': 'hourly', 'schedule_expr': '0 9 * * *'},
             'schedule_kind must be one of: cron, rrule, once, event'),
            ({'schedule_kind': 'once', 'schedule_expr': 'soon'},
             'schedule_expr must be an ISO 8601 date-time')):
        reply = api.post('/tasks/preview', body)
        assert reply.status == 400 and reply.json == {'error': message}, (body, reply)
    reply = api.post('/tasks/preview', {'schedule_kind': 'cron', 'schedule_expr': '99 * * * *'})
    assert reply.status == 400 and reply.error.startswith('Invalid cron expression: '), reply


# ---------------------------------------------------------------------------
# Runs

def test_schedule_runs_pipeline_steps_in_order():
    target, aq, api = s_setup()
    tag = s_tag()
    first, second = '/sleep/300/%s/s0' % tag, '/ok/%s/s1' % tag
    payload = {'steps': [{'targetUrl': target.url(first), 'maxRetries': 0},
                         {'targetUrl': target.url(second), 'maxRetries': 0, 'priority': 3}]}
    task = api.create(s_body(schedule_kind='rrule', schedule_expr=EVERY_2S, payload=payload,
                             priority=2))
    assert task['status'] == 'active' and task['next_run_at'], task
    runs = api.wait_runs(task['id'], s_done(2, 'schedule'), 12, 'two finished runs')
    done = [r for r in s_schedule_runs(runs) if r['status'] in RUN_DONE]
    calls = s_calls(target, '/sleep/300/%s/' % tag)
    calls.update(s_calls(target, '/ok/%s/' % tag))
    for run in done:
        assert set(run) >= RUN_KEYS, 'run keys %s lack %s' % (sorted(run), RUN_KEYS - set(run))
        assert run['status'] == 'completed' and run['attempt'] == 1, run
        assert run['task_id'] == task['id'] and run['steps_total'] == 2, run
        assert run['error'] is None and run['next_attempt_at'] is None, run
        for name in ('scheduled_at', 'started_at', 'finished_at'):
            assert ISO_MS.match(run[name] or ''), '%s: %r' % (name, run)
        assert s_ms(run['started_at']) >= s_ms(run['scheduled_at']), run
        assert [s['step'] for s in run['steps']] == [0, 1], run['steps']
        assert [s['status'] for s in run['steps']] == ['completed', 'completed'], run['steps']
        arrivals = []
        for entry in run['steps']:
            step = api.step_task(entry['task_id'])
            assert step.get('scheduleId') == task['id'] and step.get('runId') == run['id'], step
            assert step.get('step') == entry['step'], step
            # 10 - schedule priority, unless the template gives its own
            assert step.get('priority') == (8 if entry['step'] == 0 else 3), step
            got = calls.get(entry['task_id'], [])
            assert len(got) == 1, 'step %s of run %s: %d calls' % (
                entry['step'], run['id'], len(got))
            arrivals.append(got[0]['at'])
        assert calls[run['steps'][0]['task_id']][0]['path'].startswith('/sleep/300/'), calls
        assert calls[run['steps'][1]['task_id']][0]['path'].startswith('/ok/'), calls
        # step 1 is called only once step 0 (a 300 ms call) has answered
        assert arrivals[1] >= arrivals[0] + 290, \
            'step 1 called %d ms after step 0 started (step 0 takes 300 ms)' % (
                arrivals[1] - arrivals[0])
    fires = [s_ms(r['scheduled_at']) for r in s_schedule_runs(runs)]
    assert all(b - a == PERIOD_MS for a, b in zip(fires, fires[1:])), \
        'fire times not 2 s apart: %s' % [aqtest.iso(f) for f in fires]
    now = api.schedule(task['id'])
    assert now['last_run_at'] and s_ms(now['last_run_at']) >= fires[0], now
    assert now['next_run_at'] and s_on_grid(fires[0], s_ms(now['next_run_at'])), now
    assert s_ms(now['next_run_at']) > fires[-1], now
    # runs are listed newest first, with pagination
    reply = api.get('/tasks/%s/runs?limit=1' % task['id'])
    assert reply.status == 200 and len(reply.json['runs']) == 1, reply
    pg = reply.json['pagination']
    assert pg['limit'] == 1 and pg['offset'] == 0, pg
    assert pg['hasMore'] is True and pg['has_more'] is True and pg['total'] >= 2, pg
    listed = api.runs(task['id'])
    starts = [s_ms(r['started_at']) for r in listed if r['started_at']]
    assert starts == sorted(starts, reverse=True), 'runs not newest first'


def test_schedule_once_fires_exactly_once():
    target, aq, api = s_setup()
    tag = s_tag()
    at = int(now_ms()) + 2500
    plain = api.create(s_body(schedule_kind='once', schedule_expr=aqtest.iso(at),
                              payload=s_steps(target.url('/ok/%s/z' % tag))))
    # the same kind of instant written with an offset
    at2 = at + 300
    offset = api.create(s_body(schedule_kind='once', schedule_expr=s_iso_offset(at2, 3),
                               payload=s_steps(target.url('/ok/%s/offset' % tag))))
    assert plain['next_run_at'] == aqtest.iso(at), plain
    assert offset['next_run_at'] == aqtest.iso(at2), offset
    assert api.runs(plain['id']) == [], 'a once ran before its time'
    for task, when in ((plain, at), (offset, at2)):
        runs = api.wait_runs(task['id'], s_done(1), 10, 'the once to run')
        run = runs[0]
        assert run['trigger'] == 'schedule' and run['status'] == 'completed', run
        assert run['scheduled_at'] == aqtest.iso(when), run
        started = s_ms(run['started_at'])
        assert when <= started <= when + 1500, 'once for %s started at %s' % (
            aqtest.iso(when), run['started_at'])
    time.sleep(2.0)
    for task, path in ((plain, '/ok/%s/z' % tag), (offset, '/ok/%s/offset' % tag)):
        runs = api.runs(task['id'])
        assert len(runs) == 1, 'a once ran %d times: %s' % (len(runs), s_show_runs(runs))
        assert len(target.requests(path)) == 1, 'the step was called %d times' % len(
            target.requests(path))
        now = api.schedule(task['id'])
        assert now['next_run_at'] is None, 'next_run_at after the once: %r' % now['next_run_at']
        assert now['last_run_at'] is not None, now


def test_schedule_failing_step_fails_run_retry_resumes_at_failed_step():
    target, aq, api = s_setup(extra=['--backoff-base-ms', BASE_MS])
    tag = s_tag()
    # no run retries: a step that fails fails the run
    failing = api.create(s_event('never-%s' % tag, NEVER, max_retries=0, payload=s_steps(
        target.url('/ok/%s/f0' % tag), target.url('/status/500/%s/f1' % tag),
        target.url('/ok/%s/f2' % tag))))
    # one run retry: the second attempt starts at step 1 and succeeds
    retried = api.create(s_event('never-%s' % tag, NEVER, max_retries=1,
                                 backoff_strategy='fixed', payload=s_steps(
                                     target.url('/ok/%s/r0' % tag),
                                     target.url('/fail-first/1/%s-r1' % tag))))
    # two run retries, always failing: three attempts, then failed
    exhausted = api.create(s_event('never-%s' % tag, NEVER, max_retries=2,
                                   backoff_strategy='linear',
                                   payload=s_steps(target.url('/status/503/%s/x0' % tag))))
    for task in (failing, retried, exhausted):
        run = api.run_now(task['id'])
        assert run['trigger'] == 'run_now' and run['task_id'] == task['id'], run
        assert run['attempt'] == 1 and run['steps_total'] == len(task['payload']['steps']), run

    run = api.wait_runs(failing['id'], s_done(1), 10, 'the failing run to end')[0]
    assert run['status'] == 'failed' and run['attempt'] == 1, run
    assert run['error'], 'a failed run without an error: %r' % run
    assert [(s['step'], s['status']) for s in run['steps']] == [(0, 'completed'), (1, 'failed')], \
        run['steps']
    assert len(target.requests('/status/500/%s/f1' % tag)) == 1
    assert target.requests('/ok/%s/f2' % tag) == [], 'a step after the failed one ran'

    seen_retrying = []

    def retried_done(runs):
        if runs and runs[0]['status'] == 'retrying':
            seen_retrying.append(runs[0])
        return s_done(1)(runs)
    run = api.wait_runs(retried['id'], retried_done, 10, 'the retried run to end')[0]
    assert run['status'] == 'completed' and run['attempt'] == 2, run
    assert run['error'] is None and run['next_attempt_at'] is None, run
    steps = [(s['step'], s['status']) for s in run['steps']]
    assert steps == [(0, 'completed'), (1, 'failed'), (1, 'completed')], \
        'steps %s: expected step 0 once, step 1 failed then completed' % steps
    assert len(target.requests('/ok/%s/r0' % tag)) == 1, 'the retry called step 0 again'
    assert len(target.requests('/fail-first/1/%s-r1' % tag)) == 2
    for retrying in seen_retrying:
        assert retrying['next_attempt_at'] and ISO_MS.match(retrying['next_attempt_at']), retrying
    for entry in run['steps']:
        assert api.step_task(entry['task_id']).get('runId') == run['id'], entry

    run = api.wait_runs(exhausted['id'], s_done(1), 15, 'the exhausted run to end')[0]
    assert run['status'] == 'failed' and run['attempt'] == 3, run
    assert [(s['step'], s['status']) for s in run['steps']] == [(0, 'failed')] * 3, run['steps']
    assert len(target.requests('/status/503/%s/x0' % tag)) == 3


# ---------------------------------------------------------------------------
# Pause, resume, snooze, run_now, cancel

def test_schedule_pause_stops_runs_resume_coalesces():
    target, aq, api = s_setup()
    tag = s_tag()
    task = api.create(s_every_2s(target.url('/ok/%s' % tag)))
    runs = api.wait_runs(task['id'], s_done(1), 8, 'a first run')
    grid = s_ms(s_schedule_runs(runs)[0]['scheduled_at'])
    s_sleep_until(s_mid_gap(grid, now_ms() + 100))
    reply = api.act(task['id'], 'pause')
    paused_at = now_ms()
    assert reply['task']['status'] == 'paused', reply
    again = api.act(task['id'], 'pause')            # pausing a paused task: a no-op
    assert again['task']['status'] == 'paused', again
    assert api.get('/tasks?status=paused').json['tasks'][0]['id'] == task['id']
    before = len(api.runs(task['id']))
    # two fire times go by
    s_sleep_until(paused_at + 2 * PERIOD_MS)
    runs = api.runs(task['id'])
    assert len(runs) == before, 'runs while paused: %s' % s_show_runs(runs)
    resumed = api.act(task['id'], 'resume')
    resumed_at = now_ms()
    assert resumed['task']['status'] == 'active', resumed
    assert api.act(task['id'], 'resume')['task']['status'] == 'active'   # a no-op
    missed = list(range(s_grid_at_or_after(grid, paused_at), int(resumed_at), PERIOD_MS))
    assert len(missed) >= 2, 'the pause spanned only %d fire times' % len(missed)
    regular = s_grid_at_or_after(grid, resumed_at)   # the first fire time after the resume
    runs = api.wait_runs(task['id'], lambda rs: any(
        s_ms(r['scheduled_at']) == regular and r['status'] in RUN_DONE
        for r in s_schedule_runs(rs)), 8, 'the run at the first fire time after resume')
    ours = s_schedule_runs(runs)
    fires = [s_ms(r['scheduled_at']) for r in ours]
    assert len(fires) == len(set(fires)), 'a fire time ran twice: %s' % s_show_runs(ours)
    during = [r for r in ours if r['started_at']
              and paused_at + 200 <= s_ms(r['started_at']) < resumed_at - 50]
    assert not during, 'runs started while paused: %s' % s_show_runs(during)
    coalesced = [r for r in ours if paused_at < s_ms(r['scheduled_at']) < regular]
    assert len(coalesced) == 1, '%d runs for the %d missed fire times, expected 1: %s' % (
        len(coalesced), len(missed), s_show_runs(coalesced))
    started = s_ms(coalesced[0]['started_at'])
    assert resumed_at - 300 <= started <= resumed_at + 1500, \
        'the coalesced run started %d ms after resume' % (started - resumed_at)
    after = [r for r in ours if s_ms(r['scheduled_at']) >= regular]
    assert after and all(s_on_grid(grid, s_ms(r['scheduled_at'])) for r in after), \
        'after resume the schedule left its grid: %s' % s_show_runs(after)


def test_schedule_snooze_holds_runs_off():
    target, aq, api = s_setup()
    tag = s_tag()
    task = api.create(s_every_2s(target.url('/ok/%s' % tag)))
    long_one = api.create(s_every_2s(target.url('/ok/%s/long' % tag)))
    before = now_ms()
    reply = api.act(task['id'], 'snooze', {'delay_seconds': 4, 'reason': 'maintenance window'})
    after = now_ms()
    snoozed = reply['task']
    until = s_ms(snoozed['snoozed_until'])
    assert before + 4000 - 5 <= until <= after + 4000 + 5, \
        'snoozed_until %s for delay 4 s at %s' % (snoozed['snoozed_until'], aqtest.iso(before))
    assert snoozed['snooze_reason'] == 'maintenance window', snoozed
    assert snoozed['status'] == 'active', snoozed
    assert snoozed['next_run_at'] == snoozed['snoozed_until'], \
        'next_run_at %s was earlier than snoozed_until %s: it moves there' % (
            snoozed['next_run_at'], snoozed['snoozed_until'])
    assert api.schedule(task['id'])['snoozed_until'] == snoozed['snoozed_until']
    # a week is the most; reason optional
    week = api.act(long_one['id'], 'snooze', {'delay_seconds': 604800})['task']
    assert abs(s_ms(week['snoozed_until']) - (now_ms() + 604800 * 1000)) < 5000, week
    assert week['snooze_reason'] is None, week
    delay = 'delay_seconds must be an integer between 1 and 604800'
    for body, message in (({'delay_seconds': 0}, delay), ({'delay_seconds': 604801}, delay),
                          ({'delay_seconds': -5}, delay), ({'delay_seconds': '60'}, delay),
                          ({'delay_seconds': 1.5}, delay), ({}, 'delay_seconds is required'),
                          ({'reason': 'x'}, 'delay_seconds is required'),
                          ({'delay_seconds': 60, 'reason': 'r' * 501},
                           'reason must be a string of at most 500 characters')):
        reply = api.post('/tasks/%s/snooze' % long_one['id'], body)
        assert reply.status == 400 and reply.json == {'error': message}, (body, reply)
    reply = api.post('/tasks/%s/snooze' % long_one['id'], '[60]')
    assert reply.status == 400 and reply.json == {'error': NOT_OBJECT}, reply
    # run_now ignores the snooze
    run = api.run_now(task['id'])
    assert run['trigger'] == 'run_now', run
    runs = api.wait_runs(task['id'], s_done(1, 'run_now'), 5, 'the run_now run')
    manual = [r for r in runs if r['trigger'] == 'run_now'][0]
    assert manual['status'] == 'completed' and s_ms(manual['started_at']) < until, manual
    # no scheduled run before snoozed_until, then the schedule runs again
    runs = api.wait_runs(task['id'], s_done(1, 'schedule'), (until - now_ms()) / 1000 + 4,
                         'a scheduled run after the snooze')
    # a fire time that came between the create and the snooze ran before it:
    # only the fire times after the snooze count
    scheduled = [r for r in s_schedule_runs(runs) if s_ms(r['scheduled_at']) >= before]
    early = [r for r in scheduled if s_ms(r['started_at']) < until]
    assert not early, 'runs started before snoozed_until %s: %s' % (
        aqtest.iso(until), s_show_runs(early))
    assert s_ms(scheduled[0]['started_at']) <= until + 2500, s_show_runs(scheduled)
    assert api.runs(long_one['id']) == [], 'the week-long snooze let a run through'


def test_schedule_run_now_on_paused_and_cancel_is_final():
    target, aq, api = s_setup()
    tag = s_tag()
    paused = api.create(s_every_2s(target.url('/ok/%s/paused' % tag)))
    api.act(paused['id'], 'pause')
    active = api.create(s_every_2s(target.url('/ok/%s/active' % tag)))
    reply = api.post('/tasks/%s/run_now' % paused['id'])
    assert reply.status == 201 and list(reply.json) == ['run'], reply
    run = reply.json['run']
    assert run['trigger'] == 'run_now' and run['task_id'] == paused['id'], run
    assert run['scheduled_at'] is None and aqtest.is_uuid(run['id']), run
    assert run['status'] in ('pending', 'running', 'completed'), run
    runs = api.wait_runs(paused['id'], s_done(1), 5, 'the run_now run on a paused task')
    assert [r['id'] for r in runs] == [run['id']] and runs[0]['status'] == 'completed', runs
    assert len(target.requests('/ok/%s/paused' % tag)) == 1
    assert api.schedule(paused['id'])['status'] == 'paused', 'run_now resumed the task'

    runs = api.wait_runs(active['id'], s_done(1), 8, 'a first run of the active task')
    grid = s_ms(s_schedule_runs(runs)[0]['scheduled_at'])
    s_sleep_until(s_mid_gap(grid, now_ms() + 100))
    canceled = api.act(active['id'], 'cancel')['task']
    canceled_at = now_ms()
    assert canceled['status'] == 'canceled', canceled
    assert canceled['next_run_at'] is None, canceled
    count = len(api.runs(active['id']))
    conflicts = [('resume', None, 'resumed'), ('run_now', None, 'run'), ('pause', None, 'paused'),
                 ('snooze', {'delay_seconds': 60}, 'snoozed'), ('cancel', None, 'canceled')]
    for verb, body, word in conflicts:
        reply = api.post('/tasks/%s/%s' % (active['id'], verb), body)
        assert reply.status == 409 and reply.json == {
            'error': 'Task cannot be %s in status canceled' % word}, (verb, reply)
    reply = api.put('/tasks/%s' % active['id'], {'title': 'again'})
    assert reply.status == 409 and reply.json == {
        'error': 'Task cannot be updated in status canceled'}, reply
    assert api.get('/tasks?status=canceled').json['tasks'][0]['id'] == active['id']
    # the next fire time goes by: nothing new
    s_sleep_until(canceled_at + PERIOD_MS + 400)
    runs = api.runs(active['id'])
    assert len(runs) == count, 'runs after cancel: %s' % s_show_runs(runs)
    assert all(s_ms(r['scheduled_at']) < canceled_at for r in s_schedule_runs(runs)), runs
    assert api.schedule(active['id'])['status'] == 'canceled'
    # the paused one never ran on its own
    assert len(api.runs(paused['id'])) == 1


def test_schedule_put_partial_update():
    target, aq, api = s_setup()
    task = api.create(s_body(schedule_expr='0 9 * * *', priority=4))
    created = task['created_at']
    time.sleep(0.01)
    before = now_ms()
    reply = api.put('/tasks/%s' % task['id'], {'schedule_expr': '30 10 * * *'})
    assert reply.status == 200 and list(reply.json) == ['task'], reply
    updated = reply.json['task']
    want = s_local_fires('UTC', before, 1, lambda d: True, 10, 30)[0]
    assert updated['schedule_expr'] == '30 10 * * *' and updated['next_run_at'] == want, \
        'next_run_at %s after the change, expected %s' % (updated['next_run_at'], want)
    unchanged = {k: v for k, v in task.items()
                 if k not in ('schedule_expr', 'next_run_at', 'updated_at')}
    assert {k: updated[k] for k in unchanged} == unchanged, 'PUT changed other fields: %s' % updated
    assert updated['created_at'] == created, updated
    assert s_ms(updated['updated_at']) >= s_ms(created), updated
    assert api.schedule(task['id']) == updated
    # the zone too: the same 10:30 in Chisinau
    before = now_ms()
    updated = api.put('/tasks/%s' % task['id'], {'timezone': 'Europe/Chisinau'}).json['task']
    want = s_local_fires('Europe/Chisinau', before, 1, lambda d: True, 10, 30)[0]
    assert updated['timezone'] == 'Europe/Chisinau' and updated['next_run_at'] == want, updated
    # another kind altogether
    at = aqtest.iso(now_ms() + 7200 * 1000)
    reply = api.put('/tasks/%s' % task['id'], {'schedule_kind': 'once', 'schedule_expr': at})
    assert reply.status == 200, reply
    updated = reply.json['task']
    assert updated['schedule_kind'] == 'once' and updated['next_run_at'] == at, updated
    # fields beside the schedule
    steps = s_steps(URL)
    updated = api.put('/tasks/%s' % task['id'], {'title': 'renamed', 'priority': 1,
                                                 'max_retries': 0, 'payload': steps,
                                                 'dedupe_key': 'd1'}).json['task']
    assert updated['title'] == 'renamed' and updated['priority'] == 1, updated
    assert updated['max_retries'] == 0 and updated['dedupe_key'] == 'd1', updated
    assert [s['targetUrl'] for s in updated['payload']['steps']] == [URL], updated
    assert updated['next_run_at'] == at and updated['description'] == task['description'], updated
    snapshot = api.schedule(task['id'])
    # invalid changes are refused whole
    for body, message in (({'bogus': 1}, 'Unknown field: bogus'),
                          ({'title': 'ok', 'bogus': 1}, 'Unknown field: bogus'),
                          ({'priority': 10}, 'priority must be an integer between 1 and 9'),
                          ({'title': ''}, 'title must be a string of 1 to 200 characters'),
                          ({'timezone': 'Nowhere/Land'}, 'timezone must be a valid IANA time zone'),
                          ({'schedule_kind': 'sometimes'},
                           'schedule_kind must be one of: cron, rrule, once, event'),
                          ({'schedule_expr': 'next tuesday'},
                           'schedule_expr must be an ISO 8601 date-time'),
                          ({'created_by': 'me'}, 'created_by must be a UUID'),
                          ({'payload': {'steps': []}},
                           'payload.steps must be an array of 1 to 50 task templates')):
        reply = api.put('/tasks/%s' % task['id'], body)
        assert reply.status == 400 and reply.json == {'error': message}, (body, reply)
    reply = api.put('/tasks/%s' % task['id'], {'schedule_kind': 'cron',
                                               'schedule_expr': '0 0 0 0 0'})
    assert reply.status == 400 and reply.error.startswith('Invalid cron expression: '), reply
    reply = api.put('/tasks/%s' % task['id'], '["title"]')
    assert reply.status == 400 and reply.json == {'error': NOT_OBJECT}, reply
    assert api.schedule(task['id']) == snapshot, 'a refused PUT changed the task'
    # a paused task can be updated; a canceled one cannot
    api.act(task['id'], 'pause')
    reply = api.put('/tasks/%s' % task['id'], {'description': 'paused but editable'})
    assert reply.status == 200 and reply.json['task']['status'] == 'paused', reply
    api.act(task['id'], 'cancel')
    reply = api.put('/tasks/%s' % task['id'], {'title': 'too late'})
    assert reply.status == 409 and reply.json == {
        'error': 'Task cannot be updated in status canceled'}, reply
    reply = api.put('/tasks/%s' % uuid.uuid4(), {'title': 'x'})
    assert reply.status == 404 and reply.json == NOT_FOUND, reply


# ---------------------------------------------------------------------------
# dedupe_key, concurrency_key

def test_schedule_dedupe_key_skips_second_run():
    target, aq, api = s_setup()
    other = s_team(aq)
    tag = s_tag()
    one = api.create(s_event('dd', target.url('/ok/%s/one' % tag), dedupe_key='nightly'))
    two = api.create(s_event('dd', target.url('/ok/%s/two' % tag), dedupe_key='nightly'))
    own = api.create(s_event('dd', target.url('/ok/%s/own' % tag), dedupe_key='own-key'))
    theirs = other.create(s_event('dd', target.url('/ok/%s/theirs' % tag), dedupe_key='nightly'))
    assert one['dedupe_window_seconds'] == 300, one

    fired = api.post('/events', {'name': 'dd'})
    assert fired.status == 200 and fired.json['event'] == {'name': 'dd', 'matched': 3}, fired
    finals = {}
    for task in (one, two, own):
        finals[task['id']] = api.wait_runs(task['id'], s_done(1), 8, 'the event run')[0]
    pair = [finals[one['id']], finals[two['id']]]
    statuses = sorted(r['status'] for r in pair)
    assert statuses == ['completed', 'skipped'], \
        'two schedules, one dedupe_key, one event: %s' % s_show_runs(pair)
    skipped = [r for r in pair if r['status'] == 'skipped'][0]
    assert skipped['error'] == 'deduplicated' and skipped['trigger'] == 'event', skipped
    assert finals[own['id']]['status'] == 'completed', finals[own['id']]
    # within the window again: all three skipped (each key's run started < 300 s ago)
    assert api.post('/events', {'name': 'dd'}).status == 200
    for task in (one, two, own):
        runs = api.wait_runs(task['id'], s_done(2), 8, 'the second event run')
        assert runs[0]['status'] == 'skipped' and runs[0]['error'] == 'deduplicated', \
            s_show_runs(runs)
    calls = {name: len(target.requests('/ok/%s/%s' % (tag, name)))
             for name in ('one', 'two', 'own')}
    assert sum(calls.values()) == 2 and calls['own'] == 1, 'calls %s' % calls
    # run_now is never deduplicated
    run = api.run_now(skipped['task_id'])
    runs = api.wait_runs(skipped['task_id'], lambda rs: any(
        r['id'] == run['id'] and r['status'] in RUN_DONE for r in rs), 8, 'the run_now run')
    assert [r for r in runs if r['id'] == run['id']][0]['status'] == 'completed', runs
    # another team's key of the same name is another key
    fired = other.post('/events', {'name': 'dd'})
    assert fired.status == 200 and fired.json['event']['matched'] == 1, fired
    run = other.wait_runs(theirs['id'], s_done(1), 8, "the other team's run")[0]
    assert run['status'] == 'completed', run
    # a short window: skipped inside it, runs again after it
    short = api.create(s_event('dw', target.url('/ok/%s/short' % tag), dedupe_key='short',
                               dedupe_window_seconds=2))
    assert short['dedupe_window_seconds'] == 2, short
    api.post('/events', {'name': 'dw'})
    first = api.wait_runs(short['id'], s_done(1), 8, 'the first short-window run')[0]
    assert first['status'] == 'completed', first
    api.post('/events', {'name': 'dw'})
    runs = api.wait_runs(short['id'], s_done(2), 8, 'the second short-window run')
    assert runs[0]['status'] == 'skipped', s_show_runs(runs)
    s_sleep_until(s_ms(first['started_at']) + 2300)
    api.post('/events', {'name': 'dw'})
    runs = api.wait_runs(short['id'], s_done(3), 8, 'the run after the window')
    assert runs[0]['status'] == 'completed', 'a run 2.3 s after, with a 2 s window: %s' % (
        s_show_runs(runs))


def test_schedule_concurrency_key_runs_never_overlap():
    target, aq, api = s_setup()
    tag = s_tag()
    tasks = {name: api.create(s_event('never-%s' % tag,
                                      target.url('/sleep/1500/%s/%s' % (tag, name)),
                                      concurrency_key=key))
             for name, key in (('a', 'db'), ('b', 'db'), ('c', 'mail'))}
    assert tasks['a']['concurrency_key'] == 'db', tasks['a']
    runs = {name: api.run_now(task['id']) for name, task in tasks.items()}
    waiting = []

    def all_done():
        finals = {}
        for name, task in tasks.items():
            run = [r for r in api.runs(task['id']) if r['id'] == runs[name]['id']][0]
            if run['status'] == 'waiting':
                waiting.append(name)
            finals[name] = run
        return finals if all(r['status'] in RUN_DONE for r in finals.values()) else None
    finals = wait_until(all_done, 15, 'the three runs to finish', interval=0.1)
    assert all(r['status'] == 'completed' for r in finals.values()), s_show_runs(finals.values())
    steps = {name: api.step_task(run['steps'][0]['task_id']) for name, run in finals.items()}
    arrivals = {name: target.requests('/sleep/1500/%s/%s' % (tag, name)) for name in tasks}
    assert all(len(a) == 1 for a in arrivals.values()), arrivals
    at = {name: a[0]['at'] for name, a in arrivals.items()}
    first, second = sorted(('a', 'b'), key=lambda n: at[n])
    assert at[second] >= at[first] + 1450, \
        'runs sharing concurrency_key overlapped: calls %d ms apart, each takes 1500 ms' % (
            at[second] - at[first])
    assert s_ms(steps[second]['startedAt']) >= s_ms(steps[first]['completedAt']), \
        'step tasks overlap: %s..%s and %s..%s' % (steps[first]['startedAt'],
                                                   steps[first]['completedAt'],
                                                   steps[second]['startedAt'],
                                                   steps[second]['completedAt'])
    assert s_ms(finals[second]['finished_at']) >= s_ms(finals[first]['finished_at']) + 1400, finals
    assert second in waiting, 'the later run was never seen "waiting" (seen: %s)' % waiting
    # another key does not wait: c ran beside the first
    assert abs(at['c'] - at[first]) < 1000, \
        'a run with another concurrency_key waited: %d ms after the first' % (at['c'] - at[first])
    assert 'c' not in waiting, 'a run with its own key waited'


# ---------------------------------------------------------------------------
# Events

def test_events_fire_active_matching_tasks_of_the_team():
    target, aq, api = s_setup()
    other = s_team(aq)
    tag = s_tag()

    def path(name):
        return '/ok/%s/%s' % (tag, name)
    x_plain = api.create(s_event('x', target.url(path('x-plain'))))
    x_body = api.create(s_event('x', target.url(path('x-body')), payload={'steps': [
        {'targetUrl': target.url(path('x-body')), 'body': 'fixed body', 'maxRetries': 0}]}))
    x_paused = api.create(s_event('x', target.url(path('x-paused'))))
    api.act(x_paused['id'], 'pause')
    x_canceled = api.create(s_event('x', target.url(path('x-canceled'))))
    api.act(x_canceled['id'], 'cancel')
    y_task = api.create(s_event('y', target.url(path('y'))))
    x_cron = api.create(s_body(schedule_expr='0 9 * * *',
                               payload=s_steps(target.url(path('cron')))))
    x_theirs = other.create(s_event('x', target.url(path('x-theirs'))))
    data = {'order': 42, 'note': 'caf\u00e9', 'items': [1, 2, {'sku': 'A-1'}], 'paid': True}

    reply = api.post('/events', {'name': 'x', 'data': data})
    assert reply.status == 200 and set(reply.json) == {'event', 'runs'}, reply
    assert reply.json['event'] == {'name': 'x', 'matched': 2}, reply
    fired = reply.json['runs']
    assert sorted(r['task_id'] for r in fired) == sorted([x_plain['id'], x_body['id']]), fired
    for run in fired:
        assert run['trigger'] == 'event' and run['event'] == {'name': 'x', 'data': data}, run
        assert run['scheduled_at'] is None, run
    for task in (x_plain, x_body):
        run = api.wait_runs(task['id'], s_done(1), 8, 'the event run')[0]
        assert run['status'] == 'completed' and run['event'] == {'name': 'x', 'data': data}, run
    time.sleep(0.3)
    plain = target.requests(path('x-plain'))
    assert len(plain) == 1, 'x-plain called %d times' % len(plain)
    try:
        received = json.loads(plain[0]['body'])
    except ValueError:
        raise AssertionError('the step without a body got %r, not the event data as JSON'
                             % plain[0]['body'])
    assert received == data, 'the step got %r, expected the event data %r' % (received, data)
    with_body = target.requests(path('x-body'))
    assert len(with_body) == 1 and with_body[0]['body'] == 'fixed body', with_body
    for name in ('x-paused', 'x-canceled', 'y', 'cron', 'x-theirs'):
        assert target.requests(path(name)) == [], '%s was fired by event x' % name
    for who, task in ((api, x_paused), (api, x_canceled), (api, y_task), (api, x_cron),
                      (other, x_theirs)):
        assert who.runs(task['id']) == [], 'runs of %s: %s' % (task['title'], who.runs(task['id']))

    # y fires y only; another team's x fires theirs only; no match is 200 with none
    reply = api.post('/events', {'name': 'y'})
    assert reply.status == 200 and reply.json['event'] == {'name': 'y', 'matched': 1}, reply
    assert api.wait_runs(y_task['id'], s_done(1), 8, 'the y run')[0]['status'] == 'completed'
    reply = other.post('/events', {'name': 'x', 'data': {'team': 'other'}})
    assert reply.status == 200 and reply.json['event']['matched'] == 1, reply
    other.wait_runs(x_theirs['id'], s_done(1), 8, "the other team's x run")
    theirs = target.requests(path('x-theirs'))
    assert len(theirs) == 1 and json.loads(theirs[0]['body']) == {'team': 'other'}, theirs
    assert len(api.runs(x_plain['id'])) == 1, "the other team's event fired ours"
    reply = api.post('/events', {'name': 'nobody-listens'})
    assert reply.status == 200 and reply.json == {
        'event': {'name': 'nobody-listens', 'matched': 0}, 'runs': []}, reply
    # a resumed event task is matched again
    api.act(x_paused['id'], 'resume')
    reply = api.post('/events', {'name': 'x'})
    assert reply.status == 200 and reply.json['event']['matched'] == 3, reply
    # validation
    for body, message in (({}, 'name is required'), ({'data': {}}, 'name is required'),
                          ({'name': ''}, 'name must be a string of 1 to 200 characters'),
                          ({'name': 'n' * 201}, 'name must be a string of 1 to 200 characters'),
                          ({'name': 7}, 'name must be a string of 1 to 200 characters')):
        reply = api.post('/events', body)
        assert reply.status == 400 and reply.json == {'error': message}, (body, reply)
    reply = api.post('/events', '["x"]')
    assert reply.status == 400 and reply.json == {'error': NOT_OBJECT}, reply


# ---------------------------------------------------------------------------
# Crash

@aqtest.timeout(90)
def test_broker_kill9_schedule_no_run_lost_or_doubled():
    target = aqtest.start_target()
    broker = aqtest.start_broker(backoff_base_ms=int(BASE_MS))
    aqtest.start_workers(broker, 1)
    gateway = aqtest.start_gateway(broker)
    team = 'team-' + s_tag()
    api = s_Api(gateway.port, broker.new_key(team), team)
    tag = s_tag()
    task = api.create(s_every_2s(target.url('/ok/%s' % tag)))
    runs = api.wait_runs(task['id'], s_done(2), 10, 'two runs before the kill')
    grid = s_ms(s_schedule_runs(runs)[0]['scheduled_at'])
    s_sleep_until(s_mid_gap(grid, now_ms() + 100))
    killed_at = now_ms()
    broker.kill9()
    health = s_Api(gateway.port, None)
    s_sleep_until(killed_at + 2 * PERIOD_MS)     # two fire times go by
    restarted_at = now_ms()
    broker.restart()
    ready_at = now_ms()

    def gateway_back():
        try:
            reply = health.get('/healthz', key=None)
            return reply.status == 200 and (reply.json or {}).get('broker') == 'ok'
        except (http.client.HTTPException, OSError):
            return False
    wait_until(gateway_back, 15, 'the gateway to see the broker again', interval=0.1)
    missed = list(range(int(s_grid_at_or_after(grid, killed_at)), int(restarted_at), PERIOD_MS))
    assert len(missed) >= 2, 'the broker was down over only %d fire times' % len(missed)
    regular = s_grid_at_or_after(grid, ready_at)  # the first fire time with the broker up
    runs = api.wait_runs(task['id'], lambda rs: any(
        s_ms(r['scheduled_at']) >= regular + PERIOD_MS for r in s_schedule_runs(rs))
        and all(r['status'] in RUN_DONE for r in rs), 15,
        'two regular runs after the restart, all finished')
    ours = s_schedule_runs(runs)
    fires = [s_ms(r['scheduled_at']) for r in ours]
    assert len(fires) == len(set(fires)), 'a fire time ran twice: %s' % s_show_runs(ours)
    assert len({r['id'] for r in runs}) == len(runs), 'a run listed twice'
    assert all(r['status'] == 'completed' for r in ours), \
        'runs not completed: %s' % s_show_runs(ours)
    # before the kill: every fire time once
    before = [f for f in fires if f < killed_at]
    want = list(range(int(grid), int(killed_at), PERIOD_MS))
    assert before == want, 'fire times before the kill: %s, expected %s' % (
        [aqtest.iso(f) for f in before], [aqtest.iso(f) for f in want])
    # the outage: one run for all its missed fire times
    coalesced = [r for r in ours if killed_at <= s_ms(r['scheduled_at']) < regular]
    assert len(coalesced) == 1, '%d runs for the %d fire times missed while down: %s' % (
        len(coalesced), len(missed), s_show_runs(coalesced))
    started = s_ms(coalesced[0]['started_at'])
    assert restarted_at <= started <= ready_at + 2000, \
        'the coalesced run started %d ms after the restart' % (started - restarted_at)
    # after: on the grid, every fire time once
    after = [f for f in fires if f >= regular]
    assert after[:2] == [regular, regular + PERIOD_MS], 'fire times after the restart: %s' % (
        [aqtest.iso(f) for f in after])
    # each run called its step exactly once
    calls = s_calls(target, '/ok/%s' % tag)
    for run in ours:
        assert len(run['steps']) == 1, run
        got = calls.get(run['steps'][0]['task_id'], [])
        assert len(got) == 1, 'run for %s called the target %d times' % (
            run['scheduled_at'], len(got))
    assert sum(len(v) for v in calls.values()) == len(ours), \
        '%d calls for %d runs' % (sum(len(v) for v in calls.values()), len(ours))


# ---------------------------------------------------------------------------
# aqctl

def s_aqctl(aq, key, *args):
    """(exit status, parsed JSON stdout or None) of `aqctl --data D --key K --json ARGS`."""
    argv = [aqtest.binary('aqctl'), '--data', aq.data, '--key', key, '--json']
    argv += [str(a) for a in args]
    with open(os.path.join(aqtest.tmpdir(), 'aqctl.log'), 'ab') as log:
        log.write(('=== %s\n' % ' '.join(argv)).encode())
        log.flush()
        run = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, timeout=30)
    out = run.stdout.decode('utf-8', 'replace').strip()
    try:
        parsed = json.loads(out) if out else None
    except ValueError:
        raise AssertionError('aqctl %s printed no JSON: %r' % (' '.join(str(a) for a in args), out))
    return run.returncode, parsed


def s_ok(aq, key, *args):
    rc, out = s_aqctl(aq, key, *args)
    assert rc == 0, 'aqctl %s exited %d: %r (stderr in aqctl.log)' % (
        ' '.join(str(a) for a in args), rc, out)
    return out


def s_member(value, name):
    """value[name] when aqctl printed the whole reply body, else value."""
    return value[name] if isinstance(value, dict) and name in value else value


def test_aqctl_schedule_and_event_commands():
    target, aq, api = s_setup()
    tag = s_tag()
    body = s_every_2s(target.url('/ok/%s/cli' % tag), title='from aqctl')
    created = s_member(s_ok(aq, api.key, 'schedule', 'create', '--json', json.dumps(body)), 'task')
    assert created['title'] == 'from aqctl' and created['status'] == 'active', created
    assert api.schedule(created['id'])['schedule_expr'] == EVERY_2S
    path = os.path.join(aqtest.tmpdir(), 'event-task.json')
    with open(path, 'w') as f:
        json.dump(s_event('cli.fired', target.url('/ok/%s/event' % tag),
                          title='event from file'), f)
    from_file = s_member(s_ok(aq, api.key, 'schedule', 'create', '--file', path), 'task')
    assert from_file['schedule_kind'] == 'event', from_file
    assert from_file['title'] == 'event from file', from_file

    listed = s_ok(aq, api.key, 'schedule', 'list')
    tasks = s_member(listed, 'tasks')
    assert [t['id'] for t in tasks] == [from_file['id'], created['id']], listed
    got = s_member(s_ok(aq, api.key, 'schedule', 'get', created['id']), 'task')
    assert got['id'] == created['id'], got

    preview = s_ok(aq, api.key, 'schedule', 'preview', created['id'])
    assert len(s_member(preview, 'fire_times')) == 5, preview
    paused = s_member(s_ok(aq, api.key, 'schedule', 'pause', created['id']), 'task')
    assert paused['status'] == 'paused', paused
    assert api.schedule(created['id'])['status'] == 'paused', 'aqctl pause did not pause'
    run = s_member(s_ok(aq, api.key, 'schedule', 'run-now', created['id']), 'run')
    assert run['trigger'] == 'run_now' and run['task_id'] == created['id'], run
    snoozed = s_member(s_ok(aq, api.key, 'schedule', 'snooze', created['id'], 600), 'task')
    assert snoozed['snoozed_until'], snoozed
    assert s_ms(snoozed['snoozed_until']) > now_ms() + 590 * 1000, snoozed
    resumed = s_member(s_ok(aq, api.key, 'schedule', 'resume', created['id']), 'task')
    assert resumed['status'] == 'active', resumed

    fired = s_ok(aq, api.key, 'event', 'fire', 'cli.fired', '--data', json.dumps({'n': 7}))
    assert s_member(fired, 'event') == {'name': 'cli.fired', 'matched': 1}, fired
    api.wait_runs(from_file['id'], s_done(1), 8, 'the event run fired by aqctl')
    calls = target.requests('/ok/%s/event' % tag)
    assert len(calls) == 1 and json.loads(calls[0]['body']) == {'n': 7}, calls
    runs = s_member(s_ok(aq, api.key, 'schedule', 'runs', from_file['id']), 'runs')
    assert len(runs) == 1 and runs[0]['trigger'] == 'event', runs

    canceled = s_member(s_ok(aq, api.key, 'schedule', 'cancel', created['id']), 'task')
    assert canceled['status'] == 'canceled', canceled
    rc, out = s_aqctl(aq, api.key, 'schedule', 'resume', created['id'])
    assert rc == 1, 'aqctl resume of a canceled task exited %d: %r' % (rc, out)
    rc, out = s_aqctl(aq, api.key, 'schedule', 'create', '--json', json.dumps(s_body(priority=0)))
    assert rc == 1, 'aqctl create of an invalid body exited %d: %r' % (rc, out)
    assert api.get('/tasks').json['pagination']['total'] == 2


# ---------------------------------------------------------------------------
# Docs

def test_schedule_docs_cover_every_message():
    docs = os.path.join(aqtest.ROOT, 'docs')
    with open(os.path.join(docs, 'api.md'), encoding='utf-8') as f:
        api_md = f.read()
    with open(os.path.join(docs, 'openapi.yaml'), encoding='utf-8') as f:
        openapi = f.read()
    # fixed texts verbatim; for the ones with a variable part, its fixed start
    messages = {message for _, message in VALIDATION
                if not message.startswith(('Unknown field: ', 'payload.steps['))}
    messages |= {prefix.strip() for _, _, prefix in BAD_EXPRESSIONS}
    messages |= {'Unknown field:', 'payload.steps['}
    messages |= {
        NOT_OBJECT, 'delay_seconds is required',
        'delay_seconds must be an integer between 1 and 604800',
        'reason must be a string of at most 500 characters',
        'status must be one of: active, paused, canceled', 'created_by must be a UUID',
        'limit must be a number between 1 and 100', 'offset must be a non-negative number',
        'count must be a number between 1 and 1000', 'name is required',
        'name must be a string of 1 to 200 characters', 'deduplicated'}
    messages |= {
        'Task cannot be %s in status canceled' % word
        for word in ('run', 'updated', 'snoozed', 'paused', 'resumed', 'canceled')}
    missing = sorted(m for m in messages if m not in api_md)
    assert not missing, 'docs/api.md lacks these messages: %s' % missing
    for path in ('/tasks:', '/tasks/{id}:', '/tasks/{id}/run_now:', '/tasks/{id}/snooze:',
                 '/tasks/{id}/pause:', '/tasks/{id}/resume:', '/tasks/{id}/cancel:',
                 '/tasks/{id}/runs:', '/tasks/{id}/preview:', '/tasks/preview:', '/events:'):
        assert '\n  %s' % path in openapi, 'docs/openapi.yaml lacks %s' % path
