#include "actors/gpu_worker/sim_backend.hpp"

#include <chrono>
#include <string_view>
#include <thread>

namespace troupe {
namespace {

constexpr std::string_view kText =
  "Once upon a time, in a quiet town by the sea, there lived a small robot named Pip. Every morning Pip "
  "rolled to the harbour to count the boats, and every evening it counted the stars. One day a storm came "
  "and the boats did not return, so Pip climbed the lighthouse and turned on the lamp. ";

}  // namespace

std::int32_t SimBackend::token_at(std::int32_t first_token, std::uint64_t seed, std::size_t pos) {
  std::uint64_t start = (std::uint64_t(std::uint32_t(first_token)) * 2654435761ull + seed) % kText.size();
  return static_cast<unsigned char>(kText[(start + pos) % kText.size()]);
}

namespace {
SampleResult plain(std::int32_t token) {
  SampleResult s;
  s.token = token;
  return s;
}
}  // namespace

SampleResult SimBackend::fake_logprobs(std::int32_t token, std::int32_t top_n) {
  SampleResult s;
  s.token = token;
  if (top_n > 0) s.top.push_back({token, 0.0f});
  // The others walk the printable bytes after the token (the sim vocabulary is the 256 byte values).
  for (std::int32_t k = 1; std::int32_t(s.top.size()) < top_n; ++k)
    s.top.push_back({32 + (token - 32 + k + 95 * 4) % 95, -float(k)});
  return s;
}

std::vector<PositionLogprob> SimBackend::fake_prompt_logprobs(std::span<const std::int32_t> prompt, std::int32_t top_n) {
  std::vector<PositionLogprob> out;
  for (std::size_t i = 1; i < prompt.size(); ++i) {
    std::int32_t tok = prompt[i];
    auto rank = std::uint32_t(1 + i % 3);
    PositionLogprob p{-float(rank - 1), rank, {}};
    for (std::int32_t k = 0; k < top_n; ++k) {
      // Other ids: the printable bytes after the token (distinct for k < 94; N is at most 20).
      std::int32_t id = std::uint32_t(k) + 1 == rank ? tok : 32 + (tok - 32 + k + 1 + 95 * 4) % 95;
      p.top.push_back({id, -float(k)});
    }
    out.push_back(std::move(p));
  }
  return out;
}

double SimBackend::step_us(double step, double per_prefill_token, double per_decode_seq,
                           std::uint64_t prefill_tokens, std::uint64_t decode_seqs) {
  return step + per_prefill_token * double(prefill_tokens) + per_decode_seq * double(decode_seqs);
}

BackendInfo SimBackend::init(schema::WorkerInit::Reader init) {
  auto sim = init.getSim();
  step_us_ = sim.getStepUs();
  prefill_us_ = sim.getPrefillTokenUs();
  decode_us_ = sim.getDecodeSeqUs();
  return {"sim", init.getNumBlocks()};
}

SampledTokens SimBackend::execute(const std::vector<WorkerRequest*>& batch) {
  std::uint64_t prefill = 0, decode = 0;
  SampledTokens sampled;
  for (auto* r : batch) {
    bool decoding = r->num_scheduled == 1 && r->num_computed + 1 == r->tokens.size() && r->num_computed > 0;
    (decoding ? decode : prefill) += decoding ? 1 : r->num_scheduled;
    if (!r->sample_now()) continue;
    // Only the first token and the seed pick the text: a resumed request (prompt + outputs re-sent)
    // continues exactly where it was preempted.
    auto tok = token_at(r->tokens.front(), r->sampling_seed, r->tokens.size());
    sampled[r->id] = r->sampling.logprobs >= 0 ? fake_logprobs(tok, r->sampling.logprobs) : plain(tok);
    if (r->gathers_prompt_logprobs())
      sampled[r->id].prompt_logprobs = fake_prompt_logprobs(r->tokens, r->sampling.prompt_logprobs);
  }
  double us = step_us(step_us_, prefill_us_, decode_us_, prefill, decode);
  if (us > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::micro>(us));
  return sampled;
}

}  // namespace troupe
