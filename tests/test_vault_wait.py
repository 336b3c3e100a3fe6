"""test_vault_wait.py - the token vault and waiting tasks over HTTP (issue 4)

The all-in-one `asyncqueue` (vault-sodium loaded from the build's plugin
directory) and aq-target: secrets go in through /v1/tokens and come out only
in the outgoing call; a target that answers 202 with AsyncQueue-Wait: true
puts its task in `waiting` until a signal or maxWaitTime.
"""

import glob
import os
import random

import requests

import aqtest
from aqtest import wait_until

SECRET = 'Bearer s3cr3t-%08x' % random.randrange(1 << 32)


def s_server():
    target = aqtest.start_target()
    aq = aqtest.start_allinone()
    key = aq.new_key('vault-%d' % random.randrange(1 << 30))
    return target, aq, {'Authorization': 'Bearer ' + key}


def s_create_task(aq, auth, **task):
    r = requests.post(aq.url('/v1/tasks'), json=task, headers=auth, timeout=10)
    return r


def s_wait_status(aq, auth, task_id, statuses, timeout=15.0):
    seen = {}

    def check():
        r = requests.get(aq.url('/v1/tasks/%s' % task_id), headers=auth, timeout=10)
        seen['task'] = r.json()['task']
        return seen['task']['status'] in statuses
    wait_until(check, timeout, 'task %s to reach %s' % (task_id, statuses))
    return seen['task']


def test_token_resolved_in_call_and_never_shown():
    target, aq, auth = s_server()
    r = requests.post(aq.url('/v1/tokens'), json={'name': 'svc', 'value': SECRET}, headers=auth)
    assert r.status_code == 201, r.text
    token = r.json()['token']
    assert token['id'].startswith('tok_') and token['name'] == 'svc' and 'createdAt' in token
    assert SECRET not in r.text and 'value' not in token

    tag = '%08x' % random.randrange(1 << 32)
    r = s_create_task(aq, auth, targetUrl=target.url('/ok/tok-' + tag),
                      headers={'Authorization': token['id'], 'X-Plain': 'yes'})
    assert r.status_code == 201, r.text
    assert r.json()['task']['headers']['Authorization'] == token['id']
    task = s_wait_status(aq, auth, r.json()['task']['id'], ['completed'])
    got = target.wait_requests('/ok/tok-' + tag, 1)[0]
    assert got['headers']['authorization'] == SECRET
    assert got['headers']['x-plain'] == 'yes'

    # the value appears in no answer, no list, no log line, not in the store file
    listed = requests.get(aq.url('/v1/tokens'), headers=auth).text
    assert token['id'] in listed and SECRET not in listed
    assert SECRET not in str(task)
    for path in glob.glob(os.path.join(aqtest.tmpdir(), '**', '*'), recursive=True):
        if os.path.isfile(path):
            with open(path, 'rb') as f:
                assert SECRET.encode() not in f.read(), 'secret found in ' + path


def test_token_validation_and_unknown_tokens():
    target, aq, auth = s_server()
    cases = [
        ({}, 'name is required'),
        ({'name': 'x'}, 'value is required'),
        ({'name': 'x', 'value': 'a\r\nb'}, 'value must not contain CR, LF or NUL characters'),
        ({'name': 'x', 'value': 5}, 'value must be a string'),
        ({'name': 'x', 'value': 'v', 'extra': 1}, 'Unknown field: extra'),
    ]
    for body, message in cases:
        r = requests.post(aq.url('/v1/tokens'), json=body, headers=auth)
        assert r.status_code == 400 and r.json() == {'error': message}, (body, r.text)
    unknown = 'tok_' + '0' * 32
    r = s_create_task(aq, auth, targetUrl=target.url('/ok'), headers={'X-Key': unknown})
    assert r.status_code == 400 and r.json() == {'error': 'Unknown token: ' + unknown}, r.text

    # another team's token is unknown to this team
    r = requests.post(aq.url('/v1/tokens'), json={'name': 'n', 'value': 'v'}, headers=auth)
    theirs = r.json()['token']['id']
    other = {'Authorization': 'Bearer ' + aq.new_key('other-team')}
    r = s_create_task(aq, other, targetUrl=target.url('/ok'), headers={'X-Key': theirs})
    assert r.status_code == 400 and r.json()['error'] == 'Unknown token: ' + theirs
    r = requests.delete(aq.url('/v1/tokens/' + theirs), headers=other)
    assert r.status_code == 404 and r.json() == {'error': 'Token not found'}


def test_deleted_token_fails_the_task_without_retry():
    target, aq, auth = s_server()
    token = requests.post(aq.url('/v1/tokens'), json={'name': 'n', 'value': 'v'},
                          headers=auth).json()['token']['id']
    when = aqtest.iso(aqtest.now_ms() + 1500)
    r = s_create_task(aq, auth, targetUrl=target.url('/ok/deleted'), delayUntil=when,
                      headers={'X-Key': token}, maxRetries=3)
    assert r.status_code == 201, r.text
    r2 = requests.delete(aq.url('/v1/tokens/' + token), headers=auth)
    assert r2.status_code == 200 and r2.json()['token']['id'] == token
    task = s_wait_status(aq, auth, r.json()['task']['id'], ['failed', 'completed'])
    assert task['status'] == 'failed' and task['error'] == 'Token %s not found' % token
    assert task['retryCount'] == 0
    assert target.stats()['count'] == 0 or not target.requests('/ok/deleted')


def s_waiting_task(aq, auth, target, **extra):
    tag = '%08x' % random.randrange(1 << 32)
    r = s_create_task(aq, auth, targetUrl=target.url('/wait/' + tag), **extra)
    assert r.status_code == 201, r.text
    task_id = r.json()['task']['id']
    task = s_wait_status(aq, auth, task_id, ['waiting'])
    call = target.wait_requests('/wait/' + tag, 1)[0]
    return task_id, task, call['headers']['asyncqueue-signal-token']


def test_waiting_then_signal_with_the_call_token():
    target, aq, auth = s_server()
    task_id, task, token = s_waiting_task(aq, auth, target)
    assert task['result']['statusCode'] == 202
    url = aq.url('/v1/tasks/%s/signal' % task_id)
    r = requests.post(url, json={'status': 'completed'}, headers={'Authorization': 'Bearer sig_nope'})
    assert r.status_code == 401, r.text
    r = requests.post(url, json={'status': 'done'}, headers={'Authorization': 'Bearer ' + token})
    assert r.status_code == 400 and r.json() == {'error': 'status must be one of: completed, failed'}
    r = requests.post(url, json={'status': 'completed', 'result': {'answer': 42}},
                      headers={'Authorization': 'Bearer ' + token})
    assert r.status_code == 200, r.text
    done = r.json()['task']
    assert done['status'] == 'completed' and done['result'] == {'answer': 42}
    # one time only: the token is spent, and the task is no longer waiting
    r = requests.post(url, json={'status': 'failed'}, headers={'Authorization': 'Bearer ' + token})
    assert r.status_code == 401, r.text
    r = requests.post(url, json={'status': 'failed'}, headers=auth)
    assert r.status_code == 409 and 'completed' in r.json()['error']


def test_waiting_then_signal_failed_with_team_key():
    target, aq, auth = s_server()
    task_id, _, _ = s_waiting_task(aq, auth, target)
    r = requests.post(aq.url('/v1/tasks/%s/signal' % task_id), json={'status': 'failed'},
                      headers=auth)
    assert r.status_code == 200 and r.json()['task']['status'] == 'failed', r.text
    other = {'Authorization': 'Bearer ' + aq.new_key('stranger')}
    task_id, _, _ = s_waiting_task(aq, auth, target)
    r = requests.post(aq.url('/v1/tasks/%s/signal' % task_id), json={'status': 'failed'},
                      headers=other)
    assert r.status_code == 404 and r.json() == {'error': 'Task not found'}


def test_waiting_times_out_after_max_wait_time():
    target, aq, auth = s_server()
    task_id, _, _ = s_waiting_task(aq, auth, target, maxWaitTime=1)
    task = s_wait_status(aq, auth, task_id, ['timeout'], timeout=10)
    assert task['error'] == 'Task exceeded maxWaitTime of 1s' and 'completedAt' in task


def test_waiting_task_can_be_cancelled():
    target, aq, auth = s_server()
    task_id, _, _ = s_waiting_task(aq, auth, target)
    r = requests.post(aq.url('/v1/tasks/%s/cancel' % task_id), headers=auth)
    assert r.status_code == 200 and r.json()['task']['status'] == 'cancelled', r.text


# ---------------------------------------------------------------------------
# onCompleteUrl

def s_verify(secret, headers, body):
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, id.timestamp.body))."""
    import base64
    import hashlib
    import hmac
    key = base64.b64decode(secret[len('whsec_'):])
    signed = '%s.%s.%s' % (headers['webhook-id'], headers['webhook-timestamp'], body)
    mac = base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest()).decode()
    return headers['webhook-signature'] == 'v1,' + mac


def s_notify_server():
    target = aqtest.start_target()
    aq = aqtest.start_allinone(extra=('--backoff-base-ms', '200'))
    team = 'notify-%d' % random.randrange(1 << 30)
    auth = {'Authorization': 'Bearer ' + aq.new_key(team)}
    import json
    secret = json.loads(aq.aqctl('team', 'secret', team, '--json'))['signingSecret']
    return target, aq, auth, secret


def test_on_complete_url_gets_completed_failed_and_timeout_tasks():
    import json
    target, aq, auth, secret = s_notify_server()
    tag = '%08x' % random.randrange(1 << 32)
    cases = [('completed', {'targetUrl': target.url('/ok')}),
             ('failed', {'targetUrl': target.url('/status/500'), 'maxRetries': 0}),
             ('timeout', {'targetUrl': target.url('/wait'), 'maxWaitTime': 1})]
    ids = {}
    for status, task in cases:
        task['onCompleteUrl'] = target.url('/ok/notify-%s-%s' % (tag, status))
        r = s_create_task(aq, auth, **task)
        assert r.status_code == 201, r.text
        ids[status] = r.json()['task']['id']
    for status, _ in cases:
        got = target.wait_requests('/ok/notify-%s-%s' % (tag, status), 1, timeout=15)[0]
        assert got['method'] == 'POST'
        sent = json.loads(got['body'])['task']
        assert sent['id'] == ids[status] and sent['status'] == status, sent
        assert got['headers']['webhook-id'] == ids[status] + '.complete'
        assert s_verify(secret, got['headers'], got['body']), got['headers']
        task = s_wait_status(aq, auth, ids[status], [status])
        wait_until(lambda: requests.get(aq.url('/v1/tasks/' + ids[status]), headers=auth)
                   .json()['task'].get('onComplete', {}).get('status') == 'delivered', 10,
                   'onComplete delivered for the %s task' % status)


def test_on_complete_url_retries_then_records_the_outcome():
    target, aq, auth, _ = s_notify_server()
    tag = '%08x' % random.randrange(1 << 32)
    r = s_create_task(aq, auth, targetUrl=target.url('/ok'),
                      onCompleteUrl=target.url('/fail-first/2/n%s' % tag))
    task_id = r.json()['task']['id']
    wait_until(lambda: requests.get(aq.url('/v1/tasks/' + task_id), headers=auth)
               .json()['task'].get('onComplete', {}).get('status') == 'delivered', 15,
               'the third delivery to succeed')
    done = requests.get(aq.url('/v1/tasks/' + task_id), headers=auth).json()['task']
    assert done['onComplete']['attempts'] == 3 and done['onComplete']['statusCode'] == 200
    assert len(target.requests('/fail-first/2/n' + tag)) == 3

    r = s_create_task(aq, auth, targetUrl=target.url('/ok'),
                      onCompleteUrl=target.url('/status/500/never-%s' % tag))
    task_id = r.json()['task']['id']
    wait_until(lambda: requests.get(aq.url('/v1/tasks/' + task_id), headers=auth)
               .json()['task'].get('onComplete', {}).get('status') == 'failed', 20,
               'deliveries to give up')
    done = requests.get(aq.url('/v1/tasks/' + task_id), headers=auth).json()['task']
    assert done['onComplete'] == {'status': 'failed', 'attempts': 4, 'statusCode': 500,
                                  'error': 'HTTP 500'}, done['onComplete']
    assert done['status'] == 'completed'


def test_team_secret_shown_only_by_team_secret():
    import json
    aq = aqtest.start_allinone()
    aq.new_key('secretive')
    limited = json.loads(aq.aqctl('team', 'limit', 'secretive', '--rps', '5', '--json'))
    assert 'signingSecret' not in limited and limited['rateLimit']['rps'] == 5
    listed = aq.aqctl('team', 'list', '--json')
    assert 'whsec_' not in listed
    shown = json.loads(aq.aqctl('team', 'secret', 'secretive', '--json'))
    assert shown['signingSecret'].startswith('whsec_')
    rotated = json.loads(aq.aqctl('team', 'secret', 'secretive', '--rotate', '--json'))
    assert rotated['signingSecret'] != shown['signingSecret']
