"""A real DNS server for tests: dnsmasq, run as a plain process from a generated config.

It listens on 127.0.0.1 on a free port, reads no system file (/etc/hosts, resolv.conf,
/etc/dnsmasq.conf), forwards nothing, and answers for the `LOCAL_DOMAINS` from its own
records only: a name it has no record for is NXDOMAIN, as from a real authoritative server.
Any other name is REFUSED (a DNS error). `pause()` stops the process (SIGSTOP), so it takes
queries and never answers, like a server that died behind a load balancer.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from .programs import find_program

DNSMASQ_CANDIDATES = ("/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq")
LOCAL_DOMAINS = ("test", "google.com", "outlook.com")


def find_dnsmasq() -> str | None:
    return find_program("dnsmasq", DNSMASQ_CANDIDATES)


def _free_udp_tcp_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _txt_value(text: str) -> str:
    """A TXT record of one logical string, split into 255-byte character-strings."""
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return ",".join(_quote(chunk) for chunk in chunks)


class DnsServer:
    """`DnsServer(records)` with records as (name, type, value): TXT value is the text, MX
    value is (preference, host), CNAME value is the target."""

    def __init__(self, records: Iterable[tuple[str, str, object]]):
        binary = find_dnsmasq()
        if binary is None:
            raise RuntimeError("dnsmasq is not installed (scripts/test-services.sh)")
        self.root = Path(tempfile.mkdtemp(prefix="seqctl-dns-"))
        self.port = _free_udp_tcp_port()
        lines = [f"local=/{domain}/" for domain in LOCAL_DOMAINS]
        for name, rtype, value in records:
            if rtype == "TXT":
                lines.append(f"txt-record={name},{_txt_value(str(value))}")
            elif rtype == "MX":
                preference, host = value  # type: ignore[misc]
                lines.append(f"mx-host={name},{host},{preference}")
            elif rtype == "CNAME":
                lines.append(f"cname={name},{value}")
            else:
                raise ValueError(f"record type {rtype} is not supported here")
        conf = self.root / "dnsmasq.conf"
        conf.write_text("\n".join(lines) + "\n")
        user = "root" if os.geteuid() == 0 else None
        args = [binary, "--keep-in-foreground", f"--conf-file={conf}", "--no-resolv",
                "--no-hosts", "--no-poll", "--bind-interfaces", "--listen-address=127.0.0.1",
                f"--port={self.port}", "--pid-file=", "--cache-size=0",
                f"--log-facility={self.root / 'dnsmasq.log'}"]
        if user:
            args.append(f"--user={user}")
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self._wait_ready()

    @property
    def address(self) -> str:
        """The value for SEQCTL_DNS_SERVER."""
        return f"127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        query = dns.message.make_query("ready.test.", "TXT")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"dnsmasq exited: {err.strip()}")
            try:
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
                return
            except (dns.exception.Timeout, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("dnsmasq did not answer within 30 s")

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)
