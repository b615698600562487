#!/usr/bin/env python3
"""slow_client.py HOST PORT TOPIC N - a Kafka client that never reads.

Opens one connection, sends N pipelined Fetch v4 requests for partition 0 of
TOPIC from offset 0 (1 MiB each) and then sleeps without reading a byte of
the responses, so the broker's output to it piles up.  Prints "sent" once the
requests are written; exits when killed or after 60 s.
"""
import socket
import struct
import sys
import time


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def fetch_v4(corr, topic):
    body = struct.pack(">iiiib", -1, 100, 1, 64 << 20, 0)  # replica, max_wait, min_bytes, max_bytes, isolation
    body += struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20)  # partition, fetch_offset, max_bytes
    header = struct.pack(">hhi", 1, 4, corr) + string("slow-client")
    msg = header + body
    return struct.pack(">i", len(msg)) + msg


def main():
    host, port, topic, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # read nothing, buffer little
    data = b"".join(fetch_v4(i, topic) for i in range(n))
    s.settimeout(30)
    s.sendall(data)
    print("sent", flush=True)
    time.sleep(60)
    s.close()


if __name__ == "__main__":
    main()
