// DeepSeek's MLA for prefill chunks in the non-absorbed form (kernels/mla/mla_prefill.hpp), the rest of a mixed
// step (decode tokens, short chunks) through the absorbed kernel on compacted rows:
//
//   step rows:  | chunk A (300) | d | d | chunk B (64) | chunk C (5) |      min_queries 32
//   prefill:      A, B  -> pieces: gather latents, kv = lat x kv_b^T, mla_prefill_attention -> attn_ rows
//   absorbed:     d, d, C's 5 rows -> gathered to [7, heads, qk], the usual W_UK / absorbed MLA / W_UV,
//                 scattered back into attn_
//
// Scratch (no memory of its own beyond the lse rows): the step's other attention buffers are free on this
// path once the absorbed rows are done, and they are large (sized for max-num-batched-tokens rows of every
// head), so they hold a piece: qfull_ the expanded K_nope / V ([rows, heads, nope + v]), olat_ the gathered
// latents and k_pe ([rows, latent] then [rows, rope]). The absorbed rows use olat_ for their compact q (it is
// consumed before the absorbed kernel writes olat_) and qfull_ for their compact output (qfull_ is consumed by
// then). Everything is on one stream, so each reuse is ordered after the last read.
#include "kernels/mla/mla.hpp"
#include "kernels/mla/mla_prefill.hpp"
#include "model/cuda/deepseek_cuda.hpp"
#include "model/cuda/glue.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace troupe::cuda {

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

}  // namespace

void MlaPrefillStep::plan(std::span<const StepChunk> chunks, cudaStream_t s) {
  active_ = false;
  // Decode-only steps (the common case) leave at once, before any host work.
  if (min_q_ <= 0 || std::none_of(chunks.begin(), chunks.end(),
                                  [&](const StepChunk& c) { return int(c.tokens.size()) >= min_q_; }))
    return;
  std::vector<kernels::MlaPrefillChunk> pcs;
  std::vector<std::int32_t> idx, seq, pos;
  int t = 0, si = 0;
  for (const StepChunk& c : chunks) {
    const int n = int(c.tokens.size());
    if (n == 0) continue;
    if (n >= min_q_) {
      pcs.push_back({t, n, int(c.start_pos), si});
    } else {
      for (int i = 0; i < n; ++i) idx.push_back(t + i), seq.push_back(si), pos.push_back(int(c.start_pos) + i);
    }
    t += n, ++si;
  }
  if (pcs.empty()) return;
  plan_ = kernels::plan_mla_prefill(pcs, piece_rows_, tile_q_);
  absorbed_ = int(idx.size());
  static_assert(sizeof(kernels::MlaPrefillSeg) == 8 * sizeof(std::int32_t), "segments travel as int32");
  host_.clear();
  off_idx_ = 0;
  host_.insert(host_.end(), idx.begin(), idx.end());
  host_.insert(host_.end(), seq.begin(), seq.end());
  host_.insert(host_.end(), pos.begin(), pos.end());
  off_segs_ = int(host_.size());
  host_.resize(host_.size() + 8 * plan_.segs.size());
  std::memcpy(host_.data() + off_segs_, plan_.segs.data(), plan_.segs.size() * sizeof(kernels::MlaPrefillSeg));
  off_tiles_ = int(host_.size());
  host_.insert(host_.end(), plan_.tiles.begin(), plan_.tiles.end());
  const std::size_t bytes = host_.size() * 4;
  if (pinned_.bytes() < bytes) {  // grows rarely; the stream is idle here (see plan's contract)
    const std::size_t cap = std::max(bytes, std::size_t(1) << 16) * 2;
    pinned_ = PinnedBuffer(cap);
    dev_ = DeviceBuffer(cap);
  }
  std::memcpy(pinned_.get(), host_.data(), bytes);
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(dev_.get(), pinned_.get(), bytes, cudaMemcpyHostToDevice, s));
  active_ = true;
}

// TROUPE_MLA_PREFILL_MIN: chunks of at least this many tokens take the non-absorbed path (default 32, <= 0:
// never). TROUPE_MLA_PREFILL_PIECE: at most this many expanded keys per piece (default: what the scratch holds).
// TROUPE_MLA_PREFILL_TILE: query rows per CTA, 64 or 128 (for A/B timings).
void DeepseekCudaModel::init_prefill() {
  int min_q = env_int("TROUPE_MLA_PREFILL_MIN", 32);
  // The compact q of the absorbed rows sits in olat_: qk <= latent keeps it inside.
  if (!kernels::mla_prefill_supported(nope_, rope_, v_) || kvr_ % 8 || rope_ % 8 || kvr_ < qk_) min_q = 0;
  const std::size_t T = std::size_t(max_tokens_), hd = std::size_t(heads_);
  std::size_t rows = std::min(T * hd * std::size_t(row_) / (hd * std::size_t(nope_ + v_)),  // qfull_
                              T * hd * std::size_t(kvr_) / std::size_t(row_));               // olat_
  const int cap = env_int("TROUPE_MLA_PREFILL_PIECE", 0);
  if (cap > 0) rows = std::min(rows, std::size_t(cap));
  rows = std::min<std::size_t>(rows, 1 << 24);
  int tile_q = env_int("TROUPE_MLA_PREFILL_TILE", kernels::kMlaPrefillTileQ);
  if (!kernels::mla_prefill_tile_ok(tile_q)) tile_q = kernels::kMlaPrefillTileQ;
  prefill_.configure(min_q, int(rows), tile_q);
  if (min_q > 0)
    spdlog::info("cuda mla: chunks of >= {} tokens prefill in the non-absorbed form, {} keys per piece", min_q, rows);
}

void DeepseekCudaModel::prepare_step(std::span<const StepChunk> chunks) { prefill_.plan(chunks, stream_); }

void DeepseekCudaModel::prefill_attention(const Layer& L, const bf16* cache, const kernels::AttnBatch& b) {
  const long long kvb_head = (long long)(nope_ + v_) * kvr_;
  const int Ta = prefill_.absorbed_rows();
  if (Ta > 0) {
    bf16* qc = olat_;  // [Ta, heads, qk]
    gather_rows_bf16(q_, prefill_.absorbed_idx(), Ta, heads_ * qk_, qc, stream_);
    gemm_->bf16_batched(qc, heads_ * qk_, qk_, L.kv_b, kvr_, kvb_head, qfull_, heads_ * row_, row_, heads_, Ta, kvr_,
                        nope_, /*w_transposed=*/true, stream_);
    TROUPE_CUDA_CHECK(cudaMemcpy2DAsync(qfull_ + kvr_, std::size_t(row_) * 2, qc + nope_, std::size_t(qk_) * 2,
                                        std::size_t(rope_) * 2, std::size_t(Ta) * heads_, cudaMemcpyDeviceToDevice,
                                        stream_));
    kernels::AttnBatch ab = b;
    ab.num_tokens = Ta;
    ab.token_seq = prefill_.absorbed_seq();
    ab.positions = prefill_.absorbed_pos();
    ab.slot_mapping = nullptr;  // the attention kernels never read it
    kernels::mla_attention_absorbed(qfull_, heads_, kvr_, rope_, cache, ab, scale_, mla_ws_, olat_, stream_);
    bf16* ac = qfull_;  // [Ta, heads, v]
    gemm_->bf16_batched(olat_, heads_ * kvr_, kvr_, L.kv_b + std::size_t(nope_) * kvr_, kvr_, kvb_head, ac,
                        heads_ * v_, v_, heads_, Ta, v_, kvr_, /*w_transposed=*/false, stream_);
    kernels::scatter_rows_bf16(ac, prefill_.absorbed_idx(), Ta, heads_ * v_, attn_, stream_);
  }
  bf16* lat = olat_;
  bf16* kpe = olat_ + std::size_t(prefill_.piece_rows()) * kvr_;
  const kernels::MlaPrefillDims d{heads_, nope_, rope_, v_};
  for (const kernels::MlaPrefillPiece& p : prefill_.pieces()) {
    kernels::mla_prefill_gather(cache, kvr_, rope_, b, prefill_.segs() + p.seg0, p.num_segs, p.rows, lat, kpe,
                                stream_);
    // m rounded up to 128 rows (inside the scratch): a few GEMM shapes for cuBLASLt's per-shape cache instead of
    // one per context length. The extra rows expand stale latents that no segment reads.
    const int m = std::min((p.rows + 127) / 128 * 128, prefill_.piece_rows());
    gemm_->bf16(lat, L.kv_b, qfull_, kernels::OutType::bf16, m, heads_ * (nope_ + v_), kvr_, stream_);
    kernels::mla_prefill_attention(q_, d, qfull_, kpe, prefill_.segs(), prefill_.tiles() + p.tile0, p.num_tiles,
                                   prefill_.tile_q(), scale_, mla_lse_, attn_, stream_);
  }
}

}  // namespace troupe::cuda
