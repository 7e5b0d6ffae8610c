"""Logprobs and vLLM's token-id extensions (return_token_ids, return_tokens_as_token_ids), through the
official SDK. The real numbers come from the default model (stories260K on the cpu backend); the sim
backend's fake ones (0.0 for its token, then -1, -2, ...) only check the plumbing."""
import json
import re
import urllib.request

import openai
import pytest

from conftest import Server

PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def cpu_server():
    s = Server("--backend", "cpu")
    yield s
    assert s.stop() == 0


@pytest.fixture()
def cpu(cpu_server):
    return openai.OpenAI(base_url=cpu_server.base_url, api_key="unused", max_retries=0, timeout=60)


def model_of(client):
    return client.models.list().data[0].id


def tokenize(server, prompt):
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/tokenize", data=json.dumps({"prompt": prompt}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["tokens"]


def test_completion_logprobs_greedy(cpu):
    r = cpu.completions.create(model=model_of(cpu), prompt=PROMPT, max_tokens=12, temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    n = r.usage.completion_tokens
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == n
    assert "".join(lp.tokens) == r.choices[0].text
    for i, (tok, val, top) in enumerate(zip(lp.tokens, lp.token_logprobs, lp.top_logprobs)):
        assert val <= 0
        assert len(top) == 3
        assert all(v <= 0 for v in top.values())
        assert val == pytest.approx(max(top.values()))   # greedy: the sampled token is the most likely
        assert top[tok] == pytest.approx(val)
        if i > 0:
            assert lp.text_offset[i] == lp.text_offset[i - 1] + len(lp.tokens[i - 1])
    assert lp.text_offset[0] == 0


def test_completion_logprobs_zero_lists_only_the_sampled_token(cpu):
    r = cpu.completions.create(model=model_of(cpu), prompt=PROMPT, max_tokens=5, logprobs=0, seed=3)
    lp = r.choices[0].logprobs
    assert all(len(top) == 1 and list(top) == [tok] for tok, top in zip(lp.tokens, lp.top_logprobs))


def test_completion_logprobs_with_a_stop_string_stay_aligned(cpu):
    model = model_of(cpu)
    full = cpu.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0).choices[0].text
    stop = full[len(full) // 2:len(full) // 2 + 3]
    r = cpu.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0, logprobs=1, stop=[stop])
    c = r.choices[0]
    assert c.finish_reason == "stop"
    joined = "".join(c.logprobs.tokens)
    # The tokens run through the one that completed the stop string, never past it.
    assert joined.startswith(c.text) and len(joined) < len(c.text) + len(stop) + 8
    assert stop in joined


def test_chat_logprobs_and_top_logprobs(cpu):
    r = cpu.chat.completions.create(model=model_of(cpu), messages=[{"role": "user", "content": "Tell a story"}],
                                    max_tokens=10, temperature=0, logprobs=True, top_logprobs=2)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    # The text's decoder drops a leading space at the start of the output; pieces are decoded in context.
    assert "".join(e.token for e in content).lstrip() == r.choices[0].message.content.lstrip()
    for e in content:
        assert e.logprob <= 0
        assert e.bytes == list(e.token.encode())
        assert len(e.top_logprobs) == 2
        assert e.top_logprobs[0].token == e.token and e.top_logprobs[0].logprob == pytest.approx(e.logprob)
        assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob


def test_chat_logprobs_without_top(cpu):
    r = cpu.chat.completions.create(model=model_of(cpu), messages=[{"role": "user", "content": "hi"}],
                                    max_tokens=4, logprobs=True)
    assert all(e.top_logprobs == [] for e in r.choices[0].logprobs.content)
    r = cpu.chat.completions.create(model=model_of(cpu), messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert r.choices[0].logprobs is None


def test_streaming_completion_carries_logprobs_per_chunk(cpu):
    model = model_of(cpu)
    whole = cpu.completions.create(model=model, prompt=PROMPT, max_tokens=10, temperature=0, logprobs=2)
    tokens, values, offsets, text = [], [], [], ""
    for ch in cpu.completions.create(model=model, prompt=PROMPT, max_tokens=10, temperature=0, logprobs=2,
                                     stream=True):
        c = ch.choices[0]
        text += c.text
        if c.logprobs is not None:
            assert "".join(c.logprobs.tokens) == c.text
            offsets += c.logprobs.text_offset
            tokens += c.logprobs.tokens
            values += c.logprobs.token_logprobs
    assert text == whole.choices[0].text
    assert tokens == whole.choices[0].logprobs.tokens
    assert offsets == whole.choices[0].logprobs.text_offset
    assert values == pytest.approx(whole.choices[0].logprobs.token_logprobs)


def test_streaming_chat_carries_logprobs_per_chunk(cpu):
    args = dict(model=model_of(cpu), messages=[{"role": "user", "content": "hi"}], max_tokens=8, temperature=0,
                logprobs=True, top_logprobs=1)
    whole = cpu.chat.completions.create(**args)
    entries = []
    for ch in cpu.chat.completions.create(**args, stream=True):
        if ch.choices and ch.choices[0].logprobs is not None:
            entries += ch.choices[0].logprobs.content
    assert [e.token for e in entries] == [e.token for e in whole.choices[0].logprobs.content]


def test_return_token_ids(cpu, cpu_server):
    model = model_of(cpu)
    r = cpu.completions.create(model=model, prompt=PROMPT, max_tokens=6, temperature=0,
                               extra_body={"return_token_ids": True})
    c = r.choices[0].model_dump()
    assert c["prompt_token_ids"] == tokenize(cpu_server, PROMPT)
    assert len(c["token_ids"]) == r.usage.completion_tokens
    chat = cpu.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4,
                                       extra_body={"return_token_ids": True}).model_dump()
    assert chat["prompt_token_ids"] and len(chat["prompt_token_ids"]) == chat["usage"]["prompt_tokens"]
    assert len(chat["choices"][0]["token_ids"]) == chat["usage"]["completion_tokens"]


def test_return_token_ids_streaming(cpu, cpu_server):
    ids, prompt_ids = [], None
    for ch in cpu.completions.create(model=model_of(cpu), prompt=PROMPT, max_tokens=6, temperature=0, stream=True,
                                     extra_body={"return_token_ids": True}):
        c = ch.choices[0].model_dump()
        if c.get("prompt_token_ids") is not None:
            assert prompt_ids is None
            prompt_ids = c["prompt_token_ids"]
        ids += c["token_ids"]
    assert prompt_ids == tokenize(cpu_server, PROMPT)
    assert len(ids) == 6


def test_return_tokens_as_token_ids(cpu):
    r = cpu.completions.create(model=model_of(cpu), prompt=PROMPT, max_tokens=5, temperature=0, logprobs=2,
                               extra_body={"return_tokens_as_token_ids": True, "return_token_ids": True})
    c = r.choices[0]
    assert c.logprobs.tokens == [f"token_id:{t}" for t in c.model_dump()["token_ids"]]
    assert all(re.fullmatch(r"token_id:\d+", k) for top in c.logprobs.top_logprobs for k in top)


@pytest.mark.parametrize("kwargs, param", [
    ({"logprobs": -1}, "logprobs"),
    ({"logprobs": 21}, "logprobs"),
    ({"logprobs": "three"}, "logprobs"),
])
def test_bad_completion_logprobs_are_400(cpu, kwargs, param):
    with pytest.raises(openai.BadRequestError) as e:
        cpu.completions.create(model=model_of(cpu), prompt="x", max_tokens=2, **kwargs)
    assert e.value.body["param"] == param


@pytest.mark.parametrize("kwargs, param", [
    ({"top_logprobs": 2}, "top_logprobs"),                     # without logprobs: true
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
    ({"logprobs": 3}, "logprobs"),                             # chat's logprobs is a boolean
])
def test_bad_chat_logprobs_are_400(cpu, kwargs, param):
    with pytest.raises(openai.BadRequestError) as e:
        cpu.chat.completions.create(model=model_of(cpu), messages=[{"role": "user", "content": "x"}], max_tokens=2,
                                    **kwargs)
    assert e.value.body["param"] == param


def test_sim_backend_fake_logprobs(client):
    r = client.completions.create(model="sim", prompt="abc", max_tokens=5, logprobs=3)
    lp = r.choices[0].logprobs
    assert "".join(lp.tokens) == r.choices[0].text
    assert lp.token_logprobs == [0.0] * 5
    for tok, top in zip(lp.tokens, lp.top_logprobs):
        assert top[tok] == 0.0 and sorted(top.values()) == [-2.0, -1.0, 0.0]


def test_streaming_with_echo_and_a_stop_string_matches_whole(cpu):
    model = model_of(cpu)
    args = dict(model=model, prompt=PROMPT, max_tokens=12, temperature=0, logprobs=1, echo=True, stop=["was a"])
    whole = cpu.completions.create(**args).choices[0]
    assert whole.text.startswith(PROMPT) and whole.logprobs.text_offset[0] == len(PROMPT)
    tokens, offsets = [], []
    for ch in cpu.completions.create(**args, stream=True):
        if ch.choices[0].logprobs is not None:
            tokens += ch.choices[0].logprobs.tokens
            offsets += ch.choices[0].logprobs.text_offset
    assert tokens == whole.logprobs.tokens and offsets == whole.logprobs.text_offset
