#include "runtime/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>
#include <variant>

namespace troupe {
namespace {

enum class Kind { String, Int, OptInt, UInt64, Double, Bool, Enum };

// A parsed value before it is stored; monostate is "none" for optional keys.
using Value = std::variant<std::monostate, std::string, long long, std::uint64_t, double, bool>;

constexpr double kNoMax = std::numeric_limits<double>::infinity();
constexpr double kIntMax = std::numeric_limits<int>::max();  // ints land in `int` fields: never overflow them

struct Range {
  double lo = -kNoMax, hi = kNoMax;
  bool lo_open = false;               // (lo, hi] instead of [lo, hi]
  std::vector<std::string> allowed;   // Enum: the strings; Int: the only legal values
};
Range at_least(double lo, double hi = kIntMax) { return {lo, hi, false, {}}; }
Range open_closed(double lo, double hi) { return {lo, hi, true, {}}; }
Range one_of(std::vector<std::string> v) { return {-kNoMax, kNoMax, false, std::move(v)}; }

// How a key reaches its field; `show` formats the current value (so defaults come from Config's own
// initialisers and cannot drift from the table).
struct Access {
  std::function<void(Config&, const Value&)> set;
  std::function<std::string(const Config&)> show;
};

std::string show_double(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form: 0.9, 200, 1e-05
  return std::string(buf, r.ptr);
}
std::string show(const std::string& s) { return s.empty() ? "\"\"" : s; }
std::string show(int v) { return std::to_string(v); }
std::string show(std::uint64_t v) { return std::to_string(v); }
std::string show(double v) { return show_double(v); }
std::string show(bool v) { return v ? "true" : "false"; }
std::string show(const std::optional<int>& v) { return v ? std::to_string(*v) : "none"; }

template <class T>
void assign(T& dst, const Value& v) {
  if constexpr (std::is_same_v<T, std::optional<int>>) {
    if (std::holds_alternative<std::monostate>(v)) dst.reset();
    else dst = static_cast<int>(std::get<long long>(v));
  } else if constexpr (std::is_same_v<T, int>) {
    dst = static_cast<int>(std::get<long long>(v));
  } else {
    dst = std::get<T>(v);
  }
}

template <class T>
Access field(T Config::*m) {
  return {[m](Config& c, const Value& v) { assign(c.*m, v); }, [m](const Config& c) { return show(c.*m); }};
}
Access sim_field(double SimCostModel::*m) {
  return {[m](Config& c, const Value& v) { assign(c.sim.*m, v); },
          [m](const Config& c) { return show(c.sim.*m); }};
}

struct KeySpec {
  std::string name;  // vLLM's dashed flag spelling
  Kind kind;
  Access access;
  std::string help;
  Range range = {};
  std::string default_text = {};  // set where the default is derived, not a literal
};

const std::vector<KeySpec>& key_table() {
  using K = Kind;
  static const std::vector<KeySpec> table = {
      {"model", K::String, field(&Config::model), "model path or name; empty = the embedded default"},
      {"served-model-name", K::String, field(&Config::served_model_name),
       "model name reported by the API", {}, "the value of model, or troupe-default"},
      {"tensor-parallel-size", K::Int, field(&Config::tensor_parallel_size),
       "GPUs one model instance is split across", at_least(1)},
      {"max-model-len", K::Int, field(&Config::max_model_len), "longest prompt + output, in tokens",
       at_least(1), "the model's max_position_embeddings, or 4096 without a model"},
      {"max-num-seqs", K::Int, field(&Config::max_num_seqs), "most sequences in one scheduler step",
       at_least(1)},
      {"max-num-batched-tokens", K::Int, field(&Config::max_num_batched_tokens),
       "most tokens in one scheduler step (below max-model-len = chunked prefill)", at_least(1)},
      {"gpu-memory-utilization", K::Double, field(&Config::gpu_memory_utilization),
       "fraction of GPU memory Troupe may use", open_closed(0, 1)},
      {"block-size", K::Int, field(&Config::block_size), "tokens per KV-cache block",
       one_of({"1", "8", "16", "32", "64", "128"})},
      {"enable-prefix-caching", K::Bool, field(&Config::enable_prefix_caching),
       "reuse KV-cache blocks of shared prompt prefixes"},
      {"load-format", K::Enum, field(&Config::load_format), "how weights are loaded (dummy = random)",
       one_of({"auto", "dummy"})},
      {"dtype", K::Enum, field(&Config::dtype), "activation and weight data type",
       one_of({"auto", "bfloat16", "float16", "float32"})},
      {"kv-cache-dtype", K::Enum, field(&Config::kv_cache_dtype), "KV-cache data type",
       one_of({"auto", "fp8", "fp8_e4m3", "bfloat16"})},
      {"reasoning-parser", K::Enum, field(&Config::reasoning_parser),
       "splits reasoning text out of replies (empty = off)", one_of({"", "deepseek_r1"})},
      {"host", K::String, field(&Config::host), "address the HTTP server binds"},
      {"port", K::Int, field(&Config::port), "HTTP port (0 = any free port, printed at start)",
       at_least(0, 65535)},
      {"num-gpu-blocks-override", K::OptInt, field(&Config::num_gpu_blocks_override),
       "fixed KV-cache block count instead of profiling", at_least(1)},
      {"seed", K::UInt64, field(&Config::seed), "random seed for sampling"},
      {"skip-tokenizer-init", K::Bool, field(&Config::skip_tokenizer_init),
       "load no tokenizer: prompts must be token ids, replies carry token ids and empty text"},
      {"enforce-eager", K::Bool, field(&Config::enforce_eager),
       "cuda backend: run every step eagerly (no CUDA graphs for decode batches)"},
      {"backend", K::Enum, field(&Config::backend), "execution backend", one_of({"cuda", "cpu", "sim"})},
      {"nodes", K::Int, field(&Config::nodes), "hosts the deployment spans, the head included", at_least(1)},
      {"join-host", K::String, field(&Config::join_host), "address the join port binds (nodes > 1)", {},
       "the value of host"},
      {"join-port", K::Int, field(&Config::join_port), "TCP port worker nodes join (0 = any free port)",
       at_least(0, 65535)},
      {"join-token", K::String, field(&Config::join_token),
       "shared secret worker nodes prove to join (or env TROUPE_JOIN_TOKEN)", {}, "$TROUPE_JOIN_TOKEN"},
      {"node-timeout-seconds", K::Double, field(&Config::node_timeout_seconds),
       "how long startup waits for the worker nodes", open_closed(0, kNoMax)},
      {"heartbeat-interval-ms", K::Int, field(&Config::heartbeat_interval_ms),
       "interval of the head's heartbeats to each node", at_least(10)},
      {"heartbeat-timeout-ms", K::Int, field(&Config::heartbeat_timeout_ms),
       "a node (or head) silent this long is lost; above heartbeat-interval-ms", at_least(50)},
      {"http-threads", K::Int, field(&Config::http_threads), "threads serving HTTP", at_least(1)},
      {"max-request-body-bytes", K::Int, field(&Config::max_request_body_bytes),
       "larger request bodies are answered 413", at_least(1024)},
      {"max-header-bytes", K::Int, field(&Config::max_header_bytes), "larger request headers are answered 431",
       at_least(1024)},
      {"http-idle-timeout-seconds", K::Double, field(&Config::http_idle_timeout_seconds),
       "an idle keep-alive connection is closed after this long", at_least(0.1, kNoMax)},
      {"http-read-timeout-seconds", K::Double, field(&Config::http_read_timeout_seconds),
       "a request that has not fully arrived after this long is answered 408", at_least(0.1, kNoMax)},
      {"max-waiting-requests", K::Int, field(&Config::max_waiting_requests),
       "queued requests before new ones get 503", at_least(1)},
      {"shutdown-grace-seconds", K::Double, field(&Config::shutdown_grace_seconds),
       "time in-flight work gets after SIGTERM", at_least(0, kNoMax)},
      {"log-level", K::Enum, field(&Config::log_level), "log verbosity",
       one_of({"trace", "debug", "info", "warn", "error"})},
      {"sim-step-us", K::Double, sim_field(&SimCostModel::step_us), "sim backend: fixed cost of a step (us)",
       at_least(0, kNoMax)},
      {"sim-prefill-token-us", K::Double, sim_field(&SimCostModel::prefill_token_us),
       "sim backend: cost per prefill token (us)", at_least(0, kNoMax)},
      {"sim-decode-seq-us", K::Double, sim_field(&SimCostModel::decode_seq_us),
       "sim backend: cost per decoding sequence (us)", at_least(0, kNoMax)},
      {"sim-vocab-size", K::Int, field(&Config::sim_vocab_size), "sim backend: vocabulary size",
       at_least(2)},
  };
  return table;
}

// vLLM accepts max_num_seqs as well as max-num-seqs: one canonical spelling for lookup.
std::string normalize(std::string_view name) {
  std::string s(name);
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

const KeySpec* find_key(std::string_view canonical) {
  for (const auto& k : key_table())
    if (k.name == canonical) return &k;
  return nullptr;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

[[noreturn]] void unknown_key(std::string_view given, const std::string& where) {
  std::string canonical = normalize(given);
  const KeySpec* best = nullptr;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  for (const auto& k : key_table()) {
    std::size_t d = edit_distance(canonical, k.name);
    if (d < best_d) best_d = d, best = &k;
  }
  std::string msg = "unknown config key '" + std::string(given) + "'";
  // A suggestion only when it is plausibly a typo: a few edits, fewer for short names.
  if (best && best_d <= std::max<std::size_t>(2, canonical.size() / 5))
    msg += " (did you mean '" + best->name + "'?)";
  throw ConfigError(msg + where);
}

const KeySpec& lookup(std::string_view given, const std::string& where) {
  if (const KeySpec* k = find_key(normalize(given))) return *k;
  unknown_key(given, where);
}

std::string join_allowed(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + (s.empty() ? std::string("\"\"") : s);
  return out;
}

// What a key accepts, in words; used both in errors and in help.
std::string expected(const KeySpec& k) {
  const Range& r = k.range;
  if (!r.allowed.empty()) return "one of " + join_allowed(r.allowed);
  switch (k.kind) {
    case Kind::String: return "a string";
    case Kind::Bool: return "true or false";
    case Kind::UInt64: return "an unsigned integer";
    case Kind::Int:
    case Kind::OptInt: {
      std::string s = "an integer " + (r.hi >= kIntMax ? ">= " + show_double(r.lo)
                                                       : "in [" + show_double(r.lo) + ", " + show_double(r.hi) + "]");
      return k.kind == Kind::OptInt ? s + " (or none)" : s;
    }
    case Kind::Double:
      if (r.hi == kNoMax) return "a number " + std::string(r.lo_open ? "> " : ">= ") + show_double(r.lo);
      return "a number in " + std::string(r.lo_open ? "(" : "[") + show_double(r.lo) + ", " + show_double(r.hi) + "]";
    case Kind::Enum: break;  // always has `allowed`
  }
  return "a value";
}

[[noreturn]] void bad_value(const KeySpec& k, const std::string& got, const std::string& where) {
  throw ConfigError("config key '" + k.name + "': expected " + expected(k) + ", got " + got + where);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<bool> parse_bool(std::string_view text) {
  std::string t = lower(text);
  if (t == "true" || t == "yes" || t == "on" || t == "1") return true;
  if (t == "false" || t == "no" || t == "off" || t == "0") return false;
  return std::nullopt;
}

template <class T>
std::optional<T> parse_number(std::string_view text) {
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

bool in_range(const Range& r, double v) {
  if (!std::isfinite(v)) return false;
  bool lo_ok = r.lo_open ? v > r.lo : v >= r.lo;
  return lo_ok && v <= r.hi;
}

// Parses one scalar's text per the key's kind and checks its range; the error quotes the text.
Value parse_scalar(const KeySpec& k, std::string_view text, const std::string& where) {
  const std::string got = "'" + std::string(text) + "'";
  const Range& r = k.range;
  switch (k.kind) {
    case Kind::String: return std::string(text);
    case Kind::Enum:
      if (std::find(r.allowed.begin(), r.allowed.end(), text) == r.allowed.end()) bad_value(k, got, where);
      return std::string(text);
    case Kind::Bool:
      if (auto b = parse_bool(text)) return *b;
      bad_value(k, got, where);
    case Kind::UInt64:
      if (auto u = parse_number<std::uint64_t>(text)) return *u;
      bad_value(k, got, where);
    case Kind::Double:
      if (auto d = parse_number<double>(text); d && in_range(r, *d)) return *d;
      bad_value(k, got, where);
    case Kind::Int:
    case Kind::OptInt: {
      if (k.kind == Kind::OptInt && (lower(text) == "none" || lower(text) == "null")) return std::monostate{};
      auto i = parse_number<long long>(text);
      if (!i) bad_value(k, got, where);
      if (!r.allowed.empty()) {
        if (std::find(r.allowed.begin(), r.allowed.end(), std::to_string(*i)) == r.allowed.end())
          bad_value(k, got, where);
      } else if (!in_range(r, static_cast<double>(*i))) {
        bad_value(k, got, where);
      }
      return *i;
    }
  }
  bad_value(k, got, where);
}

std::string node_kind(const YAML::Node& n) {
  if (n.IsSequence()) return "a YAML sequence";
  if (n.IsMap()) return "a YAML mapping";
  if (n.IsNull()) return "an empty value";
  return "'" + n.Scalar() + "'";
}

std::string at(const std::string& source, const YAML::Node& n) {
  return " (at " + source + ":" + std::to_string(n.Mark().line + 1) + ")";
}

Value yaml_value(const KeySpec& k, const YAML::Node& v, const std::string& where) {
  if (v.IsNull()) {
    // `key:` with nothing after it: "none" for optionals, "" for strings; a number must be given.
    if (k.kind == Kind::OptInt) return std::monostate{};
    if (k.kind == Kind::String) return std::string();
    if (k.kind == Kind::Enum) return parse_scalar(k, "", where);
  }
  if (!v.IsScalar()) bad_value(k, node_kind(v), where);
  return parse_scalar(k, v.Scalar(), where);
}

// Every assignment from the user goes through here, so Config::is_set knows what was given.
void set_key(Config& c, const KeySpec& k, const Value& v) {
  k.access.set(c, v);
  if (!c.is_set(k.name)) c.explicit_keys.push_back(k.name);
}

void apply_yaml(Config& c, const YAML::Node& root, const std::string& source) {
  if (!root || root.IsNull()) return;  // an empty file: defaults only
  if (!root.IsMap())
    throw ConfigError("config " + source + ": expected a mapping of key: value at the top level, got " +
                      node_kind(root) + at(source, root));
  std::set<std::string> seen;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar())
      throw ConfigError("config " + source + ": expected a key name, got " + node_kind(kv.first) +
                        at(source, kv.first));
    const std::string where = at(source, kv.first);
    const KeySpec& k = lookup(kv.first.Scalar(), where);
    // yaml-cpp keeps both copies of a duplicated key; say so rather than silently picking one.
    if (!seen.insert(k.name).second)
      throw ConfigError("config key '" + k.name + "': given twice" + where);
    set_key(c, k, yaml_value(k, kv.second, where));
  }
}

void apply_args(Config& c, const std::vector<std::string>& args) {
  const std::string where = " (command line)";
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() <= 2 || a.compare(0, 2, "--") != 0)
      throw ConfigError("unexpected argument '" + a + "': config options are --key value");
    std::string body = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      inline_value = body.substr(eq + 1);
      body.resize(eq);
    }
    std::string canonical = normalize(body);
    const KeySpec* k = find_key(canonical);
    if (!k && canonical.rfind("no-", 0) == 0) {
      const KeySpec* neg = find_key(canonical.substr(3));
      if (neg && neg->kind == Kind::Bool) {
        if (inline_value)
          throw ConfigError("config key '" + neg->name + "': --" + body + " takes no value" + where);
        set_key(c, *neg, false);
        continue;
      }
      if (neg)
        throw ConfigError("config key '" + neg->name + "': --" + body + " is only for true/false keys (expected " +
                          expected(*neg) + ")" + where);
    }
    if (!k) unknown_key(body, where);
    std::string text;
    if (inline_value) {
      text = *inline_value;
    } else if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
      text = args[++i];  // for a bool, the next word is its value: positional args are errors anyway
    } else if (k->kind == Kind::Bool) {
      text = "true";  // bare --flag
    } else {
      throw ConfigError("config key '" + k->name + "': missing value after --" + body + " (expected " +
                        expected(*k) + ")");
    }
    set_key(c, *k, parse_scalar(*k, text, where));
  }
}

// The multi-node keys: checked only where they matter (nodes > 1), so a one-node config never needs them.
void finish_nodes(Config& c) {
  if (c.join_host.empty()) c.join_host = c.host;
  if (c.join_token.empty())
    if (const char* env = std::getenv("TROUPE_JOIN_TOKEN")) c.join_token = env;
  if (c.nodes == 1) return;
  if (c.join_token.empty())
    throw ConfigError("config key 'join-token': required when nodes > 1 (or set TROUPE_JOIN_TOKEN)");
  if (c.heartbeat_timeout_ms <= c.heartbeat_interval_ms)
    throw ConfigError("config key 'heartbeat-timeout-ms': expected more than heartbeat-interval-ms (" +
                      std::to_string(c.heartbeat_interval_ms) + "), got " + std::to_string(c.heartbeat_timeout_ms));
  // The cpu backend's tensor-parallel all-reduce is in process memory: its ranks cannot span hosts.
  if (c.backend == "cpu")
    throw ConfigError("config key 'nodes': the cpu backend runs in one process (nodes must be 1), got " +
                      std::to_string(c.nodes));
}

void finish(Config& c) {
  if (c.served_model_name.empty()) c.served_model_name = c.model.empty() ? "troupe-default" : c.model;
  if (c.tensor_parallel_size % c.nodes != 0)
    throw ConfigError("config key 'tensor-parallel-size': expected a multiple of nodes (" +
                      std::to_string(c.nodes) + "), got " + std::to_string(c.tensor_parallel_size));
  finish_nodes(c);
}

Config build(const YAML::Node& root, const std::string& source, const std::vector<std::string>& args) {
  Config c;
  apply_yaml(c, root, source);
  apply_args(c, args);  // after YAML: the command line wins
  finish(c);
  return c;
}

YAML::Node parse_yaml(std::istream& in, const std::string& source) {
  try {
    return YAML::Load(in);
  } catch (const YAML::ParserException& e) {
    throw ConfigError("config file " + source + " line " + std::to_string(e.mark.line + 1) +
                      ": YAML does not parse: " + e.msg);
  }
}

}  // namespace

bool Config::is_set(const std::string& key) const {
  return std::find(explicit_keys.begin(), explicit_keys.end(), key) != explicit_keys.end();
}

Config load_config(const std::string& yaml_path, const std::vector<std::string>& args) {
  if (yaml_path.empty()) return build(YAML::Node(), "", args);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(yaml_path, ec))
    throw ConfigError("config file " + yaml_path +
                      (std::filesystem::exists(yaml_path, ec) ? " is not a regular file" : " does not exist"));
  std::ifstream in(yaml_path);
  if (!in) throw ConfigError("config file " + yaml_path + " cannot be read");
  return build(parse_yaml(in, yaml_path), yaml_path, args);
}

Config parse_config_text(const std::string& yaml_text, const std::vector<std::string>& args) {
  std::istringstream in(yaml_text);
  return build(parse_yaml(in, "<text>"), "<text>", args);
}

std::string config_help() {
  const Config defaults;
  std::vector<std::pair<std::string, std::string>> rows;
  std::size_t width = 0;
  for (const auto& k : key_table()) {
    std::string flag = k.kind == Kind::Bool ? "  --[no-]" + k.name : "  --" + k.name + " VALUE";
    std::string def = k.default_text.empty() ? k.access.show(defaults) : k.default_text;
    rows.emplace_back(flag, k.help + "; " + expected(k) + " (default: " + def + ")");
    width = std::max(width, flag.size());
  }
  std::string out;
  for (const auto& [flag, text] : rows) out += flag + std::string(width + 3 - flag.size(), ' ') + text + "\n";
  return out;
}

}  // namespace troupe
