"""The official `openai` Python SDK against a live troupe server: the shapes real clients parse."""
import http.client
import json
import socket

import openai
import pytest

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a story."}]


def test_models(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["sim"]


def test_completion(client):
    r = client.completions.create(model="sim", prompt="Once upon", max_tokens=12)
    assert r.object == "text_completion"
    assert r.id.startswith("cmpl-")
    assert len(r.choices) == 1 and r.choices[0].finish_reason == "length"
    assert len(r.choices[0].text) == 12  # the sim vocabulary is bytes
    assert r.usage.prompt_tokens == len("Once upon")
    assert r.usage.completion_tokens == 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + 12


def test_completion_stream_equals_whole(client):
    whole = client.completions.create(model="sim", prompt="abc", max_tokens=30).choices[0].text
    chunks = list(client.completions.create(model="sim", prompt="abc", max_tokens=30, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["length"]
    assert chunks[-1].usage.completion_tokens == 30 and chunks[-1].choices == []


def test_chat(client):
    r = client.chat.completions.create(model="sim", messages=MSGS, max_tokens=16)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert len(r.choices[0].message.content) == 16
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 16


def test_chat_stream_equals_whole(client):
    whole = client.chat.completions.create(model="sim", messages=MSGS, max_tokens=20).choices[0].message.content
    stream = client.chat.completions.create(model="sim", messages=MSGS, max_tokens=20, stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason == "length"


def test_max_completion_tokens(client):
    r = client.chat.completions.create(model="sim", messages=MSGS, max_completion_tokens=5)
    assert r.usage.completion_tokens == 5


def test_stop_string_never_leaks(client):
    whole = client.completions.create(model="sim", prompt="q", max_tokens=50).choices[0].text
    stop = whole[25:28]
    expect = whole[:whole.index(stop)]
    r = client.completions.create(model="sim", prompt="q", max_tokens=50, stop=[stop])
    assert r.choices[0].text == expect and r.choices[0].finish_reason == "stop"
    s = client.completions.create(model="sim", prompt="q", max_tokens=50, stop=stop, stream=True)
    assert "".join(c.choices[0].text for c in s if c.choices) == expect


def test_seed_reproducible(client):
    a = client.completions.create(model="sim", prompt="seed", max_tokens=20, seed=42, temperature=1.0)
    b = client.completions.create(model="sim", prompt="seed", max_tokens=20, seed=42, temperature=1.0)
    assert a.choices[0].text == b.choices[0].text


def test_user_and_penalties_are_accepted(client):
    r = client.completions.create(model="sim", prompt="x", max_tokens=3, user="u1", presence_penalty=0.5,
                                  frequency_penalty=0.5, top_p=0.9, temperature=0.7)
    assert r.usage.completion_tokens == 3


@pytest.mark.parametrize("kwargs,param", [
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_tokens": 5000}, "max_tokens"),      # prompt + max_tokens over max-model-len
    ({"temperature": -0.5}, "temperature"),
    ({"top_p": 2}, "top_p"),
    ({"prompt": "x" * 2000}, "prompt"),          # the prompt alone is over max-model-len
])
def test_bad_requests_are_400(client, kwargs, param):
    args = {"model": "sim", "prompt": "x", "max_tokens": 3, **kwargs}
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(**args)
    assert e.value.status_code == 400
    assert e.value.body["param"] == param


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4o", prompt="x", max_tokens=3)


def raw(server, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        c.request(method, path, body=body, headers={"content-type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    except (BrokenPipeError, ConnectionResetError):
        return None, b""  # the server may answer and close before the whole body was sent
    finally:
        c.close()


def test_malformed_json_and_wrong_method(server):
    status, body = raw(server, "POST", "/v1/completions", b"{\"prompt\": ")
    assert status == 400 and json.loads(body)["error"]["code"] == 400
    assert raw(server, "GET", "/v1/completions")[0] == 405
    assert raw(server, "GET", "/nope")[0] == 404


def test_oversized_body_is_413(server):
    # The declared length alone is enough: the server answers before reading any of the body.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(40 << 20).encode() + b"\r\n\r\n")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")


def test_server_survives_a_dropped_stream(server, client):
    body = json.dumps({"model": "sim", "prompt": "x", "max_tokens": 500, "stream": True}).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    assert client.completions.create(model="sim", prompt="y", max_tokens=2).usage.completion_tokens == 2


def test_n_choices_whole_and_streamed(client):
    r = client.completions.create(model="sim", prompt="n", max_tokens=8, n=3)
    assert sorted(c.index for c in r.choices) == [0, 1, 2]
    assert all(len(c.text) == 8 and c.finish_reason == "length" for c in r.choices)
    assert r.usage.completion_tokens == 24 and r.usage.prompt_tokens == 1
    texts, finishes = {0: "", 1: ""}, {0: 0, 1: 0}
    for chunk in client.chat.completions.create(model="sim", messages=MSGS, max_tokens=8, n=2, stream=True):
        for ch in chunk.choices:
            texts[ch.index] += ch.delta.content or ""
            finishes[ch.index] += 1 if ch.finish_reason else 0
    assert all(len(t) == 8 for t in texts.values()) and finishes == {0: 1, 1: 1}


def test_n_choices_with_a_seed_are_seed_plus_index(client):
    # As vLLM: choice i samples with seed + i, so each choice is reproducible on its own.
    r = client.completions.create(model="sim", prompt="s", max_tokens=10, n=2, seed=5)
    one = client.completions.create(model="sim", prompt="s", max_tokens=10, seed=6)
    by_index = {c.index: c.text for c in r.choices}
    assert by_index[1] == one.choices[0].text
    assert by_index[0] == client.completions.create(model="sim", prompt="s", max_tokens=10, seed=5).choices[0].text
