"""Free loopback ports for the servers a test starts."""

import random
import socket

_handed_out = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A free port below the kernel's ephemeral range. A port picked by binding port 0 lies in
    that range, where every outgoing connection (psql, HAProxy's checks, the nodes' own database
    connections) takes its local port: between the pick and the server's bind, one of them can
    take it, and the server then fails to start. Ports already handed out are not handed again."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(10000, low)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def free_port_range(count):
    """A first port such that it and the next count-1 ports are free."""
    low = _ephemeral_low()
    for _ in range(200):
        base = random.randrange(10000, low - count)
        ports = range(base, base + count)
        if _handed_out.intersection(ports):
            continue
        sockets = []
        try:
            for port in ports:
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        _handed_out.update(ports)
        return base
    raise RuntimeError(f"no {count} consecutive free loopback ports below the ephemeral range")
