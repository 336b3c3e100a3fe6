"""test_fuzz.py - the libFuzzer harnesses build and run clean on their corpora

`make test` runs this: it builds the harnesses (make fuzz-build, clang,
build/fuzz, incremental) and runs each one for a few seconds over its seed
corpus in tests/fuzz/corpus (with the inputs that crashed it once, kept as
regressions), with a fresh work corpus in the test's tmp directory. The
long runs are `make fuzz` (docs/fuzzing.md).
"""
import glob
import os
import re
import shutil
import subprocess

import aqtest

SECONDS = 2  # per harness


@aqtest.timeout(900)
def test_fuzz_harnesses_run_clean():
    assert shutil.which('clang'), 'clang is not installed (make test-deps installs it)'
    names = sorted(os.path.basename(p)[:-2]
                   for p in glob.glob(os.path.join(aqtest.ROOT, 'tests', 'fuzz', '*.c')))
    assert len(names) >= 12, names
    for name in names:
        seeds = os.path.join(aqtest.ROOT, 'tests', 'fuzz', 'corpus', name)
        assert os.path.isdir(seeds) and os.listdir(seeds), 'no seed corpus for %s' % name
    build = subprocess.run(['make', '--no-print-directory', '-j2', 'fuzz-build'],
                           cwd=aqtest.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert build.returncode == 0, build.stdout.decode('utf-8', 'replace')[-3000:]
    work = os.path.join(aqtest.tmpdir(), 'fuzz')
    env = dict(os.environ, FUZZ_BUILD='build/fuzz', FUZZ_SECONDS=str(SECONDS), FUZZ_WORK=work)
    run = subprocess.run([os.path.join('tests', 'fuzz', 'run.sh')], cwd=aqtest.ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = run.stdout.decode('utf-8', 'replace')
    print(out)
    lines = {}
    for line in out.splitlines():
        m = re.match(r'fuzz (\S+) execs=(\d+) crashes=(\d+) edges=(\d+)$', line)
        if m:
            lines[m.group(1)] = tuple(int(x) for x in m.group(2, 3, 4))
    assert sorted(lines) == names, (sorted(lines), names)
    for name, (execs, crashes, edges) in lines.items():
        assert crashes == 0, '%s crashed: %s' % (name, out)
        assert execs > 0 and edges > 0, '%s did not run: %s' % (name, out)
    assert run.returncode == 0, out
