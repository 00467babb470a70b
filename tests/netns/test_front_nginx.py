"""nginx (not ours) behind `tuntcp serve --front`, driven by wrk and ab (not ours), through the
command line as a user runs it; SIGTERM removes the namespace and nginx with it."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tuntcp.harness.netns import ip_command, list_namespaces
from front_common import need

pytestmark = pytest.mark.netns

CONF = """
daemon off;
master_process on;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{ listen 127.0.0.1:18080; root {d}/www; }}
}}
"""


def ns_out(ns, argv, timeout=60):
    p = subprocess.run([ip_command(), "netns", "exec", ns, *argv], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout


def nginx_pids(conf):
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if conf.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def test_nginx_behind_front_wrk_and_ab(netns_available, tmp_path):
    need("nginx", "wrk", "ab")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello from nginx\n")
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONF.format(d=tmp_path))
    serve = subprocess.Popen(
        [sys.executable, "-m", "tuntcp.cli", "serve", "--name", f"front{os.getpid()}",
         "--profile", "linux-5.4", "--port", "8080", "--backlog", "128",
         "--front", "127.0.0.1:18080", "--front-cmd", f"nginx -c {conf}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ns = None
        deadline = time.monotonic() + 30
        while ns is None and time.monotonic() < deadline:
            line = serve.stdout.readline()
            assert line, f"serve exited {serve.wait()}"
            m = re.search(r"clients in namespace (\S+)", line)
            ns = m.group(1) if m else None
        assert ns, "no banner"
        assert nginx_pids(str(conf)), "nginx did not start"
        url = "http://198.18.1.1:8080/index.html"
        assert ns_out(ns, ["curl", "-s", url]) == "hello from nginx\n"
        wrk = ns_out(ns, ["wrk", "-t", "2", "-c", "50", "-d", "3s", url])
        ab = ns_out(ns, ["ab", "-q", "-n", "2000", "-c", "50", url])
        print(wrk, ab)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
        assert rps > 100 and "Non-2xx" not in wrk and "Socket errors" not in wrk
        assert re.search(r"Complete requests:\s+2000", ab) and re.search(r"Failed requests:\s+0", ab)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
    assert ns not in list_namespaces()
    assert not nginx_pids(str(conf)), "nginx outlived serve"
