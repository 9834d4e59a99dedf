"""``python -m bench.rss COMMAND...``: run a command and print its peak RSS in KiB.

Linux carries a process's peak RSS across ``exec`` from the process it forked from, so a
command started straight from the (big) benchmark process would report the benchmark's own
peak. This launcher is a small fresh process: the command's figure is its own.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(command: list[str]) -> int:
    """Run ``command`` (its stdout discarded) and print ``<exit code> <peak RSS KiB>``."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    print(proc.returncode, usage.ru_maxrss)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
