"""Runs a command and prints its CPU time and peak RSS as one JSON line:
{"cpu_ms": …, "peak_rss_kib": …, "status": …}. Output of the command is
discarded. For scripts/bench.sh.

The child is started through GNU time (/usr/bin/time, Debian's `time`
package) when it is there: a process forked straight from Python inherits
Python's resident pages before it execs, and Linux counts them in the
child's peak RSS (ru_maxrss), which would inflate a small program's figure
to Python's ~14 MB. Without GNU time, wait4(2) is used and the RSS figure
is only an upper bound.

    python3 measure.py CMD [ARG]...
"""
import json
import os
import subprocess
import sys
import tempfile

cmd = sys.argv[1:]
if os.access("/usr/bin/time", os.X_OK):
    with tempfile.NamedTemporaryFile("r") as out:
        status = subprocess.call(
            ["/usr/bin/time", "-o", out.name, "-f", "%U %S %M", *cmd],
            stdout=subprocess.DEVNULL,
        )
        user, system, maxrss = out.read().split()[-3:]
    print(json.dumps({
        "cpu_ms": round((float(user) + float(system)) * 1000, 1),
        "peak_rss_kib": int(maxrss),
        "status": status,
    }))
else:
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    print(json.dumps({
        "cpu_ms": round((usage.ru_utime + usage.ru_stime) * 1000, 1),
        "peak_rss_kib": usage.ru_maxrss,
        "status": os.waitstatus_to_exitcode(status),
        "rss_upper_bound": True,
    }))
