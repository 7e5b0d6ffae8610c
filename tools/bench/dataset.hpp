#pragma once
// Prompt construction: vLLM's RandomDataset (benchmarks/datasets: random token ids offset per request,
// a shared random prefix, decode then re-encode to hit the target length) and llmperf's normally
// distributed lengths. Without a tokenizer (the byte-level `sim` vocabulary) a prompt is printable
// ASCII, one byte per token.
#include "model/tokenizer/tokenizer.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace troupe::bench {

struct SampleRequest {
  std::string prompt;
  int prompt_len = 0;           // tokens, as the dataset built it
  int expected_output_len = 0;  // becomes max_tokens
};

struct RandomDatasetOptions {
  int num_prompts = 1000;
  int input_len = 1024, output_len = 128, prefix_len = 0;
  double range_ratio = 0.0;  // lengths uniform in [floor(len*(1-r)), ceil(len*(1+r))]
  std::uint64_t seed = 0;
};

// Deterministic for a seed (the generator is our own, so prompts are not byte-identical to vLLM's for
// the same seed; the construction is). Throws std::invalid_argument for impossible lengths.
std::vector<SampleRequest> sample_random(const RandomDatasetOptions& o, const Tokenizer* tok);

// Integers uniform in [lo, hi] with no modulo bias, independent of the standard library's distributions.
std::int64_t uniform_int(std::mt19937_64& rng, std::int64_t lo, std::int64_t hi);
// llmperf's sample_random_positive_int: int(gauss(mean, stddev)), drawn again until positive.
int positive_normal_int(std::mt19937_64& rng, double mean, double stddev);

// The ids a prompt may use: every non-special token (or the 95 printable ASCII bytes without a
// tokenizer). Built once: a large vocabulary takes a while to scan.
struct PromptVocab {
  explicit PromptVocab(const Tokenizer* tok);
  const Tokenizer* tok = nullptr;
  std::vector<std::int32_t> allowed;
  std::int32_t size;     // the vocabulary size (random padding ids are drawn below it, as vLLM does)
  int num_special = 0;   // tokens encode() adds around any text (bos/eos)
};

// The prompt text for `len` tokens starting at position `offset` of the allowed-token cycle; the
// length it re-encodes to goes to *actual_len.
std::string sequential_prompt(const PromptVocab& v, int len, std::uint64_t offset, int* actual_len,
                              std::mt19937_64& rng);

}  // namespace troupe::bench
