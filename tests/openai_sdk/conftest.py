"""Starts `troupe serve` (sim backend, byte vocabulary) on a free loopback port for the SDK tests."""
import os
import re
import signal
import subprocess
import time

import openai
import pytest

TROUPE = os.environ.get("TROUPE_BINARY", "build/troupe")


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [TROUPE, "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "warn", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        self.port = None
        lines = []
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"serving .* on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("troupe serve did not start:\n" + "".join(lines))
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


@pytest.fixture(scope="session")
def server():
    s = Server("--backend", "sim", "--served-model-name", "sim", "--max-model-len", "1024", "--tensor-parallel-size", "2")
    yield s
    assert s.stop() == 0


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
