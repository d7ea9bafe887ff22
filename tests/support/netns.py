"""A network namespace joined to the host by a veth pair, for real backends at non-loopback addresses.

EndpointSlices may not hold loopback addresses, so a data-plane test that routes real traffic to the pod IPs of a
kwok cluster puts those IPs on the namespace side of a veth pair and runs the servers inside the namespace
(``ip netns exec``). The host reaches each address through a /32 route over the host side; a private /30 joins the two
sides. Names are unique per run; ``remove`` (also on error, from ``network_namespace``) stops what still runs inside
and deletes the namespace, the veth pair and its routes. Needs root and iproute2's ``ip``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


class NetnsError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def supported() -> str | None:
    """None when network namespaces can be created here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        _ip("netns", "list")
    except (OSError, NetnsError) as error:
        return f"iproute2 cannot list network namespaces: {error}"
    return None


@dataclass
class NetworkNamespace:
    """``name`` is the namespace; ``host_if``/``ns_if`` the veth ends; ``addresses`` what ``add_address`` placed."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str
    addresses: list[str] = field(default_factory=list)

    @classmethod
    def create(cls) -> NetworkNamespace:
        """A fresh namespace and veth pair; on any failure what was created is removed again."""
        tag = secrets.token_hex(3)
        link = ipaddress.ip_network(f"10.253.{secrets.randbelow(256)}.{4 * secrets.randbelow(64)}/30")
        host_ip, ns_ip = (str(a) for a in list(link.hosts())[:2])
        netns = cls(f"croupier-{tag}", f"crv{tag}h", f"crv{tag}n", host_ip, ns_ip)
        try:
            _ip("netns", "add", netns.name)
            _ip("link", "add", netns.host_if, "type", "veth", "peer", "name", netns.ns_if)
            _ip("link", "set", netns.ns_if, "netns", netns.name)
            _ip("addr", "add", f"{host_ip}/30", "dev", netns.host_if)
            _ip("link", "set", netns.host_if, "up")
            netns.run("ip", "link", "set", "lo", "up")
            netns.run("ip", "addr", "add", f"{ns_ip}/30", "dev", netns.ns_if)
            netns.run("ip", "link", "set", netns.ns_if, "up")
            netns.run("ip", "route", "add", "default", "via", host_ip)
        except BaseException:
            netns.remove()
            raise
        return netns

    def prefix(self) -> list[str]:
        """Prepend to a command to run it inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.prefix(), *command], capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise NetnsError(f"{' '.join(command)} in {self.name} failed: {result.stderr.strip()}")
        return result

    def add_address(self, address: str) -> None:
        """Put ``address`` (IPv4) on the namespace side and route it from the host over the veth."""
        ip = ipaddress.IPv4Address(address)
        if ip.is_loopback:
            raise NetnsError(f"{address} is a loopback address; the namespace needs routable ones")
        self.run("ip", "addr", "add", f"{ip}/32", "dev", self.ns_if)
        _ip("route", "replace", f"{ip}/32", "dev", self.host_if, "src", self.host_ip)
        self.addresses.append(str(ip))

    def pids(self) -> list[int]:
        result = _ip("netns", "pids", self.name, check=False)
        return [int(p) for p in result.stdout.split()] if result.returncode == 0 else []

    def remove(self) -> None:
        """Stop what still runs inside (TERM, then KILL), delete the routes, the veth pair and the namespace."""
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            pids = self.pids()
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while pids and self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
        for address in self.addresses:
            _ip("route", "del", f"{address}/32", "dev", self.host_if, check=False)
        _ip("link", "del", self.host_if, check=False)  # deletes both ends of the pair
        _ip("netns", "del", self.name, check=False)
        leftover = [name for name in (self.name,) if name in _ip("netns", "list", check=False).stdout.split()]
        if leftover or _ip("link", "show", self.host_if, check=False).returncode == 0:
            raise NetnsError(f"could not remove network namespace {self.name} or veth {self.host_if}")


@contextmanager
def network_namespace() -> Iterator[NetworkNamespace]:
    """A namespace for the block's duration; removed however the block ends."""
    netns = NetworkNamespace.create()
    try:
        yield netns
    finally:
        netns.remove()
