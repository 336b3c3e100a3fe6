"""test_ops.py - process tests of running asyncqueue as an operator does (issue 15)

JSON logs, systemd's notify protocol (READY, WATCHDOG, STOPPING on a
datagram socket of the test's own, no systemd needed), `make install` and
the units, /readyz, the README's quick start run as written, the limits
docs/protocol.md states, the OpenAPI document checked against real
responses, and plain `make`'s package check.
"""

import json
import os
import re
import subprocess
import time

import aqtest
from aqtest import wait_until

JSON_FIELDS = ('time', 'level', 'component', 'msg')


def s_json_lines(proc):
    """Every line proc logged, each parsed as one JSON object (the harness's
    own '=== ' header lines apart). Raises naming the first line that is not."""
    records = []
    for number, line in enumerate(proc.log().split('\n'), 1):
        if not line or line.startswith('=== '):
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise AssertionError('%s line %d is not JSON (%s): %r' % (proc.name, number, e, line))
        assert isinstance(record, dict), '%s line %d: %r' % (proc.name, number, line)
        for field in JSON_FIELDS:
            assert isinstance(record.get(field), str), \
                '%s line %d lacks %s: %r' % (proc.name, number, field, line)
        assert aqtest.parse_iso(record['time']) > 0
        assert record['level'] in ('debug', 'info', 'warn', 'error'), line
        records.append(record)
    assert records, '%s logged nothing' % proc.name
    return records


# ---------------------------------------------------------------------------
# JSON logs

def test_json_logs_parse_line_by_line():
    """--log-format json on the command line (broker, worker) and
    `log-format json` in a config file (gateway): every line each one writes,
    from start to a clean stop, is one JSON object with time, level,
    component and msg; a worker's line about a task carries its taskId."""
    target = aqtest.start_target()
    broker = aqtest.start_broker(extra=('--log-format', 'json'))
    aqtest.start_workers(broker, 1, extra=('--log-format', 'json', '-v'))
    config = os.path.join(aqtest.tmpdir(), 'gateway.conf')
    with open(config, 'w') as f:
        f.write('# a gateway in JSON\nlog-format json\nverbose\n')
    gateway = aqtest.start_gateway(broker, extra=('--config', config))
    key = broker.new_key('json-logs')
    made = gateway.http.post(gateway.url('/v1/tasks'),
                             json={'targetUrl': target.url('/ok/json-logs')},
                             headers={'Authorization': 'Bearer ' + key}, timeout=10)
    assert made.status_code == 201, made.text
    task_id = made.json()['task']['id']
    with broker.client(key=key) as cli:
        assert cli.wait_terminal(task_id)['status'] == 'completed'
    for proc in aqtest.processes():
        if proc.name.startswith(('worker', 'gateway', 'broker')):
            assert not proc.stop(), proc.name
    worker = next(p for p in aqtest.processes() if p.name.startswith('worker'))
    records = s_json_lines(worker)
    about = [r for r in records if r.get('taskId') == task_id]
    assert about and 'HTTP 200' in about[0]['msg'] and about[0]['component'] == 'worker', records
    broker_records = s_json_lines(broker.proc)
    assert any(r['msg'].startswith('ready: ') for r in broker_records), broker_records
    assert {'broker', 'plugins'} <= {r['component'] for r in broker_records}, broker_records
    gateway_records = s_json_lines(gateway.proc)
    assert any(r['component'] == 'gateway' for r in gateway_records), gateway_records


def test_json_logs_allinone_config_and_text_default():
    """The all-in-one takes `log-format json` from its config file; text
    stays the default; a bad value is refused at once."""
    config = os.path.join(aqtest.tmpdir(), 'aq.conf')
    with open(config, 'w') as f:
        f.write('log-format json\n')
    aq = aqtest.start_allinone(extra=('--config', config))
    aq.new_key('json-allinone')
    assert not aq.proc.stop()
    components = {r['component'] for r in s_json_lines(aq.proc)}
    assert {'broker', 'gateway', 'worker', 'asyncqueue'} <= components, components

    text = aqtest.start_allinone(name='text')
    assert not text.proc.stop()
    lines = [l for l in text.proc.log().split('\n') if l and not l.startswith('=== ')]
    assert lines and not any(l.startswith('{') for l in lines), lines[:3]
    assert any(re.match(r'^\d{4}-\d\d-\d\dT\S+Z info broker: ready: ', l) for l in lines), lines

    for program in ('asyncqueue', 'aq-broker', 'aq-gateway', 'aq-worker'):
        run = subprocess.run([aqtest.binary(program), '--log-format', 'yaml',
                              '--data', os.path.join(aqtest.tmpdir(), 'never')],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert run.returncode in (1, 2) and run.stderr, (program, run.returncode, run.stderr)
        shown = subprocess.run([aqtest.binary(program), '--help'], stdout=subprocess.PIPE,
                               timeout=30).stdout.decode()
        assert '--log-format' in shown, '%s --help does not document --log-format' % program
    assert not os.path.exists(os.path.join(aqtest.tmpdir(), 'never'))
