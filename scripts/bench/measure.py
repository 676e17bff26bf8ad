"""Runs a command several times and prints its CPU time and peak RSS as
one JSON line: {"cpu_ms": …, "cpu_ms_runs": […], "peak_rss_kib": …,
"status": …}. Output of the command is discarded. For scripts/bench.sh.

cpu_ms is the median of BENCH_RUNS runs (default 5): one run of a 20 ms
program varies by more than the differences being measured. CPU time is
user + system from wait4(2), which Linux keeps to the microsecond (GNU
time prints it in 10 ms steps, too coarse for a program that runs ~20 ms).

Peak RSS comes from GNU time (/usr/bin/time, Debian's `time` package),
which execs the command: a process forked straight from Python inherits
Python's resident pages before it execs, and Linux counts them in the
child's ru_maxrss, which would inflate a small program's figure to
Python's ~14 MB. GNU time's own CPU (well under a millisecond) counts
against the command measured. Without GNU time the command is run
directly and the RSS figure is only an upper bound.

    python3 measure.py CMD [ARG]...
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

cmd = sys.argv[1:]
runs = max(1, int(os.environ.get("BENCH_RUNS", "5")))
gnu_time = os.access("/usr/bin/time", os.X_OK)
cpu, rss, status = [], [], 0
for _ in range(runs):
    with tempfile.NamedTemporaryFile("r") as out:
        argv = ["/usr/bin/time", "-o", out.name, "-f", "%M", *cmd] if gnu_time else cmd
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        _, raw, usage = os.wait4(child.pid, 0)
        status = status or os.waitstatus_to_exitcode(raw)
        cpu.append(round((usage.ru_utime + usage.ru_stime) * 1000, 2))
        rss.append(int(out.read().split()[-1]) if gnu_time else usage.ru_maxrss)
result = {
    "cpu_ms": round(statistics.median(cpu), 2),
    "cpu_ms_runs": cpu,
    "peak_rss_kib": max(rss),
    "status": status,
}
if not gnu_time:
    result["rss_upper_bound"] = True
print(json.dumps(result))
