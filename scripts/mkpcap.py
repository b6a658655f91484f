#!/usr/bin/python3
"""Writes a deterministic packet capture of background traffic plus a UDP
flood, for feeding real flow exporters (softflowd, pmacct) in tests, and a
JSON file with the capture's own totals: packets and layer-3 bytes (IP total
length, IPv6 payload length + 40) overall, for IPv4 only (NetFlow v5 cannot
carry IPv6), and per destination address.

usage: mkpcap.py OUT.pcap OUT.json [--packets N] [--seed S]
"""
import argparse
import json
import random

from scapy.all import ICMP, IP, IPv6, TCP, UDP, Ether, Raw, wrpcap

ap = argparse.ArgumentParser()
ap.add_argument("pcap")
ap.add_argument("totals")
ap.add_argument("--packets", type=int, default=6000)
ap.add_argument("--seed", type=int, default=7)
ap.add_argument("--start", type=float, default=1_700_000_000.0)
args = ap.parse_args()

rnd = random.Random(args.seed)
victim = "203.0.113.66"
hosts = ["203.0.113.%d" % i for i in range(10, 30)]
remotes = ["198.51.100.%d" % i for i in range(1, 60)]
pkts = []
per_dst = {}
total_pkts = 0
total_bytes = 0
v4_pkts = 0
v4_bytes = 0
t = args.start
for i in range(args.packets):
    t += 0.0005
    kind = rnd.random()
    if kind < 0.5:  # the flood: many sources, one victim, UDP to random ports
        src = "192.0.2.%d" % rnd.randint(1, 250)
        l3 = IP(src=src, dst=victim) / UDP(sport=rnd.randint(1024, 65535), dport=rnd.choice([53, 80, 443, 27015])) / Raw(b"x" * rnd.choice([20, 100, 400]))
    elif kind < 0.75:
        l3 = IP(src=rnd.choice(remotes), dst=rnd.choice(hosts)) / TCP(sport=443, dport=rnd.randint(30000, 60000), flags="A") / Raw(b"y" * rnd.randint(0, 1400))
    elif kind < 0.85:
        l3 = IP(src=rnd.choice(hosts), dst=rnd.choice(remotes)) / UDP(sport=rnd.randint(30000, 60000), dport=53) / Raw(b"q" * 40)
    elif kind < 0.92:
        l3 = IP(src=rnd.choice(remotes), dst=rnd.choice(hosts)) / ICMP() / Raw(b"p" * 56)
    else:
        l3 = IPv6(src="2001:db8:ffff::%x" % rnd.randint(1, 30), dst="2001:db8:1::%x" % rnd.randint(1, 8)) / UDP(sport=rnd.randint(1024, 65535), dport=443) / Raw(b"z" * rnd.randint(10, 1200))
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3
    frame.time = t
    raw = bytes(l3)
    n = len(raw)
    dst = l3.dst
    d = per_dst.setdefault(dst, {"packets": 0, "bytes": 0})
    d["packets"] += 1
    d["bytes"] += n
    total_pkts += 1
    total_bytes += n
    if IP in l3:
        v4_pkts += 1
        v4_bytes += n
    pkts.append(frame)

wrpcap(args.pcap, pkts)
with open(args.totals, "w") as f:
    json.dump({"packets": total_pkts, "bytes": total_bytes, "ipv4_packets": v4_pkts, "ipv4_bytes": v4_bytes, "per_dst": per_dst}, f, indent=1, sort_keys=True)
