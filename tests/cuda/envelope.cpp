// The cpu oracle's own sensitivity, per prompt: its last-token logits under checkpoints whose RMSNorm weights
// are multiplied by (1 + eps * N(0, 1)) (eps about the size of one bf16 rounding), against the unperturbed ones.
// A MoE model whose router has near-tied experts moves by tens of percent on some prompts under such noise; the
// cuda check allows each prompt's rows that much (tests/cuda/cuda_check.cpp).
#include "model/cpu/cpu_model.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

using namespace troupe;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A copy of dir (config.json + model.safetensors) with every bf16 norm weight perturbed.
std::string perturbed_copy(const std::string& dir, float eps, unsigned seed) {
  std::string raw = read_file(dir + "/model.safetensors");
  std::uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  const auto header = nlohmann::json::parse(raw.substr(8, n));
  char* body = raw.data() + 8 + n;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (const auto& [name, t] : header.items()) {
    const bool norm = name.size() > 16 && (name.ends_with("layernorm.weight") || name == "model.norm.weight");
    if (!norm || t["dtype"] != "BF16") continue;
    const std::size_t b = t["data_offsets"][0], e = t["data_offsets"][1];
    for (std::size_t off = b; off < e; off += 2) {
      std::uint16_t v;
      std::memcpy(&v, body + off, 2);
      std::uint32_t u = std::uint32_t(v) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      f *= 1.0f + eps * normal(rng);
      std::memcpy(&u, &f, 4);
      v = std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
      std::memcpy(body + off, &v, 2);
    }
  }
  const std::string out = "/tmp/troupe_envelope_" + std::to_string(std::hash<std::string>{}(dir)) + "_" + std::to_string(seed);
  std::filesystem::create_directories(out);
  std::filesystem::copy_file(dir + "/config.json", out + "/config.json", std::filesystem::copy_options::overwrite_existing);
  std::ofstream(out + "/model.safetensors", std::ios::binary) << raw;
  return out;
}

}  // namespace

std::vector<float> oracle_envelope(const std::string& dir, const std::vector<std::vector<std::int32_t>>& prompts,
                                   const std::vector<std::vector<float>>& ref, float eps, int seeds) {
  std::vector<float> env(prompts.size(), 0.0f);
  for (int s = 1; s <= seeds; ++s) {
    cpu::CpuModelOptions o;
    o.model_dir = perturbed_copy(dir, eps, unsigned(s));
    o.num_blocks = 64;
    auto m = cpu::load_cpu_model(o);
    std::vector<std::vector<std::uint32_t>> tables;
    std::vector<cpu::Chunk> chunks;
    std::uint32_t next = 0;
    for (const auto& p : prompts) {
      tables.emplace_back();
      for (std::size_t b = 0; b < (p.size() + 15) / 16; ++b) tables.back().push_back(next++);
    }
    for (std::size_t i = 0; i < prompts.size(); ++i) chunks.push_back({prompts[i], 0, tables[i], true});
    auto got = m->forward(chunks);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      float scale = 1e-6f, d = 0;
      for (std::size_t v = 0; v < ref[i].size(); ++v) {
        scale = std::max(scale, std::abs(ref[i][v]));
        d = std::max(d, std::abs(ref[i][v] - got[i][v]));
      }
      env[i] = std::max(env[i], d / scale);
    }
  }
  return env;
}
