"""test_trace.py - W3C trace context: a task's calls are spans of its creator's trace

The broker keeps the trace a task was created in (the create request's
traceparent, or one among the task's own headers, or a fresh one) and sends
every request it has a worker make for the task as a new span of it:
`traceparent: 00-<trace id>-<new span id>-<flags>`, and the creator's
tracestate unchanged. Attempts list their traceId and spanId (the task's
own shape stays the seed's). A scheduled run is a trace of its own whose id
is the run's id.
"""

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
