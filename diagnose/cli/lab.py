"""netdoctor lab up | down | status | break FAULT | heal"""

from __future__ import annotations

import json
from typing import Optional

import typer

from .common import check_format
from .status import ExitStatus
from ..errors import LabStateError, UsageError

app = typer.Typer(help="The built-in sealed lab: a Docker-like host and a fake internet.",
                  no_args_is_help=True)


def up(shape: str = typer.Option("bridge", "--shape",
                                  help="bridge (Docker's default), routed (Calico/ptp: /32 "
                                       "per container, no bridge) or macvlan."),
       hosts: int = typer.Option(1, "--hosts", help="1, or 2: two hosts on an underlay, "
                                                    "wired like flannel, each with sshd."),
       network: str = typer.Option("vxlan", "--network",
                                   help="With --hosts 2: vxlan (flannel's VXLAN backend), "
                                        "host-gw (routes via the peer), bgp (Calico's "
                                        "routes, a real BIRD on each host) or swarm (a "
                                        "Docker Swarm overlay, a real dockerd on each "
                                        "host).")) -> None:
    """Create the lab (namespaces ndlab-*), healthy, with DNS and HTTP in its internet; with
    --hosts 2, the two-host overlay lab (namespaces ndlab2-*)."""
    from ..lab import control, layout

    if hosts not in (1, 2):
        raise UsageError("--hosts must be 1 or 2")
    if hosts == 2:
        return _up_pair(network)

    created, state = control.up(shape)
    if not created:
        typer.echo(f"lab is already up, shape {state.get('shape') or 'bridge'} (`netdoctor "
                   f"lab heal` restores it, `lab down` removes it)")
        return
    names = ", ".join(layout.CONTAINERS)
    wiring = {"bridge": f"on {layout.BRIDGE} ({layout.SUBNET})",
              "routed": f"routed, /32s of {layout.SUBNET} via {layout.ROUTED_GATEWAY}",
              "macvlan": f"macvlan children of {layout.UPLINK} "
                         f"({', '.join(layout.MACVLAN_ADDRESSES.values())})"}[shape]
    typer.echo(f"lab is up: containers {names} {wiring}, "
               f"host {layout.HOST_NS}, {layout.WEB_NAME} = {layout.WEB_ADDRESS}, "
               f"DNS {layout.DNS_ADDRESS}")
    typer.echo("try: netdoctor path test www.baidu.com")


def _up_pair(network: str) -> None:
    from ..lab import pair

    created, state = pair.up(network)
    if not created:
        typer.echo(f"the two-host lab is already up, network {state.get('network')} "
                   f"(`netdoctor lab heal` restores it, `lab down` removes it)")
        return
    if network == "swarm":
        from ..lab import swarm

        c0, c1 = swarm.containers(pair.HOSTS)
        ips = state["swarm"]["containers"]
        typer.echo(f"two-host lab is up (swarm): {pair.HOSTS[0]} ({pair.UNDERLAY[0]}, swarm "
                   f"manager) with container {c0} ({ips[c0]}), {pair.HOSTS[1]} "
                   f"({pair.UNDERLAY[1]}) with container {c1} ({ips[c1]}), on the overlay "
                   f"{swarm.NETWORK}; dockerd and sshd on each host")
        typer.echo(f"try: ip netns exec {pair.HOSTS[0]} env DOCKER_HOST="
                   f"{swarm.socket_of(pair.STATE_DIR, 0)} netdoctor trace {c0} {ips[c1]} "
                   f"--peer auto --ssh-config {pair.SSH_CONFIG}")
        return
    typer.echo(f"two-host lab is up ({network}): {pair.HOSTS[0]} ({pair.UNDERLAY[0]}) with pod "
               f"{pair.PODS[0]} ({pair.pod_ip(0)}), {pair.HOSTS[1]} ({pair.UNDERLAY[1]}) with "
               f"pod {pair.PODS[1]} ({pair.pod_ip(1)}); sshd on each host")
    typer.echo(f"try: ip netns exec {pair.HOSTS[0]} netdoctor trace netns:{pair.PODS[0]} "
               f"{pair.pod_ip(1)} --peer auto --ssh-config {pair.SSH_CONFIG}")


def down() -> None:
    """Remove everything the lab created (both labs)."""
    from ..lab import control, pair

    removed = (pair.down() if pair.present() or pair.read_state() else []) + control.down()
    if not removed:
        typer.echo("no lab to remove")
        return
    typer.echo(f"lab removed ({len(removed)} objects)")


def status(fmt: str = typer.Option("text", "--format", "-f", help="text or json.")) -> None:
    """Say whether the labs are up, their services, and the faults injected. Exit 7 when
    neither is up."""
    from ..lab import control, pair

    check_format(fmt, ("text", "json"))
    st = control.status()
    two = pair.status()
    if two["up"] or pair.present():
        st["two_hosts"] = two
    if fmt == "json":
        typer.echo(json.dumps(st, indent=2))
    else:
        if st["up"]:
            typer.echo("lab: up")
        elif st["residue"]:
            typer.echo("lab: down, but residue is present (run `netdoctor lab down`)")
        else:
            typer.echo("lab: down")
        for ns, present in st["namespaces"].items():
            typer.echo(f"  netns {ns}: {'present' if present else 'absent'}")
        for name, svc in st["services"].items():
            state = "running" if svc["running"] else "stopped"
            typer.echo(f"  {name} {svc['address']}: {state}")
        faults = st["faults"]
        typer.echo("  faults: " + (", ".join(
            f["fault"] + (f" ({f['container']})" if f.get("container") else "") for f in faults)
            if faults else "none"))
        if "two_hosts" in st:
            typer.echo(f"two-host lab: {'up' if two['up'] else 'down, residue present'}"
                       + (f", network {two['network']}" if two["network"] else ""))
            for h, d in two["hosts"].items():
                what = (f"container {d['container']} {d['container_address']}, dockerd "
                        f"{'running' if d['dockerd'] else 'stopped'} ({d['docker_host']})"
                        if "container" in d else f"pod {d['pod']} {d['pod_address']}")
                typer.echo(f"  host {h} {d['underlay']}: {what}, "
                           f"sshd {'running' if d['sshd'] else 'stopped'}")
            if two["ssh_config"]:
                typer.echo(f"  ssh config: {two['ssh_config']}")
            typer.echo("  faults: " + (", ".join(f"{f['fault']} ({f['host']})"
                                                  for f in two["faults"]) or "none"))
    raise typer.Exit(ExitStatus.OK if st["up"] or two["up"] else ExitStatus.LAB_STATE)


def break_(
    fault: Optional[str] = typer.Argument(None, help="The fault to inject (see --list)."),
    container: str = typer.Option("test", "--container", "-c",
                                  help="The lab container a per-container fault hits."),
    host: int = typer.Option(0, "--host",
                             help="The host of the two-host lab a fault hits: 0 (the near "
                                  "host) or 1 (the far one)."),
    list_: bool = typer.Option(False, "--list", help="List the faults and exit."),
) -> None:
    """Inject a fault into the lab (undo with `netdoctor lab heal`)."""
    from ..lab import faults, pair

    if list_ or fault is None:
        for f in faults.FAULTS.values():
            only = "" if len(f.shapes) == 3 else f" [{', '.join(f.shapes)}]"
            typer.echo(f"{f.name:<18} {f.summary}{only}")
        for name, (summary, networks, _) in pair.FAULTS.items():
            typer.echo(f"{name:<18} {summary} [--hosts 2: {', '.join(networks)}]")
        if fault is None and not list_:
            raise typer.Exit(ExitStatus.USAGE)
        return
    if fault in pair.FAULTS:
        if not pair.is_up():
            raise LabStateError("the two-host lab is not up: run `netdoctor lab up --hosts 2`")
        if host not in (0, 1):
            raise UsageError("--host must be 0 or 1")
        summary = pair.break_(fault, host)
        typer.echo(f"injected {fault} on {pair.HOSTS[host]}: {summary}")
        return
    faults.inject(fault, container)
    hit = f" for container {container}" if faults.FAULTS[fault].per_container else ""
    typer.echo(f"injected {fault}{hit}: {faults.FAULTS[fault].summary}")


def heal() -> None:
    """Undo every fault: put the lab back in its healthy configuration."""
    from ..lab import control, pair

    healed = []
    if control.is_up() or not pair.is_up():
        control.heal()
        healed.append("lab")
    if pair.is_up():
        pair.heal()
        healed.append("two-host lab")
    typer.echo(" and ".join(healed) + " healed")


for _name, _command in (("up", up), ("down", down), ("status", status), ("break", break_),
                        ("heal", heal)):
    app.command(_name)(_command)
