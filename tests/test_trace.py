"""test_trace.py - W3C trace context: a task's calls are spans of its creator's trace

The broker keeps the trace a task was created in (the create request's
traceparent, or one among the task's own headers, or a fresh one) and sends
every request it has a worker make for the task as a new span of it:
`traceparent: 00-<trace id>-<new span id>-<flags>`, and the creator's
tracestate unchanged. Attempts list their traceId and spanId (the task's
own shape stays the seed's). A scheduled task created with a traceparent
makes runs in its creator's trace; one created without makes runs that are
traces of their own whose id is the run's id. Workers log traceId.
"""

import json
import random
import re

import aqtest

PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
HEADER = re.compile(r'^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$')


def s_setup():
    target = aqtest.start_target()
    broker = aqtest.start_broker()
    aqtest.start_workers(broker, 1, slots=8, allow_private=True)
    cli = broker.client(key=broker.new_key('team-%d' % random.randrange(1 << 30)))
    return target, broker, cli


def s_create(cli, fields):
    reply = cli.call('TASK_CREATE', fields)
    assert reply.get('status') == 201, reply
    return reply['body']['task']


def s_spans(target, path):
    """[(trace id, span id, flags, tracestate)] of the calls the target saw."""
    out = []
    for call in target.requests(path):
        match = HEADER.match(call['headers'].get('traceparent', ''))
        assert match, 'no valid traceparent: %r' % call['headers']
        out.append(match.groups() + (call['headers'].get('tracestate'),))
    return out


def test_calls_are_spans_of_the_creators_trace():
    target, broker, cli = s_setup()
    path = '/fail-first/2/trace-%08x' % random.randrange(1 << 32)
    task = s_create(cli, {'task': {'targetUrl': target.url(path), 'maxRetries': 3,
                                   'retryBackoff': 'fixed',
                                   'headers': {'traceparent': 'not-this-one'}},
                          'traceparent': PARENT, 'tracestate': 'congo=t61rcWkgMzE'})
    assert 'traceId' not in task, task
    done = cli.wait_terminal(task['id'], timeout=30)
    assert done['status'] == 'completed', done
    spans = s_spans(target, path)
    assert len(spans) == 3, spans
    # one trace, the creator's flags and tracestate, a new span per attempt,
    # none of them the creator's own span
    assert {s[0] for s in spans} == {TRACE}, spans
    assert {s[2] for s in spans} == {'01'}, spans
    assert {s[3] for s in spans} == {'congo=t61rcWkgMzE'}, spans
    assert len({s[1] for s in spans}) == 3 and '00f067aa0ba902b7' not in {s[1] for s in spans}
    # the user's own traceparent header is replaced, not sent twice
    for call in target.requests(path):
        assert call['headers']['traceparent'] != 'not-this-one'
    attempts = cli.call('TASK_ATTEMPTS', {'id': task['id']})['body']['attempts']
    assert [(a['traceId'], a['spanId']) for a in attempts] == [(s[0], s[1]) for s in spans], \
        (attempts, spans)


def test_trace_from_headers_or_fresh_and_malformed_ignored():
    target, broker, cli = s_setup()
    tag = '%08x' % random.randrange(1 << 32)
    # a traceparent among the task's headers is its creator's context
    by_header = s_create(cli, {'task': {'targetUrl': target.url('/ok/h-' + tag),
                                        'headers': {'TraceParent': PARENT,
                                                    'tracestate': 'a=1'}}})
    # none: a fresh trace; a malformed one is ignored (a fresh trace too)
    fresh = s_create(cli, {'task': {'targetUrl': target.url('/ok/f-' + tag)}})
    malformed = s_create(cli, {'task': {'targetUrl': target.url('/ok/m-' + tag)},
                               'traceparent': '00-XYZ-00f067aa0ba902b7-01'})
    for task in (by_header, fresh, malformed):
        assert cli.wait_terminal(task['id'])['status'] == 'completed'
    [(trace, _, _, state)] = s_spans(target, '/ok/h-' + tag)
    assert (trace, state) == (TRACE, 'a=1')
    ids = set()
    for task, path in ((fresh, '/ok/f-'), (malformed, '/ok/m-')):
        [(trace, span, flags, state)] = s_spans(target, path + tag)
        attempts = cli.call('TASK_ATTEMPTS', {'id': task['id']})['body']['attempts']
        assert [a['traceId'] for a in attempts] == [trace], attempts
        assert trace != TRACE and flags == '01' and state is None
        ids.add(trace)
    assert len(ids) == 2, 'two fresh traces share an id'


def test_oncomplete_delivery_is_a_span_of_the_trace():
    target, broker, cli = s_setup()
    tag = '%08x' % random.randrange(1 << 32)
    task = s_create(cli, {'task': {'targetUrl': target.url('/ok/c-' + tag),
                                   'onCompleteUrl': target.url('/ok/n-' + tag)},
                          'traceparent': PARENT})
    assert cli.wait_terminal(task['id'])['status'] == 'completed'
    aqtest.wait_until(lambda: target.requests('/ok/n-' + tag), 10, 'no delivery')
    [(call_trace, call_span, _, _)] = s_spans(target, '/ok/c-' + tag)
    [(trace, span, _, _)] = s_spans(target, '/ok/n-' + tag)
    assert call_trace == trace == TRACE and span != call_span


def test_scheduled_run_is_a_trace_whose_steps_are_spans():
    target, broker, cli = s_setup()
    tag = '%08x' % random.randrange(1 << 32)
    steps = [{'targetUrl': target.url('/ok/s1-' + tag)}, {'targetUrl': target.url('/ok/s2-' + tag)}]
    reply = cli.call('SCHEDULE_CREATE', {'schedule': {
        'title': 'traced', 'description': 'a traced run', 'schedule_kind': 'event',
        'schedule_expr': 'trace.' + tag, 'payload': {'steps': steps},
        'created_by': '5f0c2a8e-3b1d-4c6e-9a7f-2d4b6c8e0a13'}})
    assert reply.get('status') == 201, reply
    schedule = reply['body']['task']
    run = cli.call('SCHEDULE_RUN_NOW', {'id': schedule['id']})
    assert run.get('status') == 201, run
    run_id = run['body']['run']['id']
    aqtest.wait_until(lambda: target.requests('/ok/s2-' + tag), 15, 'the run did not finish')
    [(t1, s1, _, _)] = s_spans(target, '/ok/s1-' + tag)
    [(t2, s2, _, _)] = s_spans(target, '/ok/s2-' + tag)
    assert t1 == t2 == run_id.replace('-', '') and s1 != s2


OTHER = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
CREATOR = '5f0c2a8e-3b1d-4c6e-9a7f-2d4b6c8e0a13'


def s_schedule_body(tag, **fields):
    body = {'title': 'traced', 'description': 'runs in the creator\'s trace',
            'schedule_kind': 'event', 'schedule_expr': 'trace.' + tag,
            'payload': {'targetUrl': 'http://127.0.0.1:9/never'}, 'created_by': CREATOR}
    body.update(fields)
    return body


def s_step_attempts(cli, api, schedule_id, count):
    """[(traceId, spanId)] of every attempt of the step tasks of the
    schedule's runs, once count runs have completed."""
    def runs():
        reply = api.call('GET', '/tasks/%s/runs' % schedule_id)
        assert reply.status == 200, reply
        done = [r for r in reply.json['runs'] if r['status'] == 'completed']
        return done if len(done) == count else None
    out = []
    for run in aqtest.wait_until(runs, 15, 'the runs did not complete'):
        for step in run['steps']:
            reply = api.call('GET', '/v1/tasks/%s/attempts' % step['task_id'])
            out += [(a['traceId'], a['spanId']) for a in reply.json['attempts']]
    return out


def test_scheduled_task_created_in_a_trace_runs_in_it():
    """POST /tasks with traceparent and tracestate: each run's steps call
    the target in the creator's trace (new span ids, the creator's flags
    and tracestate), the steps' attempts show it; a PUT with another
    traceparent changes nothing; the runs' ids are not the trace ids."""
    target, broker, cli = s_setup()
    gateway = aqtest.start_gateway(broker)
    api = aqtest.HttpClient(gateway.port, key=cli.key)
    tag = '%08x' % random.randrange(1 << 32)
    steps = [{'targetUrl': target.url('/ok/p1-' + tag)},
             {'targetUrl': target.url('/ok/p2-' + tag),
              'headers': {'traceparent': OTHER}}]  # replaced, as for /v1/tasks
    reply = api.call('POST', '/tasks', s_schedule_body(tag, payload={'steps': steps}),
                     headers={'traceparent': PARENT, 'tracestate': 'congo=t61rcWkgMzE'})
    assert reply.status == 201, reply
    schedule = reply.json['task']
    assert 'traceparent' not in schedule and 'traceId' not in schedule, schedule
    reply = api.call('PUT', '/tasks/' + schedule['id'], {'title': 'edited'},
                     headers={'traceparent': OTHER, 'tracestate': 'other=1'})
    assert reply.status == 200 and reply.json['task']['title'] == 'edited', reply
    runs = []
    for _ in range(2):
        reply = api.call('POST', '/tasks/%s/run_now' % schedule['id'])
        assert reply.status == 201, reply
        runs.append(reply.json['run']['id'])
    attempts = s_step_attempts(cli, api, schedule['id'], 2)
    spans = s_spans(target, '/ok/p1-' + tag) + s_spans(target, '/ok/p2-' + tag)
    assert len(spans) == 4 and len(attempts) == 4, (spans, attempts)
    assert {s[0] for s in spans} == {TRACE}, spans
    assert {(s[2], s[3]) for s in spans} == {('01', 'congo=t61rcWkgMzE')}, spans
    span_ids = {s[1] for s in spans}
    assert len(span_ids) == 4 and PARENT[36:52] not in span_ids, spans
    assert sorted(attempts) == sorted((s[0], s[1]) for s in spans), (attempts, spans)
    assert not {r.replace('-', '') for r in runs} & {s[0] for s in spans}


def test_scheduled_once_created_in_a_trace_fires_in_it():
    """A `once` a second ahead made by SCHEDULE_CREATE with a traceparent
    fires in the creator's trace; one made with a malformed traceparent is
    a trace of its own (the run's id)."""
    target, broker, cli = s_setup()
    tag = '%08x' % random.randrange(1 << 32)
    at = aqtest.iso(aqtest.now_ms() + 1500)
    ids = {}
    for name, parent in (('t', PARENT), ('m', '00-XYZ-00f067aa0ba902b7-01')):
        body = s_schedule_body(tag, schedule_kind='once', schedule_expr=at,
                               payload={'targetUrl': target.url('/ok/o%s-%s' % (name, tag))})
        reply = cli.call('SCHEDULE_CREATE', {'schedule': body, 'traceparent': parent})
        assert reply.get('status') == 201, reply
        ids[name] = reply['body']['task']['id']
    for name in ids:
        aqtest.wait_until(lambda: target.requests('/ok/o%s-%s' % (name, tag)), 15,
                          'the once did not fire')
    [(trace, span, flags, state)] = s_spans(target, '/ok/ot-' + tag)
    assert (trace, flags, state) == (TRACE, '01', None) and span != PARENT[36:52]
    [(trace, _, _, _)] = s_spans(target, '/ok/om-' + tag)

    def run_of(schedule_id):
        reply = cli.call('SCHEDULE_RUNS', {'id': schedule_id})
        return reply['body']['runs'] if reply.get('status') == 200 else None
    [run] = aqtest.wait_until(lambda: run_of(ids['m']), 5, 'no run')
    assert trace == run['id'].replace('-', ''), (trace, run)


def test_gateway_passes_the_http_trace_headers():
    target, broker, cli = s_setup()
    gateway = aqtest.start_gateway(broker)
    api = aqtest.HttpClient(gateway.port, key=cli.key)
    tag = '%08x' % random.randrange(1 << 32)
    reply = api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/g-' + tag)},
                     headers={'traceparent': PARENT, 'tracestate': 'congo=t61rcWkgMzE'})
    assert reply.status == 201, reply
    task = reply.json['task']
    assert cli.wait_terminal(task['id'])['status'] == 'completed'
    [(trace, span, flags, state)] = s_spans(target, '/ok/g-' + tag)
    assert (trace, flags, state) == (TRACE, '01', 'congo=t61rcWkgMzE') and span != PARENT[36:52]
    # a header that is no traceparent: a fresh trace, and the task is made
    reply = api.call('POST', '/v1/tasks', {'targetUrl': target.url('/ok/x-' + tag)},
                     headers={'traceparent': 'garbage'})
    assert reply.status == 201, reply
    assert cli.wait_terminal(reply.json['task']['id'])['status'] == 'completed'
    [(trace, _, _, _)] = s_spans(target, '/ok/x-' + tag)
    assert trace != TRACE


def test_batch_tasks_are_spans_of_the_creators_trace():
    """POST /v1/tasks/batch with a traceparent: every task of the batch is in
    the creator's trace, each call a span of its own; a task's own
    traceparent header does not move it out of the batch's trace."""
    target, broker, cli = s_setup()
    gateway = aqtest.start_gateway(broker)
    api = aqtest.HttpClient(gateway.port, key=cli.key)
    tag = '%08x' % random.randrange(1 << 32)
    paths = ['/ok/b%d-%s' % (i, tag) for i in range(3)]
    tasks = [{'targetUrl': target.url(p)} for p in paths]
    tasks[1]['headers'] = {'traceparent': '00-%s-%s-01' % ('1' * 32, '2' * 16)}
    reply = api.call('POST', '/v1/tasks/batch', {'tasks': tasks},
                     headers={'traceparent': PARENT, 'tracestate': 'congo=t61rcWkgMzE'})
    assert reply.status == 201, reply
    for task in reply.json['tasks']:
        assert cli.wait_terminal(task['id'])['status'] == 'completed'
    spans = [s_spans(target, p) for p in paths]
    assert all(len(s) == 1 for s in spans), spans
    assert {(t, f, st) for [(t, _, f, st)] in spans} == {(TRACE, '01', 'congo=t61rcWkgMzE')}
    assert len({span for [(_, span, _, _)] in spans} | {PARENT[36:52]}) == 4, spans


def test_worker_json_log_lines_carry_the_trace_id():
    """A worker in JSON logs (-v: a line per result) names the task's trace
    on the line about its result: traceId beside taskId."""
    target = aqtest.start_target()
    broker = aqtest.start_broker()
    worker = aqtest.start_workers(broker, 1, allow_private=True,
                                  extra=('--log-format', 'json', '-v'))[0]
    cli = broker.client(key=broker.new_key('team-%d' % random.randrange(1 << 30)))
    tag = '%08x' % random.randrange(1 << 32)
    task = s_create(cli, {'task': {'targetUrl': target.url('/ok/l-' + tag)},
                          'traceparent': PARENT})
    assert cli.wait_terminal(task['id'])['status'] == 'completed'

    def about():
        lines = [json.loads(l) for l in worker.log().split('\n') if l.startswith('{')]
        return [r for r in lines if r.get('taskId') == task['id']]
    aqtest.wait_until(about, 10, 'no worker log line about the task')
    [line] = about()
    assert 'HTTP 200' in line['msg'] and line['traceId'] == TRACE, line
