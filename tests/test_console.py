"""test_console.py - the web console (/ui/, SPEC 12, issue 16) in a real headless chromium

Debian's chromium and chromedriver (make test-deps installs them), driven
over the W3C WebDriver protocol (tests/webdriver.py), against the real
all-in-one server and aq-target. Tasks are made through the API; the
browser signs in with /ui/#key=KEY and the test checks what it shows
against the API, clicks the bulk retry of the failed page, reads one
task's attempts, and signs in again with a read key, which sees no action
button. Through it all: no console error, no request answered 4xx/5xx
(chromedriver's browser and performance logs), the key in no request URL,
in no cookie and not in localStorage. Screenshots of every page, at
1280x800 and at a phone's 390 px, go to build/screenshots/.
"""

import json
import os
import random
import threading
import time

import aqtest
import webdriver
from aqtest import wait_until

NEVER = 'http://127.0.0.1:9/never'   # nothing listens: each attempt fails at once
SHOTS = os.path.join(aqtest.ROOT, 'build', 'screenshots')


class s_Browser:
    """A chromium session on the console, and the checks of its logs."""

    def __init__(self, aq, keys):
        self.aq = aq
        self.keys = keys
        self.flow = True          # set false when the server has no flow control
        self.b = webdriver.Chrome(width=1280, height=800,
                                  log_path=os.path.join(aqtest.tmpdir(), 'chromedriver.log'))
        self.b.viewport(1280, 800)
        self.urls = []

    def open(self, hash_):
        self.b.run('location.hash = arguments[0];', hash_)

    def page(self, hash_, ready):
        """Goes to a page and waits for the JavaScript expression ready."""
        self.open(hash_)
        value = self.b.wait(ready, 15, 'page %s to show %s' % (hash_, ready))
        text = self.b.run('return document.getElementById("page").innerText;')
        for junk in ('[object', 'undefined', 'NaN', 'null'):
            assert junk not in text, (hash_, junk, text)
        wide = self.b.run('return document.documentElement.scrollWidth - innerWidth;')
        assert wide <= 0, '%s is %d px wider than the window' % (hash_, wide)
        return value

    def shot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        self.b.screenshot(os.path.join(SHOTS, name + '.png'))

    def check_logs(self):
        """No console error, no 4xx/5xx response, no key in a URL; returns
        the URLs requested since the last call."""
        problems, urls = [], []
        for entry in self.b.log('browser'):
            if entry['level'] in ('SEVERE', 'WARNING') and not self._allowed(entry['message']):
                problems.append('console: ' + entry['message'])
        for entry in self.b.log('performance'):
            message = json.loads(entry['message'])['message']
            params = message.get('params', {})
            if message['method'] == 'Network.requestWillBeSent':
                url = params['request']['url']
                self.urls.append(url)
                urls.append(url)
                for key in self.keys:
                    if key in url:
                        problems.append('the key is in a request URL: ' + url)
            elif message['method'] == 'Network.responseReceived':
                response = params['response']
                if response['status'] >= 400 and not self._allowed(response['url']):
                    problems.append('%d %s' % (response['status'], response['url']))
        assert not problems, problems
        return urls

    def _allowed(self, text):
        # Flow control (GET /v1/flow-control) comes with the flow branch; on a
        # server without it the console says so, after one 404 per look.
        return not self.flow and '/v1/flow-control' in text

    def check_key_kept(self):
        for key in self.keys:
            assert key not in self.b.url()
        stored = self.b.run('return [JSON.stringify(localStorage), document.cookie,'
                            ' location.href, sessionStorage.getItem("aq.key")];')
        for key in self.keys:
            assert key not in stored[0] and key not in stored[1] and key not in stored[2], stored
        return stored[3]

    def quit(self):
        self.b.quit()


def s_rows(expression='#rows tbody tr'):
    return 'document.querySelectorAll(%s).length' % json.dumps(expression)


@aqtest.timeout(120)
def test_console_pages_bulk_retry_read_key():
    assert webdriver.available(), 'chromium and chromedriver are not installed (make test-deps)'
    aq = aqtest.start_allinone(workers='2')
    target = aqtest.start_target()
    team = 'console-%06x' % random.randrange(1 << 24)
    key = aq.new_key(team)
    read = aq.new_key(team, scope='read')
    api = aqtest.HttpClient(aq.port, key)
    tag = '%06x' % random.randrange(1 << 24)

    # Three that complete, two that fail at once (no retry), one far in the future
    done = [api.post('/v1/tasks', {'targetUrl': target.url('/ok/c'), 'labels': {'batch': 'ok-' + tag}})
            for _ in range(3)]
    bad = [api.post('/v1/tasks', {'targetUrl': NEVER, 'maxRetries': 0, 'labels': {'batch': 'bad-' + tag}})
           for _ in range(2)]
    later = api.post('/v1/tasks', {'targetUrl': target.url('/ok/later'),
                                   'delayUntil': '2099-01-01T00:00:00.000Z'})
    assert all(r.status == 201 for r in done + bad + [later]), done + bad + [later]
    bad_ids = sorted(r.json['task']['id'] for r in bad)
    schedule = api.post('/tasks', {'title': 'Nightly report', 'description': 'the console test',
                                   'created_by': '550e8400-e29b-41d4-a716-446655440000',
                                   'schedule_kind': 'cron',
                                   'schedule_expr': '30 2 * * *', 'timezone': 'Europe/Paris',
                                   'payload': {'targetUrl': target.url('/ok/nightly')}})
    assert schedule.status == 201, schedule
    schedule_id = schedule.json['task']['id']
    assert api.post('/tasks/%s/run_now' % schedule_id).status == 201
    assert api.post('/v1/tokens', {'name': 'fal key', 'value': 'secret-' + tag}).status == 201

    def settled(completed):
        counts = api.get('/v1/stats').json['tasks']
        return counts['completed'] >= completed and counts['failed'] == 2
    wait_until(lambda: settled(4), 20, 'the tasks to finish')

    # /v1/stats?wait=N&since=C: held while C is the team's changes count,
    # answered at once by a status change of one of its tasks
    changes = api.get('/v1/stats').json['changes']
    quiet = api.get('/v1/stats?wait=1&since=%d' % changes)
    assert quiet.status == 200 and quiet.elapsed >= 0.9 and quiet.json['changes'] == changes, quiet
    assert api.get('/v1/stats?wait=5&since=%d' % (changes - 1)).elapsed < 0.5
    poll = aqtest.HttpClient(aq.port, key)
    woken = []
    waiter = threading.Thread(target=lambda: woken.append(
        poll.get('/v1/stats?wait=20&since=%d' % changes)))
    waiter.start()
    time.sleep(0.3)
    assert api.post('/v1/tasks', {'targetUrl': target.url('/ok/wake')}).status == 201
    waiter.join(10)
    assert woken and woken[0].status == 200 and woken[0].json['changes'] > changes, woken
    assert woken[0].elapsed < 5, woken[0].elapsed
    poll.close()

    wait_until(lambda: settled(5), 20, 'the last task to finish')
    flow = api.get('/v1/flow-control').status != 404
    flow_key = 'fal-prod-' + tag
    if flow:
        made = api.post('/v1/tasks', {'targetUrl': target.url('/ok/flow'),
                                      'flowControl': {'key': flow_key, 'rate': 10, 'parallelism': 2}})
        assert made.status == 201, made
        wait_until(lambda: settled(6), 20, 'the flow task to finish')

    # whoami: the key's team and scope, for any valid key
    who = api.get('/v1/whoami')
    assert who.status == 200 and who.json['team'] == team and who.json['scope'] == 'full', who
    assert api.get('/v1/whoami', key=read).json['scope'] == 'read'
    assert api.get('/v1/whoami', key=None).status == 401
    shown = json.loads(aq.aqctl('--key', read, 'whoami'))
    assert shown['team'] == team and shown['scope'] == 'read', shown

    # The files: no key needed, strict headers, a favicon
    page = api.get('/ui/', key=None)
    assert page.status == 200 and page.headers['content-type'].startswith('text/html'), page
    assert "default-src 'self'" in page.headers['content-security-policy']
    assert page.headers['etag'] and page.headers['cache-control'] == 'no-cache'
    assert api.get('/ui/', key=None, headers={'If-None-Match': page.headers['etag']}).status == 304
    assert api.get('/favicon.ico', key=None).status == 200
    assert api.get('/ui/missing.js', key=None).status == 404
    assert api.post('/ui/', key=None).status == 405

    browser = s_Browser(aq, [key, read])
    browser.flow = flow
    b = browser.b
    try:
        # Sign in by #key=: the key leaves the address bar at once
        b.get(aq.url('/ui/#key=' + key))
        b.wait('document.querySelectorAll("#counts a").length === 9', 20, 'the overview')
        assert browser.check_key_kept() == key
        assert b.run('return document.getElementById("who").textContent;').startswith(team)

        # Overview counts are the API's (counters)
        counts = api.get('/v1/stats').json['tasks']
        shown = b.run('return Object.fromEntries([...document.querySelectorAll("#counts a")]'
                      '.map(a => [a.dataset.status, +a.querySelector(".n").textContent]));')
        assert shown == counts, (shown, counts)
        assert b.run('return +document.querySelector("#gauge-workers .n").textContent;') == 2
        assert b.run('return document.querySelectorAll("svg.plot polyline").length;') == 3
        browser.shot('overview')

        # Tasks filtered by label: exactly the three
        browser.page('#/tasks?label=' + 'batch:ok-' + tag, s_rows() + ' === 3')
        assert b.run('return document.getElementById("summary").textContent;').startswith('3 tasks')
        # A task created through the API shows up without a reload
        api.post('/v1/tasks', {'targetUrl': target.url('/ok/c'), 'labels': {'batch': 'ok-' + tag}})
        b.wait(s_rows() + ' === 4', 12, 'the new task to show up')
        browser.shot('tasks')
        # The filter form: by keyboard, status completed
        browser.page('#/tasks', s_rows() + ' >= 7')
        b.run('document.getElementById("f-status").value = "delayed";'
              'document.querySelector("form[role=search]").requestSubmit();')
        b.wait('location.hash.includes("status=delayed") && ' + s_rows() + ' === 1', 10)

        # Failed: bulk retry, with the count in the confirmation
        browser.page('#/failed', s_rows() + ' === 2')
        browser.shot('failed')
        b.click('#bulk-retry')
        text = b.wait('document.getElementById("confirm").open && '
                      'document.getElementById("confirm-text").textContent', 10)
        assert text.startswith('Retry 2 tasks matching this filter?'), text
        browser.shot('failed-confirm')
        b.click('#confirm-ok')

        def retried():
            attempts = [len(api.get('/v1/tasks/%s/attempts' % i).json['attempts']) for i in bad_ids]
            return attempts == [2, 2]
        wait_until(retried, 20, 'both failed tasks to get a second attempt')

        # One task: its attempts on the timeline, retry offered once it failed again
        browser.page('#/task/' + bad_ids[0], 'document.querySelectorAll("#attempts li").length === 2')
        b.wait('document.getElementById("retry")', 10)
        assert 'fetch failed' in b.run('return document.getElementById("attempts").textContent;')
        browser.shot('task')

        # Schedules, flow control, tokens
        browser.page('#/schedules', s_rows('#schedules tbody tr') + ' === 1')
        browser.shot('schedules')
        browser.page('#/schedule/' + schedule_id,
                     'document.querySelectorAll("#fire-times li").length === 5 && '
                     'document.querySelector("#run-now") && ' + s_rows('table tbody tr') + ' >= 1')
        title = b.run('return document.querySelector("#fire-times time").title;')
        assert title.endswith('Z (UTC)'), title
        browser.shot('schedule')
        if flow:   # a key with limits: shown, paused from the page
            browser.page('#/flow', s_rows('#flow tbody tr') + ' >= 1')
            assert flow_key in b.run('return document.getElementById("flow").textContent;')
            b.click('#flow tbody button')
            wait_until(lambda: api.get('/v1/flow-control/' + flow_key).json['flowControl']['paused'],
                       10, 'the key to be paused')
            b.wait('document.querySelector("#flow tbody button").textContent === "Resume"', 10)
        else:
            browser.page('#/flow', 'document.querySelector("#flow p, #flow table")')
        browser.shot('flow')
        browser.page('#/tokens', s_rows('#tokens tbody tr') + ' === 1')
        assert 'secret-' + tag not in b.run('return document.body.textContent;')
        browser.shot('tokens')

        # A phone's width
        b.viewport(390, 844, mobile=True)
        browser.page('#/overview', 'document.querySelectorAll("#counts a").length === 9')
        browser.shot('overview-390')
        browser.page('#/failed', s_rows() + ' >= 0 && document.getElementById("summary").textContent')
        browser.shot('failed-390')
        browser.page('#/task/' + bad_ids[0], 'document.querySelectorAll("#attempts li").length >= 2')
        browser.shot('task-390')
        b.viewport(1280, 800)
        browser.check_logs()
        browser.check_key_kept()

        # A hidden tab asks nothing (the overview long-polls GET /v1/stats while shown)
        browser.page('#/overview', 'document.querySelectorAll("#counts a").length === 9')
        b.run('Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});'
              'document.dispatchEvent(new Event("visibilitychange"));')
        browser.check_logs()
        time.sleep(6.5)
        asked = [u for u in browser.check_logs() if '/v1/' in u or '/tasks' in u]
        assert asked == [], asked
        b.run('Object.defineProperty(document, "visibilityState", {value: "visible", configurable: true});'
              'document.dispatchEvent(new Event("visibilitychange"));')
        time.sleep(0.5)
        assert any('/v1/stats' in u for u in browser.check_logs())   # caught up at once
        # A task not done yet is long-polled; hiding the tab ends the poll (no error)
        later_id = later.json['task']['id']
        browser.page('#/task/' + later_id, 'document.querySelector(".badge.st-delayed")')
        time.sleep(0.5)
        assert any(later_id + '?wait=25' in u for u in browser.check_logs())
        b.run('Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});'
              'document.dispatchEvent(new Event("visibilitychange"));')
        time.sleep(1)
        assert browser.check_logs() == []
        b.run('Object.defineProperty(document, "visibilityState", {value: "visible", configurable: true});'
              'document.dispatchEvent(new Event("visibilitychange"));')
        time.sleep(0.5)
        assert any(later_id + '?wait=25' in u for u in browser.check_logs())

        # A read key: the same pages, no action button anywhere
        b.click('#signout')
        b.wait('!document.getElementById("signin").hidden', 5)
        assert b.run('return sessionStorage.length;') == 0
        b.run('document.getElementById("key").focus();')
        b.keys(read + '\ue007')   # typed, then Enter
        b.wait('document.getElementById("who").textContent.includes("read only")', 10)
        pages = [('#/overview', 'document.querySelectorAll("#counts a").length === 9'),
                 ('#/tasks', s_rows() + ' >= 7'),
                 ('#/failed', 'document.getElementById("summary").textContent'),
                 ('#/task/' + bad_ids[0], 'document.querySelectorAll("#attempts li").length >= 2'),
                 ('#/schedule/' + schedule_id, 'document.querySelectorAll("#fire-times li").length'),
                 ('#/flow', 'document.querySelector("#flow p, #flow table")'),
                 ('#/tokens', s_rows('#tokens tbody tr') + ' === 1')]
        for hash_, ready in pages:
            browser.page(hash_, ready)
            buttons = b.run('return [...document.querySelectorAll("#page button:not([role=search] button), #page form:not([role=search])")]'
                            '.map(e => e.outerHTML);')
            assert buttons == [], (hash_, buttons)
            if hash_.startswith('#/task/'):
                browser.shot('read-only-task')
        browser.check_logs()
        assert browser.check_key_kept() == read
        assert any('/v1/whoami' in u for u in browser.urls)
        assert any('/v1/stats?wait=25&since=' in u for u in browser.urls)   # the lists' long poll
    finally:
        browser.quit()
