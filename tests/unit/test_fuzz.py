"""Every parser of text from outside netdoctor, fuzzed: whatever it is given, the only
exception that may come out is netdoctor's ParseError (which the CLI turns into a one-line
error), and nothing may hang (hypothesis' deadline). Inputs are both arbitrary and real
recorded output from the lab, mutated."""

import json
import os
import struct
from datetime import timedelta

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from netdoctor.capture import sockets, tracefs  # noqa: E402
from netdoctor.diagnose.host import resolver
from netdoctor.diagnose.parse import dns_wire
from netdoctor.diagnose.parse import resolv_conf
from netdoctor.diagnose.facts.ruleset import Ruleset
from netdoctor.diagnose.parse import iptables_save
from netdoctor.diagnose.parse import nft_json
from netdoctor.diagnose.reason import rules# noqa: E402
from netdoctor.diagnose.facts import snapshot# noqa: E402
from netdoctor.diagnose.parse import iproute
from netdoctor.diagnose.host import privileges
from netdoctor.capture import runs
from netdoctor.diagnose.errors import ParseError  # noqa: E402
from netdoctor.diagnose.targets import containerd, engine_api
from netdoctor.diagnose.targets import podman  # noqa: E402

import recorded  # noqa: E402

FUZZ = settings(max_examples=int(os.environ.get("NETDOCTOR_FUZZ_EXAMPLES", "300")),
                deadline=timedelta(seconds=2),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def data(name: str) -> str:
    return recorded.text(name)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=6),
    max_leaves=40)


def mutate_json(doc, draw):
    """Replace one random node of a real JSON document with a random value."""
    nodes = []

    def walk(node, parent, key):
        nodes.append((parent, key))
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, node, k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, node, i)

    walk(doc, None, None)
    parent, key = nodes[draw(st.integers(0, len(nodes) - 1))]
    value = draw(json_values)
    if parent is None:
        return value
    parent[key] = value
    return doc


def mutate_lines(text: str, draw) -> str:
    """Real text with lines dropped, duplicated, truncated or given random words."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["drop", "dup", "cut", "word", "swap"]))
        if how == "drop":
            del lines[i]
        elif how == "dup":
            lines.insert(i, lines[i])
        elif how == "cut":
            lines[i] = lines[i][:draw(st.integers(0, max(0, len(lines[i]) - 1)))]
        elif how == "word":
            words = lines[i].split(" ")
            j = draw(st.integers(0, len(words)))
            words.insert(j, draw(st.text(max_size=10)))
            lines[i] = " ".join(words)
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def only_parse_errors(fn, *args):
    try:
        return fn(*args)
    except ParseError:
        return None


# ------------------------------------------------------------------ ip -j

def _parse_batch(text: str):
    docs = iproute.split_documents(text)
    for i, doc in enumerate(docs):
        (iproute.parse_links, iproute.parse_routes, iproute.parse_neighbours)[i % 3](doc)


@FUZZ
@given(st.text(max_size=400))
def test_ip_json_text(text):
    only_parse_errors(_parse_batch, text)


@FUZZ
@given(st.data())
def test_ip_json_mutated(d):
    docs = iproute.split_documents(data("ndlab-host.batch.json"))
    docs[d.draw(st.integers(0, 2))] = mutate_json(docs[d.draw(st.integers(0, 2))], d.draw)
    only_parse_errors(lambda: (iproute.parse_links(docs[0]), iproute.parse_routes(docs[1]),
                               iproute.parse_neighbours(docs[2])))


@FUZZ
@given(json_values)
def test_ip_json_any_document(doc):
    for parse in (iproute.parse_links, iproute.parse_routes, iproute.parse_neighbours):
        only_parse_errors(parse, doc)


@FUZZ
@given(st.text(max_size=300), st.text(max_size=200))
def test_ip_route_get(stdout, stderr):
    only_parse_errors(iproute.parse_route_get, stdout, stderr, "203.0.113.80", "q")


@FUZZ
@given(st.binary(max_size=200))
def test_rtnetlink_route_answer(raw):
    from netdoctor.diagnose.host import rtnetlink

    only_parse_errors(rtnetlink.parse_route_answer, raw, "203.0.113.80", "q", lambda i: f"if{i}")
    nsid = only_parse_errors(rtnetlink.parse_nsid_answer, raw)
    assert nsid is None or nsid >= 0


def nft_table_message(family: int, name: bytes, kind: int = (10 << 8)) -> bytes:
    attr = struct.pack("=HH", 4 + len(name) + 1, 1) + name + b"\0"
    attr += b"\0" * ((4 - len(attr) % 4) % 4)
    body = struct.pack("=BBH", family, 0, 0) + attr
    return struct.pack("=IHHII", 16 + len(body), kind, 2, 1, 0) + body


def test_nft_table_answers_as_the_kernel_sends_them():
    from netdoctor.diagnose.host import nfnetlink

    data = nft_table_message(2, b"filter") + nft_table_message(1, b"fw") + struct.pack(
        "=IHHIIi", 20, 3, 2, 1, 0, 0)
    assert nfnetlink.parse_nft_table_answers(data) == ((("ip", "filter"), ("inet", "fw")), True)
    assert nfnetlink.parse_nft_table_answers(nft_table_message(10, b"nat")) == \
        ((("ip6", "nat"),), False)


@FUZZ
@given(st.data())
def test_nft_table_answers(d):
    from netdoctor.diagnose.host import nfnetlink

    real = nft_table_message(2, b"filter") + nft_table_message(7, b"br")
    raw = d.draw(st.one_of(st.binary(max_size=200), st.builds(
        lambda cut, junk: real[:cut] + junk, st.integers(0, len(real)), st.binary(max_size=8))))
    only_parse_errors(nfnetlink.parse_nft_table_answers, raw)


@FUZZ
@given(st.data())
def test_nft_chain_answers(d):
    import recorded
    from netdoctor.diagnose.host import nfnetlink

    real = bytes.fromhex(next(line for line in recorded.text("nft-chain-dumps.hex").splitlines()
                              if not line.startswith("#")))
    raw = d.draw(st.one_of(st.binary(max_size=200), st.builds(
        lambda cut, junk: real[:cut] + junk, st.integers(0, len(real)), st.binary(max_size=8))))
    only_parse_errors(nfnetlink.parse_nft_chain_answers, raw)


@FUZZ
@given(st.text(max_size=300))
def test_aardvark_network_file_any_text(text):
    from netdoctor.diagnose.parse.aardvark_conf import parse_network_file

    listen, upstreams = parse_network_file(text)
    assert isinstance(listen, tuple) and isinstance(upstreams, tuple)
    assert listen or not upstreams


# ------------------------------------------------------------------ netfilter

@FUZZ
@given(st.text(max_size=400))
def test_iptables_save_any_text(text):
    only_parse_errors(iptables_save.parse_iptables_save, text)


@FUZZ
@given(st.data())
def test_iptables_save_mutated(d):
    text = mutate_lines(data("docker-iptables-save-c.txt"), d.draw)
    only_parse_errors(iptables_save.parse_iptables_save, text)


NFT_PARSERS = pytest.mark.parametrize("parse", [nft_json.parse_nft_json,
                                                 nft_json.parse_nft_tables])


@NFT_PARSERS
@FUZZ
@given(json_values)
def test_nft_json_any_document(parse, doc):
    only_parse_errors(parse, doc)


@NFT_PARSERS
@FUZZ
@given(st.data())
def test_nft_json_mutated(parse, d):
    name = d.draw(st.sampled_from(["docker-nft.json", "docker-plus-native-nft.json"]))
    doc = mutate_json(json.loads(data(name)), d.draw)
    only_parse_errors(parse, doc)


@FUZZ
@given(st.data())
def test_rulesets_from_mutated_text_can_be_walked(d):
    """A ruleset that parsed is one the packet walk can use: no crash on evaluate."""
    chains = only_parse_errors(iptables_save.parse_iptables_save,
                               mutate_lines(data("docker-iptables-save-c.txt"), d.draw))
    if chains is None:
        return
    ruleset = Ruleset(chains)
    p = rules.Packet("172.17.0.2", "203.0.113.80", iif="docker0", oif="eth0")
    for hook, type_ in (("forward", "filter"), ("postrouting", "nat")):
        rules.evaluate(ruleset, hook, p, type_)


# ------------------------------------------------------------------ DNS

@FUZZ
@given(st.text(max_size=400))
def test_resolv_conf_never_fails(text):
    conf = resolv_conf.parse_resolv_conf(text)  # garbage lines are ignored and listed, not fatal
    assert len(conf.nameservers) <= 3
    for server in conf.nameservers:
        assert dns_wire.is_address(server)


@FUZZ
@given(st.text(max_size=400), st.text(max_size=30))
def test_hosts_file_never_fails(text, name):
    # Garbage lines are skipped; whatever a name is given is an address.
    from netdoctor.diagnose.parse import hosts_file

    entries = hosts_file.parse_hosts(text)
    for address in hosts_file.addresses_of(entries, name):
        assert dns_wire.is_address(address.split("%", 1)[0])


@FUZZ
@given(st.binary(max_size=64))
def test_resolv_conf_garbage_bytes_from_a_file(tmp_path_factory, raw):
    # Bytes that are not UTF-8 read as replacement characters: the file gives what its
    # text gives, and garbage never becomes a nameserver.
    path = tmp_path_factory.mktemp("resolv") / "resolv.conf"
    path.write_bytes(raw)
    conf = resolver.read_resolv_conf(str(path))
    assert conf == resolv_conf.parse_resolv_conf(raw.decode("utf-8", errors="replace"))
    assert all(dns_wire.is_address(server) for server in conf.nameservers)


@FUZZ
@given(st.binary(max_size=300))
def test_dns_answer_any_bytes(raw):
    only_parse_errors(dns_wire.parse_response, raw)


@FUZZ
@given(st.data())
def test_dns_answer_mutated(d):
    """A real-looking answer with bytes flipped or cut."""
    query = bytearray(dns_wire.encode_query("www.baidu.com", txid=7)[1])
    answer = bytearray(query)
    answer[2] |= 0x80
    answer[7] = 1  # one answer
    answer += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xcb\x00\x71\x50"
    for _ in range(d.draw(st.integers(1, 4))):
        i = d.draw(st.integers(0, len(answer) - 1))
        answer[i] = d.draw(st.integers(0, 255))
    answer = answer[:d.draw(st.integers(0, len(answer)))]
    only_parse_errors(dns_wire.parse_response, bytes(answer))


# ------------------------------------------------------------------ kernel and /proc

@FUZZ
@given(st.data())
def test_tracefs_trace_text(d):
    real = ("  <idle>-0  [001] ..s1.  123.456789: kfree_skb: skbaddr=0000000012345678 "
            "protocol=2048 location=ip_error+0x94/0x220 reason: IP_INADDRERRORS\n"
            "  ping-42  [000] .....  123.456700: net_dev_queue: dev=eth0 "
            "skbaddr=0000000012345678 len=103\n")
    text = d.draw(st.one_of(st.text(max_size=300), st.just(real).map(
        lambda t: mutate_lines(t, d.draw))))
    for ev in tracefs.parse_trace(text) + tracefs.parse_trace(text, seen_only=True):
        assert ev.event in tracefs.SKB_EVENTS


@FUZZ
@given(st.binary(max_size=120), st.booleans())
def test_captured_frames(raw, outgoing):
    # Arbitrary bytes: decoded only as far as they are long enough to hold what is read.
    frame = sockets.parse_frame(raw, 1, outgoing)
    assert frame.outgoing == outgoing
    if len(raw) < 14:
        assert frame.proto is None and frame.ethertype == 0
        return
    assert frame.ethertype == int.from_bytes(raw[12:14], "big")
    if frame.proto == "arp":
        assert frame.ethertype == 0x0806 and len(raw) >= 42
    elif frame.proto is not None:
        assert frame.ethertype == 0x0800 and len(raw) >= 34
        assert frame.src == ".".join(str(b) for b in raw[26:30])
    else:
        assert frame.ethertype not in (0x0800, 0x0806) or len(raw) < 42


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


addresses = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: bytes(t))


@FUZZ
@given(addresses, addresses, st.sampled_from([1, 6, 17]), st.integers(0, 65535),
       st.integers(0, 65535), st.sampled_from([0, 8, 3]), st.integers(0, 2**32 - 1))
def test_frames_built_field_by_field_decode_to_those_fields(src, dst, proto, a, b, itype,
                                                            cookie):
    # An Ethernet/IPv4 frame laid out by RFC 791/792/793/768, independently of the parser.
    if proto == 1 and itype == 3:  # an error quotes the offending IP header (+ 8 bytes)
        l4 = struct.pack("!BBHHH", itype, 0, 0, a, b) + struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, dst, src) + bytes(8)
    elif proto == 1:  # an echo: identifier, sequence, then the payload (netdoctor's cookie)
        l4 = struct.pack("!BBHHHI", itype, 0, 0, a, b, cookie)
    else:
        l4 = struct.pack("!HH", a, b) + bytes(16 if proto == 6 else 4)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    raw = bytes(6) + bytes(range(6)) + b"\x08\x00" + ip + l4
    f = sockets.parse_frame(raw, 5, False)
    dotted = [".".join(str(x) for x in v) for v in (src, dst)]
    assert (f.src, f.dst, f.length) == (dotted[0], dotted[1], 20 + len(l4))
    if proto == 1:
        assert (f.proto, f.icmp_type, f.icmp_id) == ("icmp", itype, a)
        assert f.cookie == (cookie if itype in (0, 8) else None)
        assert f.inner == ((dotted[1], dotted[0], 17) if itype == 3 else None)
    else:
        assert (f.proto, f.sport, f.dport) == ("tcp" if proto == 6 else "udp", a, b)


@FUZZ
@given(st.text(max_size=300))
def test_proc_stat_start_time(text):
    start = runs.parse_stat_start(text)
    assert start is None or isinstance(start, int)


@FUZZ
@given(st.text(max_size=400))
def test_proc_mountinfo(text):
    for mp in runs.parse_tracefs_mounts(text):
        assert isinstance(mp, str)


@FUZZ
@given(st.text(max_size=300))
def test_proc_status_capabilities(text):
    assert isinstance(privileges.parse_capeff(text), int)


# ------------------------------------------------------------------ runtimes

@FUZZ
@given(json_values)
def test_engine_api_listing_entries(item):
    for runtime in ("docker", "podman"):
        record = only_parse_errors(engine_api.record_from_listing, runtime, item)
        if record is not None:
            assert isinstance(record.name, str) and isinstance(record.id, str)
            assert all(isinstance(a, str) and a for a in record.addresses), record
    only_parse_errors(podman.record_from_cli, item)


def test_a_listing_entry_gives_the_addresses_of_its_networks():
    """Docker's /containers/json names each network's addresses: what finds the container
    a trace was given only the address of."""
    item = {"Id": "ab" * 32, "Names": ["/ew3"], "State": "running", "NetworkSettings": {
        "Networks": {"ndt-b": {"IPAddress": "172.31.9.2", "GlobalIPv6Address": "fd00:9::2"},
                     "none": {"IPAddress": "", "GlobalIPv6Address": ""}}}}
    record = engine_api.record_from_listing("docker", item)
    assert record.addresses == ("172.31.9.2", "fd00:9::2")
    assert engine_api.record_from_listing("docker", dict(item, NetworkSettings=7)).addresses == ()


@FUZZ
@given(json_values)
def test_engine_api_inspect_answers(doc):
    pid = only_parse_errors(engine_api.pid_from_inspect, doc)
    assert pid is None or (isinstance(pid, int) and pid > 0)


@FUZZ
@given(st.text(max_size=300))
def test_ctr_task_table(text):
    for rec in containerd.parse_task_table(text, "moby"):
        assert rec.pid is None or rec.pid > 0


@FUZZ
@given(json_values)
def test_crictl_answers(doc):
    only_parse_errors(containerd.records_from_crictl, doc)
    pid = only_parse_errors(containerd.pid_from_crictl_inspect, doc)
    assert pid is None or (isinstance(pid, int) and pid > 0)


# ------------------------------------------------------------------ saved snapshots

@FUZZ
@given(json_values)
def test_snapshot_any_document(doc):
    only_parse_errors(snapshot.Snapshot.from_dict, doc)


def test_a_counter_of_infinity_is_a_malformed_nft_document():
    # Found by the fuzz: json reads 1e999 as inf, and int(inf) raised OverflowError out of
    # the parser instead of its one error.
    from netdoctor.diagnose.errors import ParseError
    from netdoctor.diagnose.parse.nft_json import parse_nft_json

    doc = json.loads(data("docker-nft.json"))
    rule = next(i["rule"] for i in doc["nftables"] if "rule" in i
                and any("counter" in e for e in i["rule"].get("expr", ())))
    next(e for e in rule["expr"] if "counter" in e)["counter"]["packets"] = float("inf")
    with pytest.raises(ParseError, match="malformed"):
        parse_nft_json(doc)


@FUZZ
@given(st.data())
def test_snapshot_mutated_then_judged(d):
    """A saved snapshot edited by hand: it loads (or ParseError) and the checks judge it
    without a crash escaping (a crashing check becomes an internal-error finding)."""
    from netdoctor.checks import run_checks

    doc = mutate_json(json.loads(data("lab-checks-snapshot.json")), d.draw)
    snap = only_parse_errors(snapshot.Snapshot.from_dict, doc)
    if snap is not None:
        # A snapshot that loading accepts is one the checks can read: a crash of a check
        # here means the validation let through what the checks cannot handle.
        crashed = [f.message for f in run_checks(snap) if f.id == "internal-error"]
        assert not crashed, crashed


# ------------------------------------------------------------------ nft -a monitor (trace)

TRACE_LINE = st.builds(
    lambda head, rest: f"trace id {head} {rest}",
    st.from_regex(r"[0-9a-f]{1,8}", fullmatch=True),
    st.one_of(st.text(max_size=120),
              st.sampled_from(["ip filter FORWARD policy drop", "inet t c verdict return",
                               "ip filter FORWARD rule x # handle z (verdict drop)",
                               "ip filter FORWARD unknown rule handle 7 (verdict",
                               'ip f c packet: iif "a tcp sport x ip saddr']).map(
                                   lambda s: s + "\n")))


@FUZZ
@given(st.lists(st.one_of(TRACE_LINE, st.text(max_size=80)), max_size=12))
def test_nft_trace_lines(lines):
    from netdoctor.diagnose.parse.nft_trace import parse_trace

    for p in only_parse_errors(parse_trace, lines) or ():
        assert all(s.kind in ("rule", "policy", "verdict") for s in p.steps)


# ------------------------------------------------------------------ flannel, ethtool, snmp

@FUZZ
@given(st.text(max_size=300))
def test_small_kernel_and_intent_files(text):
    from netdoctor.diagnose.parse.flannel_env import parse_subnet_env
    from netdoctor.diagnose.parse.kernel_stats import parse_features, parse_snmp

    only_parse_errors(parse_subnet_env, text)
    only_parse_errors(parse_snmp, text)
    assert all(v in ("on", "off") for v in parse_features(text).values())


def test_the_real_formats_parse():
    from netdoctor.diagnose.parse.flannel_env import parse_subnet_env
    from netdoctor.diagnose.parse.kernel_stats import parse_features, parse_snmp

    env = parse_subnet_env("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.0.1/24\n"
                           "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
    assert env == {"network": "10.244.0.0/16", "subnet": "10.244.0.1/24", "mtu": 1450,
                   "ipmasq": True}
    assert parse_features("Features for flannel.1:\ntx-checksumming: on\n"
                          "\ttx-checksum-ip-generic: on\n\ttx-checksum-ipv4: off [fixed]\n") == {
        "tx-checksumming": "on", "tx-checksum-ip-generic": "on", "tx-checksum-ipv4": "off"}
    snmp = parse_snmp("Udp: InDatagrams InCsumErrors\nUdp: 5 2\nTcp: A\nTcp: 1\n")
    assert snmp["Udp"]["InCsumErrors"] == 2 and snmp["Tcp"] == {"A": 1}


class _DumpSocket:
    """A NETLINK_ROUTE socket that answers every dump with the given message bodies (each
    typed as the dump's answer), then NLMSG_DONE."""
    ANSWER = {18: 16, 22: 20, 26: 24, 30: 28, 82: 80}

    def __init__(self, bodies):
        self.bodies, self.pending = bodies, []

    def getsockname(self):
        return (4242, 0)

    def send(self, data):
        length, kind, _, seq, _ = struct.unpack_from("=IHHII", data)
        msgs = [struct.pack("=IHHII", 16 + len(b), self.ANSWER[kind], 2, seq, 4242) + b
                for b in self.bodies]
        self.pending.append(b"".join(m + b"\0" * (-len(m) % 4) for m in msgs)
                            + struct.pack("=IHHII", 20, 3, 2, seq, 4242) + b"\0" * 4)

    def recv(self, n):
        return self.pending.pop(0)


@FUZZ
@given(st.lists(st.binary(max_size=120), max_size=4))
def test_rtnetlink_dumps(bodies):
    from netdoctor.diagnose.host import rtdump

    try:
        links, routes, neighbours, fdb, sysctls = rtdump.read_from(_DumpSocket(bodies))
    except ParseError:
        return
    assert all(isinstance(v, str) for v in sysctls.values())


@FUZZ
@given(st.text(max_size=400))
def test_bird_and_flannel_files(text):
    from netdoctor.diagnose.parse import bird_conf, flannel_env

    only_parse_errors(bird_conf.parse_bird_config, [text])
    bird_conf.includes(text)
    only_parse_errors(flannel_env.parse_subnet_env, text)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("0123456789 -:\nBGPstateNeighboraddressLa")),
               max_size=400) | st.text(max_size=300))
def test_bird_control_replies(text):
    from netdoctor.diagnose.parse import bird_ctl

    bird_ctl.reply_complete(text)
    only_parse_errors(bird_ctl.parse_protocols, text)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(
                         ["Name", "Driver", "Peers", "IP", "Services", "Tasks", "EndpointIP",
                          "Info", "Host IP", "Containers", "IPv4Address", "Options", "x"]),
                         inner, max_size=4), max_leaves=12)


@FUZZ
@given(_JSON, st.sampled_from(["overlay", "bridge", None]))
def test_docker_overlay_network_documents(doc, driver):
    from netdoctor.diagnose.parse import docker_network

    if isinstance(doc, dict):
        doc = dict(doc, Name="n", Driver=driver)
    only_parse_errors(docker_network.parse_overlay_network, doc)
