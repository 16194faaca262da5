#!/usr/bin/env python3
"""Check a lab capture with tshark against what the usrsctp peers reported.

Used by selftest.sh. Reads the merged capture of ns sctpmon-a's two veths and
the JSON Lines of sctp_peer (client in ns a, server in ns b); checks the
handshake address parameters, HEARTBEATs and DATA on both paths and the
failover; prints timings; optionally writes a fixture (pcap + .expect.json).
Standard library only.
"""
import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter, defaultdict

CHUNK_NAMES = {
    0: "DATA", 1: "INIT", 2: "INIT_ACK", 3: "SACK", 4: "HEARTBEAT", 5: "HEARTBEAT_ACK",
    6: "ABORT", 7: "SHUTDOWN", 8: "SHUTDOWN_ACK", 9: "ERROR", 10: "COOKIE_ECHO",
    11: "COOKIE_ACK", 12: "ECNE", 13: "CWR", 14: "SHUTDOWN_COMPLETE", 15: "AUTH",
    64: "I_DATA", 128: "ASCONF_ACK", 130: "RE_CONFIG", 132: "PAD", 192: "FORWARD_TSN",
    193: "ASCONF", 194: "I_FORWARD_TSN",
}

FIELDS = [
    "frame.number", "frame.time_epoch", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport", "sctp.verification_tag",
    "sctp.chunk_type", "sctp.data_tsn_raw", "sctp.parameter_type", "sctp.init_initiate_tag",
    "sctp.initack_initiate_tag", "sctp.parameter_ipv4_address", "sctp.parameter_ipv6_address",
    "sctp.checksum.status",
]


def path_of(addr):
    """Lab path number of an address (10.201.N.x / fd00:201:N::x)."""
    if addr.startswith("10.201."):
        return int(addr.split(".")[2])
    if addr.startswith("fd00:201:"):
        return int(addr.split(":")[2])
    return None


def ints(field):
    return [int(x, 0) for x in field.split(",") if x != ""] if field else []


def read_packets(pcap, udp_port):
    cmd = ["tshark", "-r", pcap, "-n", "-o", "sctp.relative_tsns:FALSE",  # raw TSNs are in sctp.data_tsn_raw either way
           "-o", "sctp.checksum:crc-32c",
           "-d", f"udp.port=={udp_port},sctp", "-Y", "sctp", "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    pkts = []
    for line in out.splitlines():
        v = dict(zip(FIELDS, line.split("\t")))
        src = v["ip.src"] or v["ipv6.src"]
        dst = v["ip.dst"] or v["ipv6.dst"]
        # ICMP errors quote an inner header: keep only plain SCTP packets
        if "," in src or "," in dst:
            continue
        pkts.append({
            "no": int(v["frame.number"]),
            "ts": float(v["frame.time_epoch"]),
            "src": src, "dst": dst,
            "udp": bool(v["udp.srcport"]),
            "sport": int(v["sctp.srcport"].split(",")[0]),
            "dport": int(v["sctp.dstport"].split(",")[0]),
            "vtag": int(v["sctp.verification_tag"].split(",")[0], 0),
            "chunks": ints(v["sctp.chunk_type"]),
            "tsns": ints(v["sctp.data_tsn_raw"]),
            "params": ints(v["sctp.parameter_type"]),
            "init_tag": ints(v["sctp.init_initiate_tag"]),
            "initack_tag": ints(v["sctp.initack_initiate_tag"]),
            "v4": [a for a in v["sctp.parameter_ipv4_address"].split(",") if a],
            "v6": [a for a in v["sctp.parameter_ipv6_address"].split(",") if a],
            "csum": v["sctp.checksum.status"],
        })
    return pkts


def load_jsonl(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def stack_view(lines):
    """What the stack said: up line, notifications, assoc changes, exit."""
    up = next((l for l in lines if l["ev"] == "up"), None)
    start = next((l for l in lines if l["ev"] == "start"), None)
    notes = [{"ts": l["ts"], "addr": l["addr"], "state": l["state"]}
             for l in lines if l["ev"] == "peer_addr_change"]
    assoc = [{"ts": l["ts"], "state": l["state"]} for l in lines if l["ev"] == "assoc_change"]
    other = [{"ts": l["ts"], "ev": l["ev"]} for l in lines
             if l["ev"] in ("shutdown_event", "remote_error", "send_failed", "primary")]
    ex = next((l for l in lines if l["ev"] == "exit"), None)
    stats = [l for l in lines if l["ev"] == "stats"]
    return {
        "port": up["port"] if up else None,
        "bind": start["bind"] if start else None,
        "laddrs": up["laddrs"] if up else None,
        "paddrs": up["paddrs"] if up else None,
        "primary": up["primary"] if up else None,
        "up_ts": up["ts"] if up else None,
        "assoc_changes": assoc,
        "peer_addr_changes": notes,
        "other_events": other,
        "messages_sent": ex["sent"] if ex else None,
        "messages_received": ex["recv"] if ex else None,
        "shutdown_complete": ex["shutdown_complete"] if ex else None,
        "exit_code": ex["code"] if ex else None,
        "final_paths": stats[-1]["paths"] if stats else None,
    }


def data_events(pkts, src_addrs):
    """DATA chunks sent by the endpoint owning src_addrs, in time order:
    (ts, src, dst, tsn, new) with new = TSN above every earlier TSN."""
    ev = []
    highest = None
    for p in pkts:
        if p["src"] not in src_addrs:
            continue
        for tsn in p["tsns"]:
            diff = None if highest is None else (tsn - highest) & 0xFFFFFFFF
            new = highest is None or 0 < diff < 0x80000000  # serial arithmetic
            if new:
                highest = tsn
            ev.append((p["ts"], p["src"], p["dst"], tsn, new))
    return ev


def failover_analysis(ev, cut_path, t_cut, t_restore):
    """From the DATA events of one direction: last new DATA on the cut path,
    first retransmission and first new DATA on another path after the cut,
    first new DATA back on the cut path after the restore."""
    r = {}
    before = [e for e in ev if e[0] < t_cut and e[4]]
    if before:
        e = before[-1]
        r["primary_before_cut"] = {"src": e[1], "dst": e[2]}
    after = [e for e in ev if e[0] >= t_cut]
    old = [e for e in after if path_of(e[2]) == cut_path and e[0] < t_restore]
    if old:
        r["last_data_on_old_path_ts"] = old[-1][0]
        r["data_chunks_on_old_path_after_cut"] = len(old)
    rtx = next((e for e in after if path_of(e[2]) != cut_path and not e[4]), None)
    if rtx:
        r["first_retransmission_on_alternate"] = {"ts": rtx[0], "src": rtx[1], "dst": rtx[2], "tsn": rtx[3]}
    fo = next((e for e in after if path_of(e[2]) != cut_path and e[4] and e[0] < t_restore), None)
    if fo:
        r["failover"] = {"ts": fo[0], "tsn": fo[3],
                         "from": r.get("primary_before_cut"),
                         "to": {"src": fo[1], "dst": fo[2]}}
    back = next((e for e in ev if e[0] >= t_restore and e[4] and path_of(e[2]) == cut_path), None)
    if back:
        r["back_on_restored_path"] = {"ts": back[0], "tsn": back[3], "src": back[1], "dst": back[2]}
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True)
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--cut-path", type=int, required=True)
    ap.add_argument("--t-cut", type=float, required=True)
    ap.add_argument("--t-restore", type=float, required=True)
    ap.add_argument("--src-fix", type=int, default=1)
    ap.add_argument("--udp-port", type=int, default=9899)
    ap.add_argument("--server-cut", type=int, default=1,
                    help="0 if the server's primary was not on the cut path")
    ap.add_argument("--summary")
    ap.add_argument("--pcapng", help="the same capture as one pcapng (two interfaces), copied to FIXTURE.pcapng")
    ap.add_argument("--fixture", help="write FIXTURE.pcap and FIXTURE.expect.json")
    a = ap.parse_args()

    pkts = read_packets(a.pcap, a.udp_port)
    cl = load_jsonl(a.client)
    sv = load_jsonl(a.server)
    client, server = stack_view(cl), stack_view(sv)
    failures = []

    def check(cond, msg):
        print(("  ok   " if cond else "  FAIL ") + msg)
        if not cond:
            failures.append(msg)

    print(f"analyze: {len(pkts)} SCTP packets in {a.pcap}")
    # -- stack view
    check(client["laddrs"] is not None and len(client["laddrs"]) >= 2,
          f"client getladdrs has >= 2 addresses: {client['laddrs']}")
    check(client["paddrs"] is not None and len(client["paddrs"]) >= 2,
          f"client getpaddrs has >= 2 addresses: {client['paddrs']}")
    check(server["paddrs"] is not None and sorted(server["paddrs"]) == sorted(client["laddrs"] or []),
          "server's peer addresses == client's local addresses")
    check(client["paddrs"] is not None and sorted(client["paddrs"]) == sorted(server["laddrs"] or []),
          "client's peer addresses == server's local addresses")

    # -- handshake
    inits = [p for p in pkts if 1 in p["chunks"]]
    initacks = [p for p in pkts if 2 in p["chunks"]]
    check(len(inits) >= 1 and len(initacks) >= 1, f"INIT ({len(inits)}) and INIT-ACK ({len(initacks)}) captured")
    n_init_addr = sum(1 for t in inits[0]["params"] if t in (5, 6)) if inits else 0
    n_ack_addr = sum(1 for t in initacks[0]["params"] if t in (5, 6)) if initacks else 0
    check(n_init_addr >= 2, f"INIT carries {n_init_addr} address parameters: {(inits[0]['v4'] + inits[0]['v6']) if inits else []}")
    check(n_ack_addr >= 2, f"INIT-ACK carries {n_ack_addr} address parameters: {(initacks[0]['v4'] + initacks[0]['v6']) if initacks else []}")
    init_set = sorted(set((inits[0]["v4"] + inits[0]["v6"] + [inits[0]["src"]]))) if inits else []
    ack_set = sorted(set((initacks[0]["v4"] + initacks[0]["v6"] + [initacks[0]["src"]]))) if initacks else []
    check(init_set == sorted(client["laddrs"] or []),
          f"INIT address set (params + source) {init_set} == client getladdrs")
    check(ack_set == sorted(server["laddrs"] or []),
          f"INIT-ACK address set (params + source) {ack_set} == server getladdrs")
    client_tag = inits[0]["init_tag"][0] if inits and inits[0]["init_tag"] else None
    server_tag = initacks[0]["initack_tag"][0] if initacks and initacks[0]["initack_tag"] else None

    # -- per path chunk presence
    per_path = defaultdict(Counter)
    for p in pkts:
        pa = path_of(p["dst"])
        for c in p["chunks"]:
            per_path[pa][CHUNK_NAMES.get(c, str(c))] += 1
    for pa in (1, 2):
        if a.src_fix:
            check(per_path[pa]["HEARTBEAT"] > 0 and per_path[pa]["HEARTBEAT_ACK"] > 0,
                  f"path {pa}: HEARTBEAT {per_path[pa]['HEARTBEAT']} / HEARTBEAT_ACK {per_path[pa]['HEARTBEAT_ACK']}")
        else:
            # HEARTBEAT-ACK goes to the HEARTBEAT's source address, which
            # without the rewrite can be on the other path
            check(per_path[pa]["HEARTBEAT"] > 0,
                  f"path {pa}: HEARTBEAT {per_path[pa]['HEARTBEAT']} (HEARTBEAT_ACK {per_path[pa]['HEARTBEAT_ACK']})")
        check(per_path[pa]["DATA"] > 0, f"path {pa}: DATA chunks {per_path[pa]['DATA']}")

    # -- source addresses vs interface
    mism = [p for p in pkts if path_of(p["src"]) != path_of(p["dst"])]
    if a.src_fix:
        check(not mism, f"every packet's source is on its path's subnet ({len(mism)} mismatched)")
    else:
        print(f"  info {len(mism)} packets carry a source address of the other path (no source rewrite)")
    bad_csum = [p for p in pkts if p["csum"].split(",")[0] != "1"]  # 1 = good
    check(not bad_csum, f"SCTP CRC32c verified by tshark on all packets ({len(bad_csum)} bad)")

    # -- shutdown
    counts = Counter()
    for p in pkts:
        for c in p["chunks"]:
            counts[CHUNK_NAMES.get(c, str(c))] += 1
    check(counts["SHUTDOWN"] >= 1 and counts["SHUTDOWN_ACK"] >= 1 and counts["SHUTDOWN_COMPLETE"] >= 1,
          "graceful SHUTDOWN / SHUTDOWN-ACK / SHUTDOWN-COMPLETE captured")
    check(counts["ABORT"] == 0, "no ABORT")

    # -- failover, both directions
    c_addrs = set(client["laddrs"] or [])
    s_addrs = set(server["laddrs"] or [])
    fo_c = failover_analysis(data_events(pkts, c_addrs), a.cut_path, a.t_cut, a.t_restore)
    fo_s = failover_analysis(data_events(pkts, s_addrs), a.cut_path, a.t_cut, a.t_restore)
    if not a.server_cut:
        # its primary was on the surviving path: DATA there is not a failover
        fo_s.pop("failover", None)
        fo_s["note"] = "server primary was not on the cut path (INIT arrived with the other path's source address)"
    check("failover" in fo_c, "client->server: new DATA moved to the other path after the cut")
    if a.server_cut:
        check("failover" in fo_s, "server->client: new DATA moved to the other path after the cut")
    else:
        print(f"  info server->client: primary {server['primary']} was not on the cut path: no failover expected")
    check("back_on_restored_path" in fo_c, "client->server: new DATA back on the restored path")

    def first(lines_view, state, addr, after):
        return next((n["ts"] for n in lines_view["peer_addr_changes"]
                     if n["state"] == state and n["addr"] == addr and n["ts"] >= after), None)

    timings = {}
    cu = first(client, "ADDR_UNREACHABLE", client["primary"], a.t_cut)
    su = first(server, "ADDR_UNREACHABLE", server["primary"], a.t_cut)
    ca = first(client, "ADDR_AVAILABLE", client["primary"], a.t_restore)
    sa = first(server, "ADDR_AVAILABLE", server["primary"], a.t_restore)

    def d(x, base):
        return round(x - base, 4) if x is not None else None
    timings["client_addr_unreachable_after_cut_s"] = d(cu, a.t_cut)
    timings["server_addr_unreachable_after_cut_s"] = d(su, a.t_cut)
    timings["client_first_rtx_on_alternate_after_cut_s"] = d(fo_c.get("first_retransmission_on_alternate", {}).get("ts"), a.t_cut)
    timings["client_failover_new_data_after_cut_s"] = d(fo_c.get("failover", {}).get("ts"), a.t_cut)
    timings["server_failover_new_data_after_cut_s"] = d(fo_s.get("failover", {}).get("ts"), a.t_cut)
    timings["client_addr_available_after_restore_s"] = d(ca, a.t_restore)
    timings["server_addr_available_after_restore_s"] = d(sa, a.t_restore)
    timings["client_data_back_on_primary_after_restore_s"] = d(fo_c.get("back_on_restored_path", {}).get("ts"), a.t_restore)
    print("analyze: timings (seconds)")
    for k, v in timings.items():
        print(f"  {k:50s} {v}")

    summary = {
        "mode": a.mode, "failures": failures, "timings": timings,
        "chunk_counts": dict(counts), "per_path": {str(k): dict(v) for k, v in per_path.items()},
        "failover_client_to_server": fo_c, "failover_server_to_client": fo_s,
    }
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(summary, f, indent=2)

    if a.fixture and not failures:
        shutil.copyfile(a.pcap, a.fixture + ".pcap")
        if a.pcapng:
            shutil.copyfile(a.pcapng, a.fixture + ".pcapng")
        start = next(l for l in cl if l["ev"] == "start")
        transport = "sctp-over-udp (RFC 6951)" if a.mode.startswith("udp") else "sctp-over-ip (raw)"
        expect = {
            "description": (
                "usrsctp multihomed association between network namespaces sctpmon-a (client, "
                "initiator) and sctpmon-b (server, responder); captured on both veths of "
                f"sctpmon-a (smA1 = path 1, smA2 = path 2), merged. Path {a.cut_path} (the primary) is "
                f"black-holed by nftables in sctpmon-b at lab.cut_at and restored at lab.restored_at. "
                "'client' and 'server' are what the usrsctp stack itself reported "
                "(usrsctp_getladdrs/getpaddrs after SCTP_COMM_UP, SCTP_PEER_ADDR_CHANGE and "
                "SCTP_ASSOC_CHANGE notifications; ts = CLOCK_REALTIME, the capture's clock). "
                "'wire_tshark' is tshark's reading of the same file, for cross-checks."),
            "generated_by": f"sctp-monitor/tests/peer/selftest.sh --mode {a.mode}"
                            + ("" if a.src_fix else " --no-src-fix"),
            "mode": a.mode,
            "transport": transport,
            "udp_port": a.udp_port if a.mode.startswith("udp") else None,
            "source_address_rewrite": bool(a.src_fix),
            "capture": {
                "file": a.fixture.rsplit("/", 1)[-1] + ".pcap",
                "format": "pcap, Ethernet (two interfaces merged by time)",
                "namespace": "sctpmon-a",
                "interfaces": {"smA1": 1, "smA2": 2},
                "pcapng_twin": (a.fixture.rsplit("/", 1)[-1] + ".pcapng") if a.pcapng else None,
                "pcapng_twin_format": "pcapng written by dumpcap, one interface block per veth (smA1, smA2), same packets" if a.pcapng else None,
                "udp_checksums_valid": False if a.mode.startswith("udp") else None,
                "note": ("UDP checksums are not valid in this capture: veth TX checksum offload leaves them "
                         "partial (CHECKSUM_PARTIAL) when captured; SCTP CRC32c is valid")
                        if a.mode.startswith("udp") else "SCTP CRC32c is valid on every packet",
            },
            "params": {k: start[k] for k in ("port", "hb_interval_ms", "rto_min_ms", "rto_max_ms",
                                             "rto_initial_ms", "path_max_retrans", "assoc_max_retrans",
                                             "rate", "size", "ppid")},
            "lab": {
                "cut_path": a.cut_path,
                "cut_at": a.t_cut,
                "restored_at": a.t_restore,
                "cut_method": f"nftables drop of all IP traffic in and out of sctpmon-b/smB{a.cut_path}",
                "paths": {
                    "1": {"client": ["10.201.1.1", "fd00:201:1::1"], "server": ["10.201.1.2", "fd00:201:1::2"]},
                    "2": {"client": ["10.201.2.1", "fd00:201:2::1"], "server": ["10.201.2.2", "fd00:201:2::2"]},
                },
            },
            "initiator": "client",
            "client": client,
            "server": server,
            "wire_tshark": {
                "sctp_packets": len(pkts),
                "association": {
                    "initiator": {"port": inits[0]["sport"] if inits else None, "vtag": client_tag, "addrs": init_set},
                    "responder": {"port": initacks[0]["sport"] if initacks else None, "vtag": server_tag, "addrs": ack_set},
                },
                "chunk_counts": dict(sorted(counts.items())),
                "chunk_counts_by_path": {str(k): dict(sorted(v.items())) for k, v in sorted(per_path.items())},
                "packets_with_source_of_other_path": len(mism),
                "failover_client_to_server": fo_c,
                "failover_server_to_client": fo_s,
            },
            "timings_s": timings,
        }
        with open(a.fixture + ".expect.json", "w") as f:
            json.dump(expect, f, indent=2)
            f.write("\n")
        print(f"analyze: wrote {a.fixture}.pcap and {a.fixture}.expect.json")

    if failures:
        print(f"analyze: {len(failures)} check(s) FAILED")
        return 1
    print("analyze: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
