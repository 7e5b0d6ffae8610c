"""Bad input over raw sockets: every case gets a clear answer (or a closed connection), never a crash,
and the server keeps answering afterwards."""
import json
import socket
import threading
import time

import pytest


def exchange(port, data, timeout=10, half_close=False):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
                if b"\r\n\r\n" in out and not half_close:
                    head, _, body = out.partition(b"\r\n\r\n")
                    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
                    if n and len(body) >= n[0]:
                        break
        except socket.timeout:
            pass
        return out


def post(port, body, path=b"/v1/completions"):
    return exchange(port, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def status(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else None


def error_body(resp):
    return json.loads(resp.partition(b"\r\n\r\n")[2])["error"]


@pytest.mark.parametrize("body", [
    b"", b"{", b"{\"prompt\": \"x\"", b"[]", b"null", b"42", b"\"str\"",
    b"{\"prompt\": \"x\", \"max_tokens\": 1e999}",
    b"{\"prompt\": \"x\", \"max_tokens\": 18446744073709551616}",
    b"{\"prompt\": \"x\", \"max_tokens\": -5}",
    b"{\"prompt\": \"x\", \"temperature\": \"hot\"}",
    b"{\"prompt\": \"x\", \"stop\": {\"a\": 1}}",
    b"{\"prompt\": [1, -2]}",
    b"{\"prompt\": [1, 99999999999]}",
    b"{\"prompt\": [1.5]}",
    b"{\"prompt\": \"\xff\xfe bad utf8\"}",
    b"{\"prompt\": {\"nested\": [[[[[]]]]]}}",
    b"{\"prompt\": \"x\", \"n\": 100000}",
    b"{\"prompt\": \"x\", \"stream\": 1}",
    b"{\"prompt\": \"x\", \"seed\": \"abc\"}",
    b"{" * 100000,
])
def test_malformed_bodies_are_400(server, body):
    r = post(server.port, body)
    assert status(r) == 400, r[:300]
    assert error_body(r)["code"] == 400


def test_chat_bad_messages(server):
    for body in [b"{\"messages\": \"hi\"}", b"{\"messages\": [{\"role\": 1}]}",
                 b"{\"messages\": [{\"role\": \"user\", \"content\": 5}]}",
                 b"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}"]:
        r = post(server.port, body, b"/v1/chat/completions")
        assert status(r) == 400, r[:300]


def test_garbage_and_oversized_requests(server):
    assert status(exchange(server.port, b"\x00\x01\x02garbage\r\n\r\n")) == 400
    assert status(exchange(server.port, b"GET / HTTP/1.1\r\nX: " + b"a" * (200 << 10) + b"\r\n\r\n")) == 431
    r = exchange(server.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
    assert status(r) == 413


def test_half_closed_and_dropped_connections(server):
    body = json.dumps({"prompt": "x", "max_tokens": 200, "stream": True}).encode()
    req = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    exchange(server.port, req, timeout=2, half_close=True)
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(req[: len(req) // 2])  # a truncated request, then gone


def test_a_thousand_connections_opened_and_dropped(server, client):
    socks = []
    for _ in range(1000):
        socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
    for s in socks:
        s.close()
    assert client.completions.create(model="sim", prompt="still here", max_tokens=3).usage.completion_tokens == 3


def test_slow_client_does_not_block_others(server, client):
    # A client trickling its header byte by byte holds only its own connection.
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    stop = threading.Event()

    def trickle():
        for ch in b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n":
            if stop.is_set():
                return
            try:
                s.sendall(bytes([ch]))
            except OSError:
                return
            time.sleep(0.05)

    t = threading.Thread(target=trickle)
    t.start()
    t0 = time.time()
    assert client.completions.create(model="sim", prompt="fast", max_tokens=2).usage.completion_tokens == 2
    assert time.time() - t0 < 5
    stop.set()
    t.join()
    s.close()


def test_server_still_healthy_after_everything(server):
    r = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status(r) == 200


def test_limits_are_configurable():
    from conftest import Server
    s = Server("--backend", "sim", "--max-request-body-bytes", "2048", "--max-header-bytes", "4096",
               "--http-read-timeout-seconds", "0.5")
    try:
        body = json.dumps({"prompt": "x" * 3000}).encode()
        assert status(post(s.port, body)) == 413
        assert status(post(s.port, json.dumps({"prompt": "x", "max_tokens": 2}).encode())) == 200
        assert status(exchange(s.port, b"GET /health HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n")) == 431
        t0 = time.time()
        r = exchange(s.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n", timeout=10)  # never finishes
        assert status(r) == 408 and time.time() - t0 < 5
    finally:
        assert s.stop() == 0
