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
    # The text is decoded after the prompt, as vLLM does, so it is exactly the tokens' pieces joined.
    assert "".join(e.token for e in content) == r.choices[0].message.content
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


def test_streaming_with_echo_and_a_stop_string_matches_whole(cpu, cpu_server):
    model = model_of(cpu)
    args = dict(model=model, prompt=PROMPT, max_tokens=12, temperature=0, logprobs=1, echo=True, stop=["was a"])
    whole = cpu.completions.create(**args).choices[0]
    # vLLM: with echo and logprobs the prompt's tokens lead the logprobs (the first has none), offsets from 0.
    assert whole.text.startswith(PROMPT) and whole.logprobs.text_offset[0] == 0
    assert whole.logprobs.token_logprobs[0] is None and whole.logprobs.top_logprobs[0] is None
    assert len(whole.model_dump()["prompt_logprobs"]) == len(tokenize(cpu_server, PROMPT))
    tokens, offsets = [], []
    for ch in cpu.completions.create(**args, stream=True):
        if ch.choices[0].logprobs is not None:
            tokens += ch.choices[0].logprobs.tokens
            offsets += ch.choices[0].logprobs.text_offset
    assert tokens == whole.logprobs.tokens and offsets == whole.logprobs.text_offset


# ---- prompt_logprobs (vLLM's extension) ----

def check_prompt_logprobs(plp, prompt_ids, n):
    """vLLM's shape: None for the first prompt token, then {token id: {logprob, rank, decoded_token}} holding
    the prompt token (with its rank) and the top n (ranks 1..n)."""
    assert len(plp) == len(prompt_ids)
    assert plp[0] is None
    for pos in range(1, len(prompt_ids)):
        d = plp[pos]
        own = d[str(prompt_ids[pos])]
        assert set(own) == {"logprob", "rank", "decoded_token"}
        assert own["logprob"] <= 0 and own["rank"] >= 1
        others = {k: v for k, v in d.items() if k != str(prompt_ids[pos])}
        ranks = sorted(v["rank"] for v in others.values())
        assert len(d) in (n, n + 1)
        if own["rank"] <= n and len(d) == n:  # the prompt token is among the top n: it holds that entry
            assert sorted(ranks + [own["rank"]]) == list(range(1, n + 1))
        else:
            assert ranks == list(range(1, n + 1))
        best = max(v["logprob"] for v in d.values())
        assert (own["rank"] == 1) == (own["logprob"] == best)
        for v in d.values():
            assert isinstance(v["decoded_token"], str)


def test_completion_prompt_logprobs_shape(cpu, cpu_server):
    r = cpu.completions.create(model=model_of(cpu), prompt=PROMPT, max_tokens=3, temperature=0,
                               extra_body={"prompt_logprobs": 2}).model_dump()
    ids = tokenize(cpu_server, PROMPT)
    check_prompt_logprobs(r["choices"][0]["prompt_logprobs"], ids, 2)
    assert r["choices"][0]["logprobs"] is None  # prompt logprobs do not switch on sampled ones
    plain = cpu.completions.create(model=model_of(cpu), prompt=PROMPT, max_tokens=3, temperature=0).model_dump()
    assert plain["choices"][0]["prompt_logprobs"] is None
    assert plain["choices"][0]["text"] == r["choices"][0]["text"]


def test_prompt_logprobs_zero_lists_only_the_prompt_token(cpu, cpu_server):
    r = cpu.completions.create(model=model_of(cpu), prompt=PROMPT, max_tokens=1,
                               extra_body={"prompt_logprobs": 0}).model_dump()
    ids = tokenize(cpu_server, PROMPT)
    plp = r["choices"][0]["prompt_logprobs"]
    assert plp[0] is None and all(list(d) == [str(t)] for d, t in zip(plp[1:], ids[1:]))


def test_chat_prompt_logprobs_on_the_response(cpu):
    r = cpu.chat.completions.create(model=model_of(cpu), messages=[{"role": "user", "content": "Tell a story"}],
                                    max_tokens=3, extra_body={"prompt_logprobs": 1, "return_token_ids": True})
    d = r.model_dump()
    check_prompt_logprobs(d["prompt_logprobs"], d["prompt_token_ids"], 1)
    plain = cpu.chat.completions.create(model=model_of(cpu), messages=[{"role": "user", "content": "x"}],
                                        max_tokens=2).model_dump()
    assert "prompt_logprobs" in plain and plain["prompt_logprobs"] is None


@pytest.fixture(scope="module")
def cached_cpu_server():
    s = Server("--backend", "cpu", "--enable-prefix-caching", "--max-num-batched-tokens", "8")
    yield s
    assert s.stop() == 0


def test_prompt_logprobs_equal_the_logprobs_of_the_generated_tokens(cached_cpu_server):
    """The real cross-check: greedy tokens' logprobs (decode steps) equal the prompt logprobs of a second
    request whose prompt is prompt + output (prefill rows, chunked by an 8-token budget, with prefix
    caching on: the cached prompt blocks must not be reused for it)."""
    c = openai.OpenAI(base_url=cached_cpu_server.base_url, api_key="unused", max_retries=0, timeout=60)
    model = model_of(c)
    prompt = PROMPT + ", there was a little girl named Lily. She loved to play outside in the park."
    first = c.completions.create(model=model, prompt=prompt, max_tokens=10, temperature=0, logprobs=1,
                                 extra_body={"return_token_ids": True}).choices[0].model_dump()
    prompt_ids, out_ids = first["prompt_token_ids"], first["token_ids"]
    lps = first["logprobs"]["token_logprobs"]
    for attempt in range(2):  # the second time every block of the long prompt is in the cache
        r = c.completions.create(model=model, prompt=prompt_ids + out_ids, max_tokens=1, temperature=0,
                                 extra_body={"prompt_logprobs": 1}).choices[0].model_dump()
        plp = r["prompt_logprobs"]
        check_prompt_logprobs(plp, prompt_ids + out_ids, 1)
        for i, (tok, lp) in enumerate(zip(out_ids, lps)):
            e = plp[len(prompt_ids) + i][str(tok)]
            assert e["logprob"] == pytest.approx(lp, abs=1e-4)
            assert e["rank"] == 1  # greedy: the most likely token
    assert len(prompt_ids) + len(out_ids) > 32  # two full 16-token blocks: the cache had hits to offer
    hits = prefix_cache_hits(cached_cpu_server)
    c.completions.create(model=model, prompt=prompt_ids + out_ids, max_tokens=1)  # a plain request does hit
    assert prefix_cache_hits(cached_cpu_server) > hits


def prefix_cache_hits(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=30) as r:
        text = r.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("vllm:prefix_cache_hits_total"))


def test_streaming_prompt_logprobs_are_refused(cpu):
    with pytest.raises(openai.BadRequestError) as e:
        cpu.completions.create(model=model_of(cpu), prompt="x", max_tokens=2, stream=True,
                               extra_body={"prompt_logprobs": 1})
    assert e.value.body["param"] == "prompt_logprobs"


@pytest.mark.parametrize("value", [-1, 21, "two", 1.5])
def test_bad_prompt_logprobs_are_400(cpu, value):
    with pytest.raises(openai.BadRequestError) as e:
        cpu.completions.create(model=model_of(cpu), prompt="x", max_tokens=2, extra_body={"prompt_logprobs": value})
    assert e.value.body["param"] == "prompt_logprobs"


def test_sim_backend_fake_prompt_logprobs_have_the_shape(client):
    r = client.completions.create(model="sim", prompt="abcdef", max_tokens=2, extra_body={"prompt_logprobs": 3})
    plp = r.choices[0].model_dump()["prompt_logprobs"]
    check_prompt_logprobs(plp, [ord(ch) for ch in "abcdef"], 3)
