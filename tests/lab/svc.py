#!/usr/bin/env python3
"""Backends and clients for the service lab (tests/lab/services.sh).

  svc.py serve NAME PORT [SECONDS]     TCP: every connection gets "NAME PEER_IP\\n", then
                                       one line per line received; UDP on the same port
                                       answers "NAME PEER_IP" per datagram.
  svc.py spread ADDR PORT N            N connections, one backend line each: "NAME PEER"
  svc.py hold ADDR PORT SECONDS        one connection kept for SECONDS, asking every 0.1 s;
                                       prints the distinct backend names seen and the count
  svc.py refused ADDR PORT tcp|udp     exits 0 when the port is refused (RST / ICMP)
Every call is bounded in time.
"""
import socket
import sys
import threading
import time


def serve(name, port, seconds):
    deadline = time.time() + seconds

    def client(c, peer):
        try:
            c.settimeout(seconds)
            c.sendall(f"{name} {peer}\n".encode())
            f = c.makefile("rb")
            for _ in f:
                c.sendall(f"{name} {peer}\n".encode())
        except OSError:
            pass
        finally:
            c.close()

    def udp():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", port))
        u.settimeout(0.5)
        while time.time() < deadline:
            try:
                data, peer = u.recvfrom(2048)
            except socket.timeout:
                continue
            u.sendto(f"{name} {peer[0]}".encode(), peer)

    threading.Thread(target=udp, daemon=True).start()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    s.settimeout(0.5)
    while time.time() < deadline:
        try:
            c, peer = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=client, args=(c, peer[0]), daemon=True).start()


def spread(addr, port, n):
    for _ in range(n):
        with socket.create_connection((addr, port), timeout=3) as c:
            line = c.makefile("rb").readline().decode().strip()
            print(line)


def hold(addr, port, seconds):
    names = []
    with socket.create_connection((addr, port), timeout=3) as c:
        f = c.makefile("rb")
        names.append(f.readline().decode().split()[0])
        end = time.time() + seconds
        while time.time() < end:
            c.sendall(b"again\n")
            line = f.readline().decode()
            if not line:
                print("closed early")
                return 1
            names.append(line.split()[0])
            time.sleep(0.1)
    print(" ".join(sorted(set(names))), len(names))
    return 0


def refused(addr, port, proto):
    if proto == "tcp":
        try:
            socket.create_connection((addr, port), timeout=3).close()
        except ConnectionRefusedError:
            return 0
        except OSError as e:
            print(e)
        return 1
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.connect((addr, port))
    u.send(b"x")
    try:
        u.recv(100)
    except ConnectionRefusedError:
        return 0
    except OSError as e:
        print(e)
    return 1


def main(argv):
    cmd = argv[1]
    if cmd == "serve":
        serve(argv[2], int(argv[3]), float(argv[4]) if len(argv) > 4 else 120)
        return 0
    if cmd == "spread":
        spread(argv[2], int(argv[3]), int(argv[4]))
        return 0
    if cmd == "hold":
        return hold(argv[2], int(argv[3]), float(argv[4]))
    if cmd == "refused":
        return refused(argv[2], int(argv[3]), argv[4])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
