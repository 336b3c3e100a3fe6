"""webdriver.py - a small W3C WebDriver client for chromedriver, over urllib

Enough to drive Debian's headless chromium from the console test
(tests/test_console.py) without npm: a session, navigation, scripts,
clicks, typing, window size, screenshots, and chromedriver's browser and
performance logs (goog:loggingPrefs).

    with Chrome() as browser:
        browser.get('http://127.0.0.1:8080/ui/')
        browser.wait('document.querySelector("h1")')
        browser.click('#signout')
"""

import base64
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'


def available():
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class WebDriverError(Exception):
    pass


class Chrome:
    """chromedriver on a free port and one headless chromium session."""

    def __init__(self, width=1280, height=800, log_path=None, profile=None):
        self.port = _free_port()
        self.base = 'http://127.0.0.1:%d' % self.port
        out = open(log_path, 'ab') if log_path else subprocess.DEVNULL
        self.driver = subprocess.Popen([CHROMEDRIVER, '--port=%d' % self.port],
                                       stdout=out, stderr=subprocess.STDOUT)
        if log_path:
            out.close()
        deadline = time.time() + 20
        while True:
            try:
                if self._call('GET', '/status')['ready']:
                    break
            except (OSError, WebDriverError):
                pass
            if time.time() > deadline or self.driver.poll() is not None:
                self.driver.kill()
                raise WebDriverError('chromedriver did not start')
            time.sleep(0.1)
        args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--no-first-run', '--disable-extensions', '--disable-background-networking',
                '--window-size=%d,%d' % (width, height), '--lang=en-US']
        if profile:
            args.append('--user-data-dir=' + profile)
        caps = {'browserName': 'chrome',
                'goog:chromeOptions': {'binary': CHROMIUM, 'args': args},
                'goog:loggingPrefs': {'browser': 'ALL', 'performance': 'ALL'}}
        try:
            reply = self._call('POST', '/session', {'capabilities': {'alwaysMatch': caps}},
                               timeout=60)
        except Exception:
            self.driver.kill()
            raise
        self.session = '/session/' + reply['sessionId']

    # ---- the protocol ----------------------------------------------------

    def _call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read() or b'{}').get('value')
        except urllib.error.HTTPError as e:
            try:
                value = json.loads(e.read()).get('value', {})
            except ValueError:
                value = {}
            raise WebDriverError('%s %s: %s %s' % (method, path, value.get('error', e.code),
                                                   value.get('message', '')[:500]))

    def cmd(self, method, path, body=None, timeout=30):
        return self._call(method, self.session + path, body, timeout)

    # ---- what tests use --------------------------------------------------

    def get(self, url):
        self.cmd('POST', '/url', {'url': url}, timeout=60)

    def url(self):
        return self.cmd('GET', '/url')

    def run(self, script, *args):
        """Runs script (a function body: `return ...`) with arguments."""
        return self.cmd('POST', '/execute/sync', {'script': script, 'args': list(args)})

    def wait(self, expression, timeout=15.0, what=None):
        """Waits until the JavaScript expression is truthy; returns its value."""
        deadline = time.time() + timeout
        while True:
            value = self.run('return (%s);' % expression)
            if value:
                return value
            if time.time() > deadline:
                raise AssertionError('timed out waiting for %s' % (what or expression))
            time.sleep(0.1)

    def find(self, css):
        found = self.cmd('POST', '/element', {'using': 'css selector', 'value': css})
        return next(iter(found.values()))

    def click(self, css):
        self.cmd('POST', '/element/%s/click' % self.find(css), {})

    def type(self, css, text):
        self.cmd('POST', '/element/%s/value' % self.find(css), {'text': text})

    def keys(self, text):
        """Key presses to the focused element (W3C key actions)."""
        actions = []
        for ch in text:
            actions += [{'type': 'keyDown', 'value': ch}, {'type': 'keyUp', 'value': ch}]
        self.cmd('POST', '/actions', {'actions': [{'type': 'key', 'id': 'kb', 'actions': actions}]})

    def viewport(self, width, height, mobile=False):
        """The page's viewport, exactly (DevTools' device metrics override)."""
        self.cmd('POST', '/goog/cdp/execute', {
            'cmd': 'Emulation.setDeviceMetricsOverride',
            'params': {'width': width, 'height': height, 'deviceScaleFactor': 1,
                       'mobile': mobile}})

    def screenshot(self, path):
        with open(path, 'wb') as f:
            f.write(base64.b64decode(self.cmd('GET', '/screenshot')))

    def log(self, kind):
        """chromedriver's entries of kind ('browser', 'performance') since the last call."""
        return self.cmd('POST', '/se/log', {'type': kind})

    def quit(self):
        try:
            self.cmd('DELETE', '', timeout=15)
        except Exception:
            pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
            self.driver.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()
