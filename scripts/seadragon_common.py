"""What scripts/seadragon-soak and scripts/bench/seadragon-bench.py both
need: a free loopback port, a wait for a condition, the children of a
process.  Python 3 standard library only; Linux (/proc).

    import seadragon_common as common
    port = common.free_port()
    if not common.wait_until(lambda: ready(), timeout=10, pause=0.05): ...
    workers = common.children_of(master_pid)
"""

import os
import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's
    choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout=10.0, pause=0.001):
    """Calls condition() every pause seconds until it is true: True then;
    False once timeout seconds have passed without it."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)


def children_of(pid):
    """The pids whose parent is pid, in /proc's order (a process that ends
    while it is read is left out)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found
