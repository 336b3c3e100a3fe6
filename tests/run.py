"""run.py - the test runner `make test` calls

    AQ_BUILD=build/san /usr/bin/python3 tests/run.py [-k PATTERN] [--keep] [-v]

Runs $AQ_BUILD/bin/aq-selftest (each PASS/FAIL line counts as one test),
then every `def test_...` of every tests/test_*.py module, each in its own
child process and session with its own tmp directory and time limit
(@aqtest.timeout(s), default 60 s). Prints `PASS name (1.2s)` or
`FAIL name (1.2s)` with the reason and the tail of the process logs, and
ends with exactly one line `N passed, N failed`; exits 1 if any failed.

-k PATTERN runs the tests whose name (module.function, e.g.
test_core.test_priority_high_before_low) contains PATTERN, or matches it as
a shell pattern when it has * ? or [. The selftests run with no -k, with a
pattern that matches "selftest", or one at a time with -k selftest.<module>
(aq-selftest -t <module>).

Sanitizers: ASAN_OPTIONS/UBSAN_OPTIONS get log_path=<test tmp>/asan and
/ubsan, and a test fails if any report (AddressSanitizer, LeakSanitizer,
UndefinedBehaviorSanitizer) shows up in its tmp directory or process logs.
"""

import ast
import fnmatch
import glob
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
DEFAULT_TIMEOUT = 60
SANITIZER = re.compile(r'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|'
                       r'SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)')


def matches(name, pattern):
    if pattern is None:
        return True
    if any(c in pattern for c in '*?['):
        return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(name, '*' + pattern + '*')
    return pattern in name


def discover():
    """[(module.function, timeout)] in file and definition order."""
    found = []
    for path in sorted(glob.glob(os.path.join(TESTS, 'test_*.py'))):
        module = os.path.basename(path)[:-3]
        try:
            with open(path) as f:
                tree = ast.parse(f.read(), path)
        except SyntaxError as e:
            found.append(('%s.<import>' % module, 10, 'syntax error: %s' % e))
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith('test_'):
                limit = DEFAULT_TIMEOUT
                for dec in node.decorator_list:
                    if (isinstance(dec, ast.Call) and getattr(dec.func, 'attr', getattr(dec.func, 'id', None)) == 'timeout'
                            and dec.args and isinstance(dec.args[0], ast.Constant)):
                        limit = dec.args[0].value
                found.append(('%s.%s' % (module, node.name), limit, None))
    return found


def sanitizer_env(tmp):
    env = dict(os.environ)
    asan = env.get('ASAN_OPTIONS', 'detect_leaks=1:abort_on_error=1')
    ubsan = env.get('UBSAN_OPTIONS', 'print_stacktrace=1:halt_on_error=1')
    env['ASAN_OPTIONS'] = asan + ':log_path=' + os.path.join(tmp, 'asan')
    env['UBSAN_OPTIONS'] = ubsan + ':log_path=' + os.path.join(tmp, 'ubsan')
    env['AQ_TEST_TMP'] = tmp
    env.setdefault('AQ_BUILD', 'build')
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    return env


def sanitizer_reports(tmp):
    """Excerpts of sanitizer reports found under tmp."""
    reports = []
    for path in sorted(glob.glob(os.path.join(tmp, '**', '*'), recursive=True)):
        base = os.path.basename(path)
        if not os.path.isfile(path):
            continue
        if not (base.startswith('asan') or base.startswith('ubsan') or base.endswith('.log')
                or base == 'test.out'):
            continue
        try:
            with open(path, 'rb') as f:
                text = f.read().decode('utf-8', 'replace')
        except OSError:
            continue
        match = SANITIZER.search(text)
        if match:
            start = text.rfind('\n', 0, match.start()) + 1
            lines = text[start:].split('\n')[:25]
            reports.append('%s:\n    %s' % (os.path.relpath(path, tmp), '\n    '.join(lines)))
    return reports


def log_tails(tmp, lines=15):
    out = []
    for path in sorted(glob.glob(os.path.join(tmp, '*.log'))):
        try:
            with open(path, 'rb') as f:
                text = f.read().decode('utf-8', 'replace').rstrip('\n')
        except OSError:
            continue
        tail = text.split('\n')[-lines:]
        out.append('--- %s (last %d lines)\n    %s'
                   % (os.path.basename(path), len(tail), '\n    '.join(tail)))
    return out


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------
# Parent side

def run_selftest(pattern, verbose):
    """[(name, ok, seconds, reason)] from aq-selftest's PASS/FAIL lines."""
    if pattern is not None and not matches('selftest', pattern) and not pattern.startswith('selftest'):
        return []
    build = os.environ.get('AQ_BUILD', 'build')
    path = os.path.join(build if os.path.isabs(build) else os.path.join(ROOT, build), 'bin', 'aq-selftest')
    if not os.access(path, os.X_OK):
        return [('selftest', False, 0.0, '%s is not built' % path)]
    args = [path]
    if pattern is not None and pattern.startswith('selftest.'):
        args += ['-t', pattern[len('selftest.'):]]
    start = time.monotonic()
    try:
        run = subprocess.run(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=600)
        out = run.stdout.decode('utf-8', 'replace')
        err = run.stderr.decode('utf-8', 'replace')
        code = run.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode('utf-8', 'replace')
        err = 'aq-selftest timed out after 600s'
        code = None
    elapsed = time.monotonic() - start
    results = []
    for line in out.split('\n'):
        m = re.match(r'(PASS|FAIL) selftest (\S+)', line)
        if m:
            reason = None if m.group(1) == 'PASS' else err.strip()[-3000:]
            results.append(('selftest.' + m.group(2), m.group(1) == 'PASS', None, reason))
    if code != 0 and not any(not ok for _, ok, _, _ in results):
        results.append(('selftest', False, elapsed, 'aq-selftest exited %s\n%s' % (code, err[-3000:])))
    if verbose and err:
        sys.stdout.write(err)
    return results


def run_one(name, limit, tmp_root, keep, verbose):
    # short: ipc://DATA/client.ipc must stay under the 107-byte socket path limit
    tmp = os.path.join(tmp_root, name.replace('test_', '')[:48])
    os.makedirs(tmp, exist_ok=True)
    out_path = os.path.join(tmp, 'test.out')
    result_path = os.path.join(tmp, 'result.json')
    start = time.monotonic()
    with open(out_path, 'wb') as out:
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--child', name],
                                 cwd=ROOT, env=sanitizer_env(tmp), stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        timed_out = False
        try:
            child.wait(limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                child.send_signal(signal.SIGUSR1)  # the child dumps its stack
                time.sleep(0.5)
            except ProcessLookupError:
                pass
        kill_group(child.pid)
        child.wait()
    elapsed = time.monotonic() - start
    reasons = []
    if timed_out:
        reasons.append('timeout: still running after %ds' % limit)
    try:
        with open(result_path) as f:
            result = json.load(f)
    except (OSError, ValueError):
        result = {'ok': False, 'reason': None if timed_out else
                  'test process exited with %s and no result' % child.returncode}
    if not result.get('ok') and result.get('reason'):
        reasons.append(result['reason'])
    reports = sanitizer_reports(tmp)
    if reports:
        reasons.append('sanitizer report(s):\n  ' + '\n  '.join(reports))
    ok = not reasons
    with open(out_path, 'rb') as f:
        output = f.read().decode('utf-8', 'replace')
    if ok:
        print('PASS %s (%.1fs)' % (name, elapsed))
        for note in result.get('notes', []):
            print('  note: %s' % note)
        if verbose and output.strip():
            print('  ' + output.rstrip().replace('\n', '\n  '))
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        print('FAIL %s (%.1fs)' % (name, elapsed))
        for reason in reasons:
            print('  ' + reason.rstrip().replace('\n', '\n  '))
        for note in result.get('notes', []):
            print('  note: %s' % note)
        if output.strip():
            tail = output.rstrip().split('\n')[-30:]
            print('  --- test output (last %d lines)\n      %s' % (len(tail), '\n      '.join(tail)))
        for tail in log_tails(tmp):
            print('  ' + tail.replace('\n', '\n  '))
        print('  (files kept in %s)' % tmp)
    sys.stdout.flush()
    return ok


def main(argv):
    pattern = None
    keep = verbose = False
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == '-k' and args:
            pattern = args.pop(0)
        elif arg == '--keep':
            keep = True
        elif arg == '-v':
            verbose = True
        elif arg == '--child' and args:
            return child_main(args.pop(0))
        else:
            print('usage: run.py [-k PATTERN] [--keep] [-v]', file=sys.stderr)
            return 2
    passed = failed = 0
    start = time.monotonic()
    for name, ok, elapsed, reason in run_selftest(pattern, verbose):
        if ok:
            print('PASS %s' % name)
            passed += 1
        else:
            print('FAIL %s' % name + (' (%.1fs)' % elapsed if elapsed else ''))
            if reason:
                print('  ' + reason.rstrip().replace('\n', '\n  '))
            failed += 1
    sys.stdout.flush()
    tmp_root = tempfile.mkdtemp(prefix='aqtest-')
    for name, limit, broken in discover():
        if not matches(name, pattern):
            continue
        if broken:
            print('FAIL %s\n  %s' % (name, broken))
            failed += 1
            continue
        if run_one(name, limit, tmp_root, keep, verbose):
            passed += 1
        else:
            failed += 1
    if not keep and not os.listdir(tmp_root):
        os.rmdir(tmp_root)
    if verbose:
        print('(%.0fs)' % (time.monotonic() - start))
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


# ---------------------------------------------------------------------------
# Child side: one test in this process, processes cleaned up in finally

def child_main(name):
    import faulthandler
    tmp = os.environ['AQ_TEST_TMP']
    faulthandler.register(signal.SIGUSR1, file=sys.stdout, all_threads=False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.path.insert(0, TESTS)
    result = {'ok': False, 'reason': None, 'notes': []}
    aqtest = None
    try:
        import aqtest
        module_name, function = name.split('.', 1)
        module = importlib.import_module(module_name)
        getattr(module, function)()
        result['ok'] = True
    except AssertionError as e:
        result['reason'] = '%s\n%s' % (e or 'assertion failed', s_where(e))
    except BaseException as e:
        result['reason'] = ''.join(traceback.format_exception(type(e), e, e.__traceback__))[-4000:]
    finally:
        if aqtest is not None:
            try:
                problems = aqtest.cleanup()
            except BaseException as e:
                problems = ['cleanup failed: %r' % e]
            if problems:
                text = 'teardown: ' + '; '.join(problems)
                result['reason'] = (result['reason'] + '\n' + text) if result['reason'] else text
                result['ok'] = False
            result['notes'] = list(getattr(aqtest, 'notes', []))
        with open(os.path.join(tmp, 'result.json'), 'w') as f:
            json.dump(result, f)
        sys.stdout.flush()
    return 0


def s_where(exc):
    """'at file:line in function' for the innermost frame in tests/."""
    frames = traceback.extract_tb(exc.__traceback__)
    tests = [f for f in frames if os.path.basename(f.filename).startswith('test_')]
    shown = tests[-1:] + [f for f in frames[-1:] if f not in tests[-1:]]
    return '\n'.join('  at %s:%d in %s: %s' % (os.path.basename(f.filename), f.lineno, f.name,
                                               (f.line or '').strip()) for f in shown)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
