"""test_power.py - a simulated power loss at 1,000 random points of the store's writes

The cuts are made by the broker's own selftest bk_power (broker/power_test.c:
the redo log over a simulated disk that keeps only what was synced and tears
the write under way; a child process runs creates-sized commits with
checkpoints and dies at the cut). After each cut the store must open and
hold every acknowledged commit. Here it runs with AQ_POWER_CUTS=1000 (the
selftest suite runs fewer); the runner shows the figure as a note.
"""

import os
import re
import subprocess

import aqtest


def test_power_loss_at_1000_random_points_loses_no_acknowledged_commit():
    cuts = int(os.environ.get('AQ_POWER_CUTS', '1000'))
    env = dict(os.environ, AQ_POWER_CUTS=str(cuts))
    run = subprocess.run([aqtest.binary('aq-selftest'), '-v', '-t', 'bk_power'], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    out = run.stdout.decode(errors='replace')
    assert run.returncode == 0, out[-3000:]
    found = re.search(r'bk_power: (\d+) cuts, (\d+) acknowledged commits lost, (\d+) refused '
                      r'starts \((\d+) held', out)
    assert found, out[-3000:]
    done, lost, refused, early = map(int, found.groups())
    assert (done, lost, refused) == (cuts, 0, 0), found.group(0)
    aqtest.notes.append('power loss: %d cuts, %d acknowledged commits lost, %d refused starts '
                        '(%d cuts kept a commit whose answer had not gone out)'
                        % (done, lost, refused, early))
