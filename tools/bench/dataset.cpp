#include "tools/bench/dataset.hpp"

#include <cmath>
#include <stdexcept>

namespace troupe::bench {

std::int64_t uniform_int(std::mt19937_64& rng, std::int64_t lo, std::int64_t hi) {
  auto span = static_cast<std::uint64_t>(hi - lo) + 1;
  if (span == 0) return static_cast<std::int64_t>(rng());  // the whole 64-bit range
  std::uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  std::uint64_t x;
  do x = rng();
  while (x >= limit);
  return lo + static_cast<std::int64_t>(x % span);
}

int positive_normal_int(std::mt19937_64& rng, double mean, double stddev) {
  for (;;) {
    // Box-Muller on two uniforms in (0, 1].
    double u1 = (double(rng() >> 11) + 1.0) / 9007199254740992.0;
    double u2 = double(rng() >> 11) / 9007199254740992.0;
    double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
    auto v = static_cast<long long>(mean + stddev * z);  // int() truncates toward zero
    if (v > 0) return static_cast<int>(std::min<long long>(v, 1 << 30));
  }
}

namespace {

constexpr int kPrintableFirst = 0x20, kPrintableCount = 0x7f - 0x20;  // ' ' .. '~'

using Vocab = PromptVocab;

// vLLM's gen_prompt_decode_to_target_len: decode, re-encode, then pad with random ids or truncate until
// the re-encoded length is the target (at most 10 tries; the mismatch is then accepted).
std::string decode_to_target(const Vocab& v, std::vector<std::int32_t> ids, int target, int* actual,
                             std::mt19937_64& rng) {
  std::string prompt;
  for (int tries = 10;; --tries) {
    prompt = v.tok->decode(ids, false);
    ids = v.tok->encode(prompt, false);
    if (tries <= 0 || int(ids.size()) == target) break;
    if (int(ids.size()) < target) {
      while (int(ids.size()) < target) ids.push_back(std::int32_t(uniform_int(rng, 0, v.size - 1)));
    } else {
      ids.resize(target);
    }
  }
  *actual = int(ids.size());
  return prompt;
}

std::vector<std::int32_t> cycle_ids(const Vocab& v, std::uint64_t offset, int len) {
  std::vector<std::int32_t> ids(len);
  for (int j = 0; j < len; ++j) ids[j] = v.allowed[(offset + j) % v.allowed.size()];
  return ids;
}

std::string cycle_bytes(std::uint64_t offset, int len) {
  std::string s(len, ' ');
  for (int j = 0; j < len; ++j) s[j] = char(kPrintableFirst + (offset + j) % kPrintableCount);
  return s;
}

std::string random_prefix(const Vocab& v, int len, std::mt19937_64& rng) {
  if (len <= 0) return {};
  if (!v.tok) {
    std::string s(len, ' ');
    for (auto& c : s) c = char(kPrintableFirst + uniform_int(rng, 0, kPrintableCount - 1));
    return s;
  }
  std::vector<std::int32_t> ids(len);
  for (auto& id : ids) id = v.allowed[uniform_int(rng, 0, std::int64_t(v.allowed.size()) - 1)];
  int actual = 0;
  return decode_to_target(v, ids, len, &actual, rng);
}

}  // namespace

PromptVocab::PromptVocab(const Tokenizer* t) : tok(t), size(kPrintableCount) {
  if (!tok) return;
  size = tok->vocab_size();
  for (std::int32_t id = 0; id < size; ++id)
    if (!tok->is_special(id) && !tok->id_to_token(id).empty()) allowed.push_back(id);
  if (allowed.empty()) throw std::invalid_argument("the tokenizer has no ordinary tokens");
  num_special = int(tok->encode("", true).size() - tok->encode("", false).size());
}

std::string sequential_prompt(const PromptVocab& v, int len, std::uint64_t offset, int* actual_len,
                              std::mt19937_64& rng) {
  if (!v.tok) {
    *actual_len = len;
    return cycle_bytes(offset, len);
  }
  return decode_to_target(v, cycle_ids(v, offset, len), len, actual_len, rng);
}

std::vector<SampleRequest> sample_random(const RandomDatasetOptions& o, const Tokenizer* tok) {
  if (!(o.range_ratio >= 0 && o.range_ratio < 1)) throw std::invalid_argument("input_range_ratio must be in [0, 1).");
  if (o.num_prompts < 1) throw std::invalid_argument("--num-prompts must be at least 1");
  Vocab v(tok);
  int real_input = std::max(0, o.input_len - v.num_special);
  auto in_lo = static_cast<std::int64_t>(std::floor(real_input * (1 - o.range_ratio)));
  auto in_hi = static_cast<std::int64_t>(std::ceil(real_input * (1 + o.range_ratio)));
  auto out_lo = std::max<std::int64_t>(1, std::int64_t(std::floor(o.output_len * (1 - o.range_ratio))));
  auto out_hi = std::max<std::int64_t>(1, std::int64_t(std::ceil(o.output_len * (1 + o.range_ratio))));
  if (o.prefix_len + in_lo < 1)
    throw std::invalid_argument("--random-input-len is too small: the minimum possible total input tokens (prefix + "
                                "sampled) is " + std::to_string(o.prefix_len + in_lo) + "; it must be at least 1");
  std::mt19937_64 rng(o.seed);
  // Drawn in vLLM's order: all input lengths, all output lengths, all offsets, then the prefix.
  std::vector<std::int64_t> in_lens(o.num_prompts), out_lens(o.num_prompts), offsets(o.num_prompts);
  for (auto& x : in_lens) x = uniform_int(rng, in_lo, in_hi);
  for (auto& x : out_lens) x = uniform_int(rng, out_lo, out_hi);
  for (auto& x : offsets) x = uniform_int(rng, 0, v.size - 1);
  std::string prefix = random_prefix(v, o.prefix_len, rng);

  std::vector<SampleRequest> out(o.num_prompts);
  for (int i = 0; i < o.num_prompts; ++i) {
    auto& r = out[i];
    r.expected_output_len = int(out_lens[i]);
    std::uint64_t start = std::uint64_t(offsets[i]) + i;  // vLLM: (offset + index + arange(len)) % |allowed|
    if (!tok) {
      r.prompt = prefix + cycle_bytes(start, int(in_lens[i]));
      r.prompt_len = int(r.prompt.size());
      continue;
    }
    auto ids = tok->encode(prefix, false);
    auto inner = cycle_ids(v, start, int(in_lens[i]));
    ids.insert(ids.end(), inner.begin(), inner.end());
    r.prompt = decode_to_target(v, ids, o.prefix_len + int(in_lens[i]), &r.prompt_len, rng);
  }
  return out;
}

}  // namespace troupe::bench
