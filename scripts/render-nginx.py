#!/usr/bin/env python3
"""Renders nginx/local.conf.template.

Usage: render-nginx.py TEMPLATE OUTPUT RUN_DIR LISTEN UPSTREAM_PORTS [RATE_LIMIT]
UPSTREAM_PORTS is comma-separated (8081,8082,8083), each a loopback port or HOST:PORT; one written
8082:down is kept in the list but sent nothing (take a node out before a graceful restart, then
`nginx -s reload`).
RATE_LIMIT is requests per second per client.
"""
import sys

template, output, run_dir, listen, ports = sys.argv[1:6]
rate = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] else None


def server(entry):
    parts = entry.split(":")
    down = parts[-1] == "down"
    if down:
        parts.pop()
    address = ":".join(parts) if len(parts) > 1 else f"127.0.0.1:{parts[0]}"
    return f"        server {address} max_fails=1 fail_timeout=2s{' down' if down else ''};"


servers = "\n".join(server(entry) for entry in ports.split(","))
values = {
    "@RUN_DIR@": run_dir,
    "@LISTEN@": listen,
    "@UPSTREAM_SERVERS@": servers,
    "@RATE_LIMIT_ZONE@": (f"limit_req_zone $binary_remote_addr zone=per_client:10m rate={rate}r/s;\n"
                          "    limit_req_status 429;") if rate else "",
    "@RATE_LIMIT_APPLY@": f"limit_req zone=per_client burst={rate} nodelay;" if rate else "",
}
text = open(template).read()
for placeholder, value in values.items():
    text = text.replace(placeholder, value)
open(output, "w").write(text)
