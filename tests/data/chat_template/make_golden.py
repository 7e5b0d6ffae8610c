#!/usr/bin/env python3
"""Renders the chat templates in this folder with Python jinja2 configured the way Hugging Face
transformers configures it (utils/chat_template_utils.py: ImmutableSandboxedEnvironment with
trim_blocks/lstrip_blocks, the loopcontrols extension, its own tojson filter, raise_exception and
strftime_now globals) and writes golden.jsonl, which model/chat_template/chat_template_test.cpp
compares byte for byte against Troupe's C++ engine.

Run from anywhere:  python3 tests/data/chat_template/make_golden.py   (needs: pip install jinja2)
"""
import json
import os
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


class RaisedByTemplate(jinja2.exceptions.TemplateError):
    """raise_exception() in HF raises TemplateError; a subclass lets us tell it from other errors."""


def raise_exception(message):
    raise RaisedByTemplate(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # Same as transformers: no HTML escaping (unlike jinja's built-in tojson), ensure_ascii off.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


DS_TOKENS = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}
TEMPLATES = {
    "deepseek_r1": ("deepseek_r1.jinja", DS_TOKENS),
    "deepseek_r1_2025-01-22": ("deepseek_r1_2025-01-22.jinja", DS_TOKENS),
    "deepseek_v3": ("deepseek_v3.jinja", DS_TOKENS),
    "llama3.1_8b_instruct": ("llama3.1_8b_instruct.jinja",
                             {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
    "qwen2.5_7b_instruct": ("qwen2.5_7b_instruct.jinja", {"bos_token": None, "eos_token": "<|im_end|>"}),
}

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
SEARCH_TOOL = {"type": "function", "function": {
    "name": "web_search", "description": "Search the web; returns the top results (max 10).",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string"}, "limit": {"type": "integer", "default": 3, "minimum": 1.5e0},
        "lang": {"type": "string", "description": "ISO code — « fr », 日本語 ok"}},
        "required": ["query"]}}}
TOOLS = [WEATHER_TOOL, SEARCH_TOOL]


def call(name, args, as_string=True):
    return {"type": "function", "function": {"name": name,
                                             "arguments": json.dumps(args, ensure_ascii=False) if as_string else args}}


def U(text):
    return {"role": "user", "content": text}


def A(text):
    return {"role": "assistant", "content": text}


def S(text):
    return {"role": "system", "content": text}


def T(text):
    return {"role": "tool", "content": text}


def conversations():
    weather_call = {"role": "assistant", "content": None, "tool_calls": [call("get_weather", {"city": "Paris"})]}
    two_calls = {"role": "assistant", "content": None, "tool_calls": [
        call("get_weather", {"city": "Paris", "unit": "celsius"}), call("web_search", {"query": "Louvre hours"})]}
    long_turns = []
    for i in range(10):
        long_turns += [U(f"Question {i}: what is {i} squared?"), A(f"{i} squared is {i * i}.")]
    c = [
        ("single_user_gen", {"messages": [U("Hello!")], "add_generation_prompt": True}),
        ("single_user_nogen", {"messages": [U("Hello!")], "add_generation_prompt": False}),
        ("system_user_gen", {"messages": [S("You are a helpful assistant."), U("What is 2+2?")],
                             "add_generation_prompt": True}),
        ("multi_turn_system", {"messages": [S("Be concise."), U("Hi"), A("Hello! How can I help?"),
                                            U("Tell me a joke.")], "add_generation_prompt": True}),
        ("two_system_messages", {"messages": [S("Rule one."), S("Rule two."), U("Go.")],
                                 "add_generation_prompt": True}),
        ("no_system_three_turns", {"messages": [U("a"), A("b"), U("c"), A("d"), U("e"), A("f")],
                                   "add_generation_prompt": False}),
        ("assistant_with_think", {"messages": [U("What is 17*3?"),
                                               A("<think>\n17*3 = 51, double-check: 50+1.\n</think>\n\n51"),
                                               U("And 17*4?")], "add_generation_prompt": True}),
        ("assistant_think_last", {"messages": [U("Why is the sky blue?"),
                                               A("<think>Rayleigh scattering.</think>Because of Rayleigh scattering.")],
                                  "add_generation_prompt": False}),
        ("unicode_content", {"messages": [S("Réponds en français ✓"), U("日本語で答えて 🍣 — «ok»?"),
                                          A("はい、もちろんです。😀 Ça va."), U("Ελληνικά; Привет! \u00a0nbsp")],
                             "add_generation_prompt": True}),
        ("tool_roundtrip", {"messages": [U("Weather in Paris?"), weather_call,
                                         T('{"temperature": 21, "condition": "sunny"}'),
                                         A("It is 21°C and sunny in Paris.")], "tools": TOOLS,
                            "add_generation_prompt": False}),
        ("tool_two_calls", {"messages": [S("You can call tools."), U("Weather and Louvre hours?"), two_calls,
                                         T('{"temperature": 18}'), T("Open 9:00–18:00"), A("Done.")],
                            "tools": TOOLS, "add_generation_prompt": True}),
        ("tool_call_empty_content", {"messages": [U("Weather?"), {"role": "assistant", "content": "",
                                                                   "tool_calls": [call("get_weather", {"city": "Oslo"})]},
                                                  T("cold")], "tools": [WEATHER_TOOL],
                                     "add_generation_prompt": True}),
        ("tool_call_with_text", {"messages": [U("Weather?"), {"role": "assistant", "content": "Let me check.",
                                                               "tool_calls": [call("get_weather", {"city": "Rome"})]},
                                              T("warm"), A("Warm in Rome.")], "tools": TOOLS,
                                 "add_generation_prompt": False}),
        ("tools_no_calls_system", {"messages": [S("Use tools when needed."), U("Just say hi.")], "tools": TOOLS,
                                   "add_generation_prompt": True}),
        ("tools_no_system", {"messages": [U("Search for cats.")], "tools": TOOLS, "add_generation_prompt": True}),
        ("ends_with_tool_output", {"messages": [U("Weather?"), weather_call, T("sunny")], "tools": TOOLS,
                                   "add_generation_prompt": True}),
        ("whitespace_content", {"messages": [S("  padded system  \n"), U("\n  spaced user \t\n"),
                                             A("  answer  "), U("next")], "add_generation_prompt": True}),
        ("empty_messages", {"messages": [], "add_generation_prompt": True}),
        ("braces_and_quotes", {"messages": [U("Render {{ not_a_tag }} and {% raw %} and 'quotes' \"dq\" \\ back"),
                                            A("Sure: {# no comment #} ok")], "add_generation_prompt": True}),
        ("long_conversation", {"messages": [S("Math tutor.")] + long_turns + [U("Last one?")],
                               "add_generation_prompt": True}),
        ("markdown_code", {"messages": [U("Write code:\n```python\nprint('hi')\n```\nThanks")],
                           "add_generation_prompt": True}),
        ("no_generation_flag", {"messages": [U("Flag missing")]}),
        ("llama_kwargs", {"messages": [S("sys"), U("Weather?")], "tools": [WEATHER_TOOL],
                          "tools_in_user_message": False, "date_string": "01 Jan 2025",
                          "add_generation_prompt": True}),
        ("arguments_as_dict", {"messages": [U("Weather?"), {"role": "assistant", "content": None,
                                                             "tool_calls": [call("get_weather", {"city": "Nice",
                                                                                                 "days": 3},
                                                                                 as_string=False)]},
                                            T('{"t": 25.5}')], "tools": TOOLS, "add_generation_prompt": True}),
        ("tool_then_user", {"messages": [U("Weather?"), weather_call, T("rain"), U("Thanks, and tomorrow?")],
                            "tools": TOOLS, "add_generation_prompt": True}),
        ("tool_output_unicode_json", {"messages": [U("Search"), {"role": "assistant", "content": None,
                                                                  "tool_calls": [call("web_search",
                                                                                      {"query": "寿司 東京"})]},
                                                   T('{"results": ["すし匠", "Sushi Saito"], "note": "★★★"}'),
                                                   A("Found two places.")], "tools": TOOLS,
                                      "add_generation_prompt": False}),
        ("tools_null", {"messages": [S("sys"), U("hi")], "tools": None, "add_generation_prompt": True}),
        ("assistant_first", {"messages": [A("I start."), U("ok")], "add_generation_prompt": True}),
    ]
    return c


def main():
    env = make_env()
    out = []
    for tname, (fname, tokens) in TEMPLATES.items():
        with open(os.path.join(HERE, fname), encoding="utf-8") as f:
            template = env.from_string(f.read())
        for cname, ctx in conversations():
            context = dict(tokens)
            context.update(ctx)
            case = {"template": tname, "file": fname, "name": cname, "context": context}
            try:
                case["expected"] = template.render(**context)
            except RaisedByTemplate as e:
                case["error"] = str(e)
                case["error_type"] = "raise_exception"
            except Exception as e:  # runtime type errors: the C++ side must throw TemplateError too
                case["error"] = f"{type(e).__name__}: {e}"
                case["error_type"] = "other"
            out.append(case)
    with open(os.path.join(HERE, "golden.jsonl"), "w", encoding="utf-8") as f:
        for case in out:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    counts = {}
    for case in out:
        counts.setdefault(case["template"], [0, 0])[0 if "expected" in case else 1] += 1
    for k, (ok, err) in counts.items():
        print(f"{k}: {ok} rendered, {err} errors")


if __name__ == "__main__":
    main()
