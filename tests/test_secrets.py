"""test_secrets.py - secrets at rest and per-team figures (issue 11, finding 6)

- admin.token: aq-broker refuses, at start and naming the file, a token
  that is a symbolic link, not a regular file, another user's, or open to
  group or others; the first start still makes it (0600), a restart reads
  it. aqctl applies the same checks to DIR/admin.token.
- aqctl takes secrets from files (--key-file, --admin-token-file, task
  create --file -) with the same checks, so they need not be in ps.
- STATS and GET /metrics: a team key sees its own team only; the global
  figures need the admin token (STATS' admin field, or the Bearer of
  /metrics).
"""

import json
import os
import re
import stat
import subprocess

import aqtest

FAR = '2099-01-01T00:00:00.000Z'


# ---------------------------------------------------------------------------
# Helpers

def s_data(name):
    path = os.path.join(aqtest.tmpdir(), name)
    os.makedirs(path)
    return path


def s_write(path, text, mode=0o600):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def s_broker_refuses(data, part, name):
    """Starts aq-broker on data (ipc endpoints only) and expects it to exit
    non-zero within 10 s with one log line naming DATA/admin.token and
    holding part. Returns that line."""
    args = [aqtest.binary('aq-broker'), '--data', data,
            '--clients', 'ipc://%s/c.ipc' % data, '--workers-endpoint', 'ipc://%s/w.ipc' % data,
            '--events', 'none']
    proc = aqtest.Proc(name, args)
    proc.may_exit = True
    try:
        code = proc.popen.wait(10)
    except subprocess.TimeoutExpired:
        raise AssertionError('aq-broker started on %s (wanted a refusal: %s); log:\n%s'
                             % (data, part, proc.tail()))
    finally:
        proc.done = True
    assert code != 0, 'aq-broker exited with %s; log:\n%s' % (code, proc.tail())
    token = os.path.join(data, 'admin.token')
    lines = [line for line in proc.log().split('\n') if "'%s'" % token in line and part in line]
    assert len(lines) == 1, 'no one line naming %s with %r in:\n%s' % (token, part, proc.log())
    assert ' error broker: ' in lines[0], lines[0]
    return lines[0]


def s_aqctl(args, stdin=None):
    """(exit code, stdout, stderr) of aqctl ARGS."""
    run = subprocess.run([aqtest.binary('aqctl')] + [str(a) for a in args], input=stdin,
                         capture_output=True, text=True, timeout=30)
    with open(os.path.join(aqtest.tmpdir(), 'aqctl.log'), 'a') as log:
        log.write('=== %s\n%s%s' % (' '.join(str(a) for a in args), run.stdout, run.stderr))
    return run.returncode, run.stdout.strip(), run.stderr.strip()


# ---------------------------------------------------------------------------
# admin.token

def test_admin_token_open_to_others_is_refused():
    token = '0123456789abcdef' * 4 + '\n'
    for mode, how in ((0o644, 'readable'), (0o640, 'readable'), (0o620, 'writable'),
                      (0o604, 'readable')):
        data = s_data('open-%o' % mode)
        s_write(os.path.join(data, 'admin.token'), token, mode)
        line = s_broker_refuses(data, 'is %s by group or others (mode 0%o): chmod 600 it'
                                % (how, mode), 'broker-%o' % mode)
        assert token.strip() not in line, 'the token is in the log: %s' % line
        # nothing was rewritten or opened up
        assert stat.S_IMODE(os.stat(os.path.join(data, 'admin.token')).st_mode) == mode
        with open(os.path.join(data, 'admin.token')) as f:
            assert f.read() == token


def test_admin_token_symlink_or_odd_file_is_refused():
    # a symbolic link to a good 0600 token elsewhere
    elsewhere = s_write(os.path.join(aqtest.tmpdir(), 'token-elsewhere'), 'f' * 64)
    data = s_data('link')
    os.symlink(elsewhere, os.path.join(data, 'admin.token'))
    s_broker_refuses(data, 'is a symbolic link', 'broker-link')
    # a dangling one: the broker must not create the file it points to
    target = os.path.join(aqtest.tmpdir(), 'planted-token')
    data = s_data('dangling')
    os.symlink(target, os.path.join(data, 'admin.token'))
    s_broker_refuses(data, 'is a symbolic link', 'broker-dangling')
    assert not os.path.exists(target), 'the broker wrote through a symbolic link'
    # a directory, a FIFO (which would hang a plain open)
    data = s_data('dir')
    os.mkdir(os.path.join(data, 'admin.token'))
    s_broker_refuses(data, 'is not a regular file', 'broker-dir')
    data = s_data('fifo')
    os.mkfifo(os.path.join(data, 'admin.token'), 0o600)
    s_broker_refuses(data, 'is not a regular file', 'broker-fifo')
    # another user's (only root can make one here)
    if os.geteuid() == 0:
        data = s_data('owner')
        path = s_write(os.path.join(data, 'admin.token'), 'e' * 64)
        os.chown(path, 1, 1)
        s_broker_refuses(data, 'belongs to uid 1, not to uid 0', 'broker-owner')


def test_admin_token_made_and_kept():
    broker = aqtest.start_broker()
    path = os.path.join(broker.data, 'admin.token')
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    token = broker.admin_token
    assert re.match(r'^[0-9a-f]{64}$', token), token
    broker.restart()
    with open(path) as f:
        assert f.read() == token, 'a restart changed the admin token'
    with broker.admin() as cli:
        assert cli.call('TEAM_LIST').get('status') == 200
    broker.proc.stop()
    # an operator's own token (a trailing newline is fine) is used as given
    mine = 'operator-chosen-admin-token-0123456789'
    s_write(path, mine + '\n')
    broker.proc.start()
    broker._admin = None
    broker.wait_ready()
    with broker.client(admin=mine) as cli:
        assert cli.call('TEAM_LIST').get('status') == 200
    broker.proc.stop()
    # an empty one (a crash at first start) is made anew, 0600
    s_write(path, '')
    broker.proc.start()
    broker._admin = None
    broker.wait_ready()
    assert re.match(r'^[0-9a-f]{64}$', broker.admin_token), broker.admin_token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_aqctl_checks_the_admin_token():
    broker = aqtest.start_broker()
    path = os.path.join(broker.data, 'admin.token')
    code, out, err = s_aqctl(['--data', broker.data, 'team', 'list'])
    assert code == 0, err
    os.chmod(path, 0o644)
    code, out, err = s_aqctl(['--data', broker.data, 'team', 'create', 'nope'])
    assert code == 1 and out == '', (code, out, err)
    assert err == ("aqctl: admin token '%s' is readable by group or others (mode 0644): "
                   "chmod 600 it" % path), err
    os.chmod(path, 0o600)
    moved = os.path.join(broker.data, 'admin.token.real')
    os.rename(path, moved)
    os.symlink(moved, path)
    code, out, err = s_aqctl(['--data', broker.data, 'key', 'list'])
    assert code == 1 and "admin token '%s' is a symbolic link" % path in err, (code, err)


# ---------------------------------------------------------------------------
# aqctl: secrets from files

def test_aqctl_secret_files():
    target = aqtest.start_target()
    broker = aqtest.start_broker()
    aqtest.start_workers(broker, 1)
    key = broker.new_key('files')
    ep = ['--broker', broker.client_ep]
    key_file = s_write(os.path.join(aqtest.tmpdir(), 'key'), key + '\n')
    admin_file = s_write(os.path.join(aqtest.tmpdir(), 'admin'), broker.admin_token + '\n')

    # --key-file: the key from the file, trailing newline ignored
    code, out, err = s_aqctl(ep + ['--key-file', key_file, 'task', 'create',
                                   '--url', target.url('/ok/key-file')])
    assert code == 0, err
    task = json.loads(out)
    code, out, err = s_aqctl(ep + ['task', 'get', task['id'], '--key-file=' + key_file])
    assert code == 0 and json.loads(out)['id'] == task['id'], err
    # --admin-token-file
    code, out, err = s_aqctl(ep + ['--admin-token-file', admin_file, 'key', 'create',
                                   '--team', 'files'])
    assert code == 0 and out.startswith('aq_') and '\n' not in out, (code, out, err)
    # task create --file -: the body (with a header secret) from stdin
    body = {'targetUrl': target.url('/ok/from-stdin'),
            'headers': {'Authorization': 'Bearer target-secret-42'}}
    code, out, err = s_aqctl(ep + ['--key-file', key_file, 'task', 'create', '--file', '-'],
                             stdin=json.dumps(body))
    assert code == 0, err
    seen = target.wait_requests('/ok/from-stdin', 1)
    assert seen[0]['headers'].get('authorization') == 'Bearer target-secret-42', seen
    code, out, err = s_aqctl(ep + ['--key-file', key_file, 'task', 'create', '--file', '-',
                                   '--json', '{}'], stdin='{}')
    assert code == 2 and 'give --json or --file, not both' in err, (code, err)

    # the same checks as admin.token
    for mode, how in ((0o640, 'readable'), (0o602, 'writable')):
        os.chmod(key_file, mode)
        code, out, err = s_aqctl(ep + ['--key-file', key_file, 'task', 'list'])
        assert code == 1 and out == '', (code, out, err)
        assert err == ("aqctl: key file '%s' is %s by group or others (mode 0%o): chmod 600 it"
                       % (key_file, how, mode)), err
    os.chmod(key_file, 0o600)
    link = os.path.join(aqtest.tmpdir(), 'key-link')
    os.symlink(key_file, link)
    code, out, err = s_aqctl(ep + ['--key-file', link, 'task', 'list'])
    assert code == 1 and err == "aqctl: key file '%s' is a symbolic link: give the file itself" \
        % link, err
    os.chmod(admin_file, 0o644)
    code, out, err = s_aqctl(ep + ['--admin-token-file', admin_file, 'team', 'list'])
    assert code == 1 and "admin token file '%s' is readable by group" % admin_file in err, err
    empty = s_write(os.path.join(aqtest.tmpdir(), 'empty'), '\n')
    code, out, err = s_aqctl(ep + ['--key-file', empty, 'task', 'list'])
    assert code == 1 and err == "aqctl: key file '%s' is empty" % empty, err
    missing = os.path.join(aqtest.tmpdir(), 'missing')
    code, out, err = s_aqctl(ep + ['--key-file', missing, 'task', 'list'])
    assert code == 1 and "cannot open key file '%s'" % missing in err, err
    # one source per secret
    code, out, err = s_aqctl(ep + ['--key', key, '--key-file', key_file, 'task', 'list'])
    assert code == 2 and 'give --key or --key-file, not both' in err, err
    code, out, err = s_aqctl(ep + ['--admin-token', 'x', '--admin-token-file', admin_file,
                                   'team', 'list'])
    assert code == 2 and 'give --admin-token or --admin-token-file, not both' in err, err
    # --help says why
    code, out, err = s_aqctl(['--help'])
    assert code == 0 and '--key-file PATH' in out and '--admin-token-file PATH' in out, out
    assert 'ps' in out and 'history' in out, out


# ---------------------------------------------------------------------------
# STATS and /metrics per team

PROM = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def s_samples(text):
    """{(name, labels): value} of a Prometheus text page."""
    samples = {}
    for line in text.split('\n'):
        if not line or line.startswith('#'):
            continue
        m = PROM.match(line)
        assert m, 'not a Prometheus sample: %r' % line
        samples[(m.group(1), m.group(2) or '')] = float(m.group(3))
    return samples


def s_metrics(gateway, credential):
    reply = gateway.http.get(gateway.url('/metrics'), timeout=10,
                             headers={'Authorization': 'Bearer ' + credential})
    assert reply.status_code == 200, (reply.status_code, reply.text)
    return s_samples(reply.text)


GLOBAL_ONLY = ('asyncqueue_workers_connected', 'asyncqueue_lmdb_bytes',
               'asyncqueue_tasks_dispatched_total', 'asyncqueue_tasks_completed_total',
               'asyncqueue_tasks_failed_total', 'asyncqueue_tasks_retried_total',
               'asyncqueue_malformed_messages_total', 'asyncqueue_worker_lost_total',
               'asyncqueue_attempt_duration_ms', 'asyncqueue_gateway_')


@aqtest.timeout(90)
def test_metrics_and_stats_per_team():
    target = aqtest.start_target()
    broker = aqtest.start_broker()
    aqtest.start_workers(broker, 1)
    gateway = aqtest.start_gateway(broker)
    key_a, key_b = broker.new_key('alpha'), broker.new_key('beta')
    with broker.client(key=key_b) as beta:
        done = [beta.create(targetUrl=target.url('/ok/beta-%d' % i))['id'] for i in range(2)]
        beta.create(targetUrl=target.url('/ok/beta-later'), delayUntil=FAR)
        beta.wait_all_terminal(done)
    with broker.client(key=key_a) as alpha:
        alpha.create(targetUrl=target.url('/ok/alpha-later'), delayUntil=FAR)
        # STATS with alpha's key: alpha's tasks and nothing of beta's or global
        stats = alpha.stats()
    assert stats['tasks']['delayed'] == 1 and stats['tasks']['completed'] == 0, stats
    assert stats.get('counters') == {'created': 1}, 'beta\'s activity in alpha\'s STATS: %s' % stats
    for name in ('workers', 'lmdbBytes', 'attemptLatencyMs', 'attemptLatencySumMs'):
        assert name not in stats, '%s in a team STATS: %s' % (name, stats)
    assert stats.get('scope') == 'team', stats

    # /metrics with alpha's key: the same
    mine = s_metrics(gateway, key_a)
    assert mine[('asyncqueue_tasks', '{status="delayed"}')] == 1, mine
    assert mine[('asyncqueue_tasks', '{status="completed"}')] == 0, mine
    assert mine[('asyncqueue_tasks_created_total', '')] == 1, mine
    leaked = sorted(set(name for name, _ in mine if name.startswith(GLOBAL_ONLY)))
    assert not leaked, 'global figures for a team key: %s' % leaked
    assert set(name for name, _ in mine) == {'asyncqueue_tasks',
                                             'asyncqueue_tasks_created_total'}, mine
    theirs = s_metrics(gateway, key_b)
    assert theirs[('asyncqueue_tasks', '{status="completed"}')] == 2, theirs
    assert theirs[('asyncqueue_tasks_created_total', '')] == 3, theirs

    # the admin token: STATS' admin field, or the Bearer of /metrics
    with broker.admin() as cli:
        every = cli.stats()
    assert every.get('scope') == 'global' and every['workers'] == 1, every
    assert every['tasks']['delayed'] == 2 and every['tasks']['completed'] == 2, every
    assert every['counters']['created'] == 4 and every['counters']['completed'] == 2, every
    with broker.client(key=broker.admin_token) as cli:
        assert cli.stats()['counters'] == every['counters']
    admin = s_metrics(gateway, broker.admin_token)
    assert admin[('asyncqueue_tasks', '{status="delayed"}')] == 2, admin
    assert admin[('asyncqueue_tasks_created_total', '')] == 4, admin
    assert admin[('asyncqueue_workers_connected', '')] == 1, admin
    assert admin[('asyncqueue_attempt_duration_ms_count', '')] >= 2, admin
    assert admin[('asyncqueue_lmdb_bytes', '')] > 0, admin
    assert ('asyncqueue_gateway_connections', '') in admin, admin
    # a wrong token is no key at all
    reply = gateway.http.get(gateway.url('/metrics'), timeout=10,
                             headers={'Authorization': 'Bearer ' + broker.admin_token[:-1] + 'x'})
    assert reply.status_code == 401, (reply.status_code, reply.text)

    # aqctl stats: a key's view, and the admin token's with --data
    key_file = s_write(os.path.join(aqtest.tmpdir(), 'alpha.key'), key_a + '\n')
    code, out, err = s_aqctl(['--data', broker.data, '--key-file', key_file, 'stats'])
    assert code == 0, err
    shown = json.loads(out)
    assert shown.get('scope') == 'team' and shown['tasks']['delayed'] == 1, shown
    assert 'workers' not in shown, shown
    code, out, err = s_aqctl(['--data', broker.data, 'stats'])
    assert code == 0, err
    shown = json.loads(out)
    assert shown.get('scope') == 'global' and shown['workers'] == 1, shown
    assert shown['tasks']['delayed'] == 2, shown
