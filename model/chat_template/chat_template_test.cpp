#define BOOST_TEST_MODULE chat_template_test
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <string>

#include "model/chat_template/chat_template.hpp"

using troupe::ChatTemplate;
using troupe::TemplateError;
using nlohmann::json;

namespace {

const std::string kData = std::string(TROUPE_SOURCE_DIR) + "/tests/data/chat_template/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string render(const std::string& src, const json& ctx = json::object()) {
  return ChatTemplate::compile(src).render(ctx);
}

void expect_syntax_error(const std::string& src) {
  try {
    ChatTemplate::compile(src);
    BOOST_ERROR("expected a syntax error for: " << src.substr(0, 80));
  } catch (const TemplateError& e) {
    BOOST_TEST_MESSAGE(e.what());
    BOOST_CHECK(e.kind() == TemplateError::Kind::Syntax);
    BOOST_CHECK_MESSAGE(e.line() > 0 && e.column() > 0, "no position in: " << e.what());
  }
}

TemplateError::Kind render_error(const std::string& src, const json& ctx = json::object()) {
  try {
    render(src, ctx);
  } catch (const TemplateError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return e.kind();
  }
  BOOST_ERROR("expected a render error for: " << src);
  return TemplateError::Kind::Syntax;
}

}  // namespace

BOOST_AUTO_TEST_CASE(golden_cases_match_python_jinja2) {
  std::ifstream in(kData + "golden.jsonl");
  BOOST_REQUIRE(in);
  std::map<std::string, ChatTemplate> templates;
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    // ordered_json: tool schemas must keep their key order, as Python dicts do.
    nlohmann::ordered_json c = nlohmann::ordered_json::parse(line);
    const std::string file = c["file"];
    if (!templates.count(file)) templates.emplace(file, ChatTemplate::compile(read_file(kData + file)));
    const ChatTemplate& t = templates.at(file);
    const std::string label = c["template"].get<std::string>() + "/" + c["name"].get<std::string>();
    ++cases;
    if (c.contains("expected")) {
      std::string got;
      try {
        got = t.render(c["context"]);
      } catch (const TemplateError& e) {
        BOOST_ERROR(label << ": unexpected error: " << e.what());
        continue;
      }
      BOOST_CHECK_MESSAGE(got == c["expected"].get<std::string>(),
                          label << ":\n--- got ---\n" << got << "\n--- expected ---\n" << c["expected"].get<std::string>());
    } else {
      try {
        t.render(c["context"]);
        BOOST_ERROR(label << ": expected an error: " << c["error"]);
      } catch (const TemplateError& e) {
        if (c["error_type"] == "raise_exception") {
          BOOST_CHECK(e.kind() == TemplateError::Kind::Raised);
          BOOST_CHECK_EQUAL(std::string(e.what()), c["error"].get<std::string>());
        } else {
          BOOST_CHECK(e.kind() == TemplateError::Kind::Runtime);
        }
      }
    }
  }
  BOOST_CHECK_GE(cases, 100);
}

BOOST_AUTO_TEST_CASE(tokenizer_config_loading) {
  ChatTemplate t = ChatTemplate::from_tokenizer_config(std::string(TROUPE_SOURCE_DIR) + "/tests/data/tokenizer/deepseek-r1/tokenizer_config.json");
  BOOST_CHECK_EQUAL(t.bos_token(), "<｜begin▁of▁sentence｜>");
  BOOST_CHECK_EQUAL(t.eos_token(), "<｜end▁of▁sentence｜>");
  std::string out = t.render(json{{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
                                  {"add_generation_prompt", true}});
  BOOST_CHECK_EQUAL(out, "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜><think>\n");
  // HF's list-of-{name,template} form picks "default".
  std::string path = "/tmp/troupe_chat_template_test_config.json";
  std::ofstream(path) << json{{"chat_template", json::array({{{"name", "tool_use"}, {"template", "T"}},
                                                             {{"name", "default"}, {"template", "D{{ eos_token }}"}}})},
                              {"eos_token", "</s>"}}
                             .dump();
  BOOST_CHECK_EQUAL(ChatTemplate::from_tokenizer_config(path).render(json::object()), "D</s>");
  BOOST_CHECK_THROW(ChatTemplate::from_tokenizer_config("/nonexistent/tokenizer_config.json"), TemplateError);
}

BOOST_AUTO_TEST_CASE(expressions) {
  BOOST_CHECK_EQUAL(render("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}"),
                    "7|3|-4|1|2|3.5|1024");
  BOOST_CHECK_EQUAL(render("{{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}"), "a1NoneTrue|ababab|[1, 2]");
  BOOST_CHECK_EQUAL(render("{{ 1 < 2 < 3 }}{{ 'b' in 'abc' }}{{ 3 not in [1,2] }}{{ 1 == 1.0 }}{{ not 0 }}"),
                    "TrueTrueTrueTrueTrue");
  BOOST_CHECK_EQUAL(render("{{ 'y' if x else 'n' }}{{ 'y' if true }}{{ x or 'd' }}{{ 0 and 1 }}", {{"x", 0}}), "nyd0");
  BOOST_CHECK_EQUAL(render("{{ s[::-1] }}|{{ s[-2:] }}|{{ s[1] }}|{{ l[-1] }}|{{ l[1:3] }}|{{ l[::2] }}",
                           {{"s", "héllo"}, {"l", {1, 2, 3, 4}}}),
                    "olléh|lo|é|4|[2, 3]|[1, 3]");
  BOOST_CHECK_EQUAL(render("{{ d.a }}{{ d['b'] }}{{ d.missing }}|{{ d.get('a') }}{{ d.get('z', 9) }}",
                           {{"d", {{"a", 1}, {"b", 2}}}}),
                    "12|19");
  BOOST_CHECK_EQUAL(render("{{ {'k': [1, 2.5, 'x', none, true]} }}|{{ (1, 2) }}|{{ 1e3 }}|{{ 0.1 + 0.2 }}"),
                    "{'k': [1, 2.5, 'x', None, True]}|[1, 2]|1000.0|0.30000000000000004");
  BOOST_CHECK_EQUAL(render("{{ \"a\\n\\t\\\"b\\u00e9\" }}"), "a\n\t\"bé");
  BOOST_CHECK_EQUAL(render("{{ x is defined }}{{ y is undefined }}{{ n is none }}{{ 's' is string }}{{ d is mapping }}"
                           "{{ l is iterable }}{{ 3 is number }}{{ true is boolean }}{{ 2 is even }}{{ 1 is eq 1 }}"
                           "{{ 2 is in [1,2] }}{{ x is not none }}",
                           {{"x", 1}, {"n", nullptr}, {"d", json::object()}, {"l", json::array()}}),
                    "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue");
}

BOOST_AUTO_TEST_CASE(string_and_dict_methods) {
  BOOST_CHECK_EQUAL(render("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}"
                           "|{{ 'a.b.c'.rsplit('.', 1) }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x','c')) }}"
                           "|{{ 'hello world'.title() }}|{{ 'aXb'.upper() }}{{ 'aXb'.lower() }}|{{ 'abcb'.find('b') }}"
                           "|{{ 'abab'.count('ab') }}|{{ 'aaa'.replace('a', 'b', 2) }}"),
                    "a b|a|['a', 'b', '', 'c']|['a', 'b']|['a.b', 'c']|TrueTrue|Hello World|AXBaxb|1|2|bba");
  BOOST_CHECK_EQUAL(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.keys() }}{{ d.values() }}",
                           {{"d", {{"z", 1}, {"a", 2}}}}),
                    "a=2;z=1;['a', 'z'][2, 1]");  // nlohmann::json sorts object keys
}

BOOST_AUTO_TEST_CASE(filters) {
  json ctx = {{"users", {{{"name", "ann"}, {"age", 3}, {"on", true}}, {{"name", "bob"}, {"age", 1}, {"on", false}}}}};
  BOOST_CHECK_EQUAL(render("{{ users|selectattr('on')|map(attribute='name')|join(',') }}|"
                           "{{ users|rejectattr('on')|map(attribute='name')|first }}|"
                           "{{ users|selectattr('name', 'equalto', 'bob')|list|length }}|"
                           "{{ users|map(attribute='age')|sum }}|{{ users|sort(attribute='age')|map(attribute='name')|join }}",
                           ctx),
                    "ann|bob|1|4|bobann");
  BOOST_CHECK_EQUAL(render("{{ '  x '|trim }}|{{ 'ab'|length }}|{{ [3,1]|count }}|{{ 'hi'|upper }}|{{ 'HI'|lower }}"
                           "|{{ 'ab cd'|title }}|{{ 'ab'|capitalize }}|{{ 'aXa'|replace('a','b') }}|{{ [1,2]|last }}"
                           "|{{ u|default('dflt') }}|{{ ''|d('e', true) }}|{{ [1,2]|reverse|list }}|{{ '3'|int + 1 }}"
                           "|{{ '2.5'|float }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ 42|string }}|{{ 'x'|safe }}"),
                    "x|2|2|HI|hi|Ab Cd|Ab|bXb|2|dflt|e|[2, 1]|4|2.5|3|2.57|42|x");
  BOOST_CHECK_EQUAL(render("{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ 'é\"'|tojson }}|{{ d|items|list }}",
                           {{"d", {{"a", {1, 2}}, {"b", json::object()}}}}),
                    "{\"a\": [1, 2], \"b\": {}}|{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}|\"é\\\"\"|"
                    "[['a', [1, 2]], ['b', {}]]");
  BOOST_CHECK_EQUAL(render("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}"), "a\n  b\n\n  c|  a\n  b");
}

BOOST_AUTO_TEST_CASE(statements_and_scoping) {
  BOOST_CHECK_EQUAL(render("{% for x in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
                           "{{ loop.length }}{{ loop.revindex }};{% endfor %}"),
                    "10TrueFalse33;21FalseFalse32;32FalseTrue31;");
  BOOST_CHECK_EQUAL(render("{% for x in [] %}no{% else %}empty{% endfor %}|{% for c in 'ab' %}{{ c }}.{% endfor %}"
                           "|{% for x in range(5) if x is odd %}{{ x }}{% endfor %}"
                           "|{% for x in range(9) %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}"),
                    "empty|a.b.|13|02");
  // set inside a loop does not leak; namespace attributes do.
  BOOST_CHECK_EQUAL(render("{% set x = 1 %}{% set ns = namespace(n=0) %}{% for i in [1,2] %}{% set x = 5 %}"
                           "{% set ns.n = ns.n + i %}{% endfor %}{{ x }}{{ ns.n }}"),
                    "13");
  BOOST_CHECK_EQUAL(render("{% if a %}A{% elif b %}B{% else %}C{% endif %}", {{"a", false}, {"b", true}}), "B");
  BOOST_CHECK_EQUAL(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}{% set blk %}x{{ a }}{% endset %}[{{ blk }}]"), "21[x1]");
  BOOST_CHECK_EQUAL(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                           "{{ greet('a') }} {{ greet('b', '?') }} {{ greet(name='c', punct='.') }}"),
                    "Hi a! Hi b? Hi c.");
  BOOST_CHECK_EQUAL(render("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}in{% endcall %}"), "<in>");
  BOOST_CHECK_EQUAL(render("{% filter upper %}abc{% endfilter %}{# comment #}{% raw %}{{ x }}{% endraw %}"), "ABC{{ x }}");
  BOOST_CHECK_EQUAL(render("{{ dict(a=1)|tojson }}{{ raise_exception is defined }}{{ strftime_now('%Y')|length }}"),
                    "{\"a\": 1}True4");
}

BOOST_AUTO_TEST_CASE(whitespace_control) {
  // trim_blocks removes the newline after a block tag; lstrip_blocks the indentation before it.
  BOOST_CHECK_EQUAL(render("{% if true %}\n  yes\n{% endif %}\nend"), "  yes\nend");
  BOOST_CHECK_EQUAL(render("<ul>\n    {% for x in [1,2] %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>"),
                    "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>");
  BOOST_CHECK_EQUAL(render("a  {{- ' b ' -}}  c"), "a b c");
  BOOST_CHECK_EQUAL(render("a\n  {%- if true -%}\n  b  \n{%- endif %}"), "ab");
  BOOST_CHECK_EQUAL(render("x {{ 1 }}\n{{ 2 }}\n"), "x 1\n2");  // one trailing newline dropped
  BOOST_CHECK_EQUAL(render("a\n  {%+ if true %}b{% endif +%}\nc"), "a\n  b\nc");
  BOOST_CHECK_EQUAL(render("  {# c #}\nx"), "x");
}

BOOST_AUTO_TEST_CASE(undefined_behaviour) {
  BOOST_CHECK_EQUAL(render("[{{ nope }}]{{ nope is defined }}{% if nope %}x{% endif %}{% for i in nope %}x{% endfor %}"
                           "{{ nope|length }}{{ d.missing is defined }}",
                           {{"d", json::object()}}),
                    "[]False0False");
  BOOST_CHECK(render_error("{{ nope.attr }}") == TemplateError::Kind::Runtime);
  BOOST_CHECK(render_error("{{ nope() }}") == TemplateError::Kind::Runtime);
  BOOST_CHECK(render_error("{{ nope + 1 }}") == TemplateError::Kind::Runtime);
}

BOOST_AUTO_TEST_CASE(runtime_errors) {
  BOOST_CHECK(render_error("{{ 'a' + 1 }}") == TemplateError::Kind::Runtime);
  BOOST_CHECK(render_error("{{ 1 / 0 }}") == TemplateError::Kind::Runtime);
  BOOST_CHECK(render_error("{% for x in 5 %}{% endfor %}") == TemplateError::Kind::Runtime);
  BOOST_CHECK(render_error("{% set x = 1 %}{% set x.y = 2 %}") == TemplateError::Kind::Runtime);
  BOOST_CHECK(render_error("{{ {'a': x}|tojson }}") == TemplateError::Kind::Runtime);
  try {
    render("line1\n{{ raise_exception('bad role: ' ~ r) }}", {{"r", "x"}});
    BOOST_ERROR("no exception");
  } catch (const TemplateError& e) {
    BOOST_CHECK(e.kind() == TemplateError::Kind::Raised);
    BOOST_CHECK_EQUAL(std::string(e.what()), "bad role: x");
  }
  try {
    render("ok\n  {{ 'a' + 1 }}");
  } catch (const TemplateError& e) {
    BOOST_CHECK_EQUAL(e.line(), 2);
    BOOST_CHECK_EQUAL(e.column(), 10);
  }
}

BOOST_AUTO_TEST_CASE(broken_templates_give_positions) {
  expect_syntax_error("{% if x %}never closed");
  expect_syntax_error("{% for x in y %}{% endif %}");
  expect_syntax_error("{{ x ");
  expect_syntax_error("{% if x ");
  expect_syntax_error("{# unclosed comment");
  expect_syntax_error("{{ x|no_such_filter }}");
  expect_syntax_error("{{ x is no_such_test }}");
  expect_syntax_error("{{ 1 + }}");
  expect_syntax_error("{{ 'unterminated }}");
  expect_syntax_error("{% include 'x.html' %}");
  expect_syntax_error("{% endfor %}");
  expect_syntax_error("{{ a[1:2:3:4] }}");
  expect_syntax_error("{% break %}");
  expect_syntax_error("{{ x $ y }}");
  expect_syntax_error("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}");
  expect_syntax_error("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}");
  expect_syntax_error("{{ " + std::string(5000, '-') + "1 }}");
  expect_syntax_error("{{ x" + std::string(3000, '|') + " }}");
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "{% if x %}";
  expect_syntax_error(deep);
  try {
    ChatTemplate::compile("line one\nline two {{ x|nope }}");
  } catch (const TemplateError& e) {
    BOOST_CHECK_EQUAL(e.line(), 2);
    BOOST_CHECK_EQUAL(e.column(), 15);
  }
}

BOOST_AUTO_TEST_CASE(hostile_templates_are_stopped) {
  BOOST_CHECK(render_error("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}") ==
              TemplateError::Kind::Limit);
  BOOST_CHECK(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}") == TemplateError::Kind::Limit);
  BOOST_CHECK(render_error("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(100) %}"
                           "{% set ns.s = ns.s ~ ns.s %}{% endfor %}") == TemplateError::Kind::Limit);
  BOOST_CHECK(render_error("{{ 'x' * 10000000000 }}") == TemplateError::Kind::Limit);
  BOOST_CHECK(render_error("{{ 2 ** 1000000000000 }}") == TemplateError::Kind::Runtime);
  BOOST_CHECK(render_error("{{ range(10000000000)|length }}") == TemplateError::Kind::Limit);
}
