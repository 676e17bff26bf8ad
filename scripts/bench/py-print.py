"""`/ip/hotspot/user/print` with librouteros, each row as a JSON line, as
`mikrotik-edge api` does: for scripts/bench.sh only.

    python3 py-print.py HOST PORT USER PASSWORD
"""
import json
import sys

import librouteros

host, port, user, password = sys.argv[1:5]
api = librouteros.connect(host=host, port=int(port), username=user, password=password)
out = sys.stdout
for row in api("/ip/hotspot/user/print"):
    out.write(json.dumps(row, default=str))
    out.write("\n")
api.close()
