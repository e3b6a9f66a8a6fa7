#!/usr/bin/python3
"""UDP check for the twill lab (run inside a pod namespace with `ip netns exec`).

  udp.py recv PORT TAG SRC_IP [TIMEOUT]  wait for the datagrams of TAG from SRC_IP;
                                         exit 0 iff all arrived intact, in order
  udp.py send DST_IP PORT TAG            send the datagrams of TAG

The datagrams of a tag are a fixed set of sizes (the largest fills a 1450-byte pod MTU)
with content derived from the tag, so the receiver can check every byte.
"""
import hashlib
import socket
import sys
import time

SIZES = (16, 512, 1422)  # 1422 = 1450 - 20 (IPv4) - 8 (UDP)


def payloads(tag):
    out = []
    for i, n in enumerate(SIZES):
        seed = hashlib.sha256(f"{tag}/{i}".encode()).digest()
        out.append((seed * (n // len(seed) + 1))[:n])
    return out


def recv(port, tag, src_ip, timeout):
    want = payloads(tag)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < len(want):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, (ip, _) = s.recvfrom(65535)
        except socket.timeout:
            break
        got.append((ip, data))
    bad = [ip for ip, _ in got if ip != src_ip]
    ok = not bad and [d for _, d in got] == want
    sizes = ",".join(str(len(d)) for _, d in got)
    print(f"received {len(got)}/{len(want)} datagrams (sizes {sizes or '-'})"
          + (f", from unexpected {sorted(set(bad))}" if bad else "")
          + ("" if ok or bad or len(got) < len(want) else ", content differs"),
          file=sys.stderr)
    return 0 if ok else 1


def send(dst_ip, port, tag):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for p in payloads(tag):
        s.sendto(p, (dst_ip, port))
        time.sleep(0.05)
    return 0


def main(argv):
    if len(argv) >= 5 and argv[1] == "recv":
        timeout = float(argv[5]) if len(argv) > 5 else 5.0
        return recv(int(argv[2]), argv[3], argv[4], timeout)
    if len(argv) == 5 and argv[1] == "send":
        return send(argv[2], int(argv[3]), argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
