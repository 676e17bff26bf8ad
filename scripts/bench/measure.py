"""Runs a command and prints its CPU time and peak RSS as one JSON line:
{"cpu_ms": …, "peak_rss_kib": …, "status": …}. Output of the command is
discarded. For scripts/bench.sh: resource usage from wait4(2), so nothing
but the child itself is counted.

    python3 measure.py CMD [ARG]...
"""
import json
import os
import subprocess
import sys

child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({
    "cpu_ms": round((usage.ru_utime + usage.ru_stime) * 1000, 1),
    "peak_rss_kib": usage.ru_maxrss,
    "status": os.waitstatus_to_exitcode(status),
}))
