"""The built-in lab's names and addresses: a Docker-like host behind a fake internet.

    container ns "ndlab-test"  eth0 172.29.0.2 ─┐
    container ns "ndlab-web"   eth0 172.29.0.3 ─┤ veth-test / veth-web
                                                │
    host ns "ndlab-host"   ndbr0 172.29.0.1/24 ─┘  (bridge, MASQUERADE, FORWARD like Docker)
                           eth0 198.51.100.2/24 ── wan0 198.51.100.1/24   ns "ndlab-inet"
                                                       lo: 203.0.113.80 (HTTP, www.baidu.com)
                                                           203.0.113.53 (DNS, dnsmasq)

`lab up --shape` wires the same containers two other ways (SHAPES): routed, as Calico and
CNI ptp do (no bridge: each container a /32 behind its veth, the link-local gateway
169.254.1.1 answered by proxy ARP, a host route per container), and macvlan (each
container's eth0 a macvlan child of the host's uplink, in the uplink's own network).

web publishes a service as `docker run -p 8080:80` would: an HTTP server on its port 80,
DNAT from the host's 198.51.100.2:8080 (PREROUTING and OUTPUT), an accept in FORWARD.

Every address lives in namespaces the lab creates; nothing is routed to the machine's
real interfaces. The "internet" has no route back to 172.29.0.0/24, so without NAT the
replies have nowhere to go, as on the real internet.
"""

from __future__ import annotations

PREFIX = "ndlab-"
HOST_NS = PREFIX + "host"
INET_NS = PREFIX + "inet"

BRIDGE = "ndbr0"
SUBNET = "172.29.0.0/24"
BRIDGE_ADDRESS = "172.29.0.1"
PREFIXLEN = 24

UPLINK = "eth0"  # the lab host's NIC
UPLINK_ADDRESS = "198.51.100.2"
UPSTREAM_IFACE = "wan0"  # the internet side of the uplink
UPSTREAM_ADDRESS = "198.51.100.1"
UPLINK_PREFIXLEN = 24

INTERNET_NET = "203.0.113.0/24"  # the fake internet's services
WEB_ADDRESS = "203.0.113.80"
DNS_ADDRESS = "203.0.113.53"
WEB_NAME = "www.baidu.com"

# IPv6 (bridge shape): the fake internet in the documentation prefix, the containers in a
# unique-local one behind NAT66, as Docker's `--ipv6` network with a ULA subnet and
# ip6tables MASQUERADE makes them.
UPLINK_ADDRESS6 = "2001:db8:1::2"
UPSTREAM_ADDRESS6 = "2001:db8:1::1"
WEB_ADDRESS6 = "2001:db8:80::80"
SUBNET6 = "fd00:29::/64"
BRIDGE_ADDRESS6 = "fd00:29::1"
CONTAINERS6 = {"test": "fd00:29::2", "web": "fd00:29::3"}

# Lab containers: name -> (address, host-side veth name)
CONTAINERS = {
    "test": ("172.29.0.2", "veth-test"),
    "web": ("172.29.0.3", "veth-web"),
}
CONTAINER_IFACE = "eth0"

# The lab's published service, as `docker run -p 8080:80 web` makes it: web's HTTP server on
# port 80, published on the host's uplink address, port 8080 (bridge and routed shapes).
PUBLISHED_CONTAINER = "web"
PUBLISHED_HOST_PORT = 8080
PUBLISHED_PORT = 80

SHAPES = {
    "bridge": "containers on a bridge, NAT to the uplink (Docker's default network)",
    "routed": "no bridge: /32 per container, gateway 169.254.1.1 by proxy ARP (Calico, ptp)",
    "macvlan": "containers as macvlan children of the uplink, in its own network",
}
ROUTED_GATEWAY = "169.254.1.1"
# macvlan containers live in the uplink's network: name -> address
MACVLAN_ADDRESSES = {"test": "198.51.100.10", "web": "198.51.100.11"}


def container_cidr(name: str, shape: str) -> str:
    """The address (with prefix length) the container's eth0 has in a shape."""
    if shape == "macvlan":
        return f"{MACVLAN_ADDRESSES[name]}/{UPLINK_PREFIXLEN}"
    return f"{CONTAINERS[name][0]}/{32 if shape == 'routed' else PREFIXLEN}"


def container_gateway(shape: str) -> str:
    return {"bridge": BRIDGE_ADDRESS, "routed": ROUTED_GATEWAY,
            "macvlan": UPSTREAM_ADDRESS}[shape]
MTU = 1500

STATE_DIR = "/run/netdoctor/lab"


def container_ns(name: str) -> str:
    return PREFIX + name


def all_namespaces() -> list:
    return [HOST_NS, INET_NS] + [container_ns(c) for c in CONTAINERS]


def resolv_conf_path(name: str) -> str:
    """Where `ip netns exec` (and netdoctor) find the container's resolv.conf."""
    return f"/etc/netns/{container_ns(name)}/resolv.conf"
