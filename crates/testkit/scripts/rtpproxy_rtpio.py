"""A real RTPProxy for the rtpproxy module's tests.

The rtp.io package (PyPI, by RTPProxy's authors) is RTPProxy's own code
built as a Python module; this runs one with its control socket on
udp:127.0.0.1:CTL, relaying media on 127.0.0.1 ports LO..HI, and prints
"ready" once it listens. It runs until its standard input closes.

    python3 rtpproxy_rtpio.py CTL LO HI
"""
import sys

from rtp.io import rtpproxy

ctl, lo, hi = sys.argv[1], sys.argv[2], sys.argv[3]
# -F: run as root without asking (CI runs as root).
proxy = rtpproxy(extra_args=["-F", "-s", f"udp:127.0.0.1:{ctl}",
                             "-l", "127.0.0.1", "-m", lo, "-M", hi])
print("ready", flush=True)
sys.stdin.read()
