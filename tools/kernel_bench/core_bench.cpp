// kernels/core: DeepSeek-V3 (hidden 7168) and Llama-3-8B (32 heads, 8 kv heads, head dim 128) shapes.
// Bytes are each kernel's unique reads + writes; paged attention counts the K/V rows read once.
#include "kernels/core/ops.hpp"
#include "tools/kernel_bench/kernel_bench.hpp"

#include <string>
#include <vector>

namespace troupe::kernel_bench {
namespace {

using kernels::bf16;

std::string nxd(int n, int d) { return "n=" + std::to_string(n) + " d=" + std::to_string(d); }

KERNEL_BENCH(core_norms) {
  const int hidden = 7168;
  for (int n : {1, 64, 256, 4096}) {
    Buffer res(std::size_t(n) * hidden * 4), x(std::size_t(n) * hidden * 2), w(hidden * 2), out(std::size_t(n) * hidden * 2);
    fill_f32(res.as<float>(), std::size_t(n) * hidden, -1, 1, 1);
    fill_bf16(x.as<void>(), std::size_t(n) * hidden, -1, 1, 2);
    fill_bf16(w.as<void>(), hidden, 0.5f, 1.5f, 3);
    const double elems = double(n) * hidden;
    bench.time("add_rmsnorm", nxd(n, hidden), elems * (4 + 4 + 2 + 2) + hidden * 2, 0, Peak::memory, [&](cudaStream_t s) {
      kernels::add_rmsnorm(res.as<float>(), x.as<bf16>(), w.as<bf16>(), 1e-6f, n, hidden, out.as<bf16>(), s);
    });
    if (n >= 64) {
      Buffer ids(std::size_t(n) * 4), table(std::size_t(129280) * hidden * 2);
      fill_i32(ids.as<std::int32_t>(), n, 0, 129279, 4);
      bench.time("embedding", nxd(n, hidden), elems * (2 + 4), 0, Peak::memory, [&](cudaStream_t s) {
        kernels::embedding(table.as<bf16>(), ids.as<std::int32_t>(), n, hidden, res.as<float>(), s);
      });
      bench.time("quant_fp8_group128", nxd(n, hidden), elems * (2 + 1) + elems / 128 * 4, 0, Peak::memory,
                 [&](cudaStream_t s) {
                   kernels::quant_fp8_group128(x.as<bf16>(), n, hidden, out.as<kernels::fp8>(), res.as<float>(), s);
                 });
      bench.time("to_bf16", nxd(n, hidden), elems * (4 + 2), 0, Peak::memory, [&](cudaStream_t s) {
        kernels::to_bf16(res.as<float>(), std::size_t(n) * hidden, out.as<bf16>(), s);
      });
    }
  }
  const int n = 4096;  // MLA's kv_a latent norm: 512 of every 576-wide row
  Buffer x(std::size_t(n) * 576 * 2), w(512 * 2), out(std::size_t(n) * 512 * 2);
  fill_bf16(x.as<void>(), std::size_t(n) * 576, -1, 1, 5);
  fill_bf16(w.as<void>(), 512, 0.5f, 1.5f, 6);
  bench.time("rmsnorm strided", "n=4096 d=512/576", double(n) * 512 * 4, 0, Peak::memory, [&](cudaStream_t s) {
    kernels::rmsnorm(x.as<bf16>(), 576, w.as<bf16>(), 1e-6f, n, 512, out.as<bf16>(), 512, s);
  });
}

KERNEL_BENCH(core_rope_silu) {
  for (int n : {64, 4096}) {
    const int heads = 32, hd = 128, max_pos = 8192;
    Buffer q(std::size_t(n) * heads * hd * 2), cs(std::size_t(max_pos) * hd * 4), pos(std::size_t(n) * 4);
    fill_bf16(q.as<void>(), std::size_t(n) * heads * hd, -1, 1, 7);
    fill_f32(cs.as<float>(), std::size_t(max_pos) * hd, -1, 1, 8);
    fill_i32(pos.as<std::int32_t>(), n, 0, max_pos - 1, 9);
    bench.time("rope (llama q)", "n=" + std::to_string(n) + " 32x128", double(n) * heads * hd * 4 + double(n) * hd * 4, 0,
               Peak::memory, [&](cudaStream_t s) {
                 kernels::rope(q.as<bf16>(), n, heads, heads * hd, hd, 0, hd, pos.as<std::int32_t>(), cs.as<float>(),
                               false, s);
               });
    const int inter = 18432;
    Buffer gu(std::size_t(n) * 2 * inter * 2), out(std::size_t(n) * inter * 2);
    fill_bf16(gu.as<void>(), std::size_t(n) * 2 * inter, -4, 4, 10);
    bench.time("silu_mul", nxd(n, inter), double(n) * inter * 6, 0, Peak::memory, [&](cudaStream_t s) {
      kernels::silu_mul(gu.as<bf16>(), n, inter, out.as<bf16>(), s);
    });
  }
}

// Llama-3-8B attention: batch of `seqs` sequences of `ctx` cached tokens, each with `q_len` new tokens.
void attention_case(Bench& bench, int seqs, int ctx, int q_len) {
  const int H = 32, KV = 8, D = 128, bs = 16;
  const int blocks_per_seq = (ctx + bs - 1) / bs, num_blocks = seqs * blocks_per_seq;
  const int T = seqs * q_len;
  std::vector<std::int32_t> tables(std::size_t(seqs) * blocks_per_seq), token_seq(T), positions(T), slots(T), lens(seqs);
  for (std::size_t i = 0; i < tables.size(); ++i)  // a fixed scatter: consecutive blocks are far apart
    tables[i] = std::int32_t((i * 7919) % std::size_t(num_blocks));
  for (int s = 0, t = 0; s < seqs; ++s) {
    lens[s] = ctx;
    for (int i = 0; i < q_len; ++i, ++t) {
      token_seq[t] = s, positions[t] = ctx - q_len + i;
      slots[t] = tables[std::size_t(s) * blocks_per_seq + positions[t] / bs] * bs + positions[t] % bs;
    }
  }
  const std::size_t cache = std::size_t(num_blocks) * bs * KV * D;
  Buffer kc(cache * 2), vc(cache * 2), q(std::size_t(T) * H * D * 2), out(std::size_t(T) * H * D * 2);
  Buffer dt(tables.size() * 4), dseq(T * 4), dpos(T * 4), dslot(T * 4), dlen(seqs * 4);
  fill_bf16(kc.as<void>(), cache, -1, 1, 11);
  fill_bf16(vc.as<void>(), cache, -1, 1, 12);
  fill_bf16(q.as<void>(), std::size_t(T) * H * D, -1, 1, 13);
  cudaMemcpy(dt.as<void>(), tables.data(), tables.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dseq.as<void>(), token_seq.data(), T * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dpos.as<void>(), positions.data(), T * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dslot.as<void>(), slots.data(), T * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dlen.as<void>(), lens.data(), seqs * 4, cudaMemcpyHostToDevice);
  kernels::AttnBatch b;
  b.num_tokens = T, b.num_seqs = seqs, b.token_seq = dseq.as<std::int32_t>(), b.positions = dpos.as<std::int32_t>();
  b.slot_mapping = dslot.as<std::int32_t>(), b.block_tables = dt.as<std::int32_t>(), b.seq_lens = dlen.as<std::int32_t>();
  b.max_blocks_per_seq = blocks_per_seq, b.block_size = bs, b.max_seq_len = ctx;
  const double kv_bytes = double(seqs) * ctx * KV * D * 2 * 2;
  // causal FLOPs: q.k and p.v, 2 FLOPs per multiply-add, over the keys each query sees
  double keys = 0;
  for (int i = 0; i < q_len; ++i) keys += ctx - q_len + i + 1;
  const double flops = 4.0 * seqs * keys * H * D;
  const std::string shape = "seqs=" + std::to_string(seqs) + " ctx=" + std::to_string(ctx) + " q=" + std::to_string(q_len);
  bench.time(q_len == 1 ? "paged_attention decode" : "paged_attention prefill", shape,
             kv_bytes + 2.0 * T * H * D * 2, flops, q_len == 1 ? Peak::memory : Peak::bf16, [&](cudaStream_t s) {
               kernels::paged_attention(q.as<bf16>(), H * D, H, KV, D, kc.as<bf16>(), vc.as<bf16>(), b,
                                        0.08838834764f, out.as<bf16>(), s);
             });
  if (q_len > 1) {
    Buffer k(std::size_t(T) * KV * D * 2);
    bench.time("cache_write_kv", "tokens=" + std::to_string(T) + " 8x128", double(T) * KV * D * 2 * 4, 0,
               Peak::memory, [&](cudaStream_t s) {
                 kernels::cache_write_kv(k.as<bf16>(), KV * D, k.as<bf16>(), KV * D, KV, D, b, kc.as<bf16>(),
                                         vc.as<bf16>(), s);
               });
  }
}

KERNEL_BENCH(core_paged_attention) {
  attention_case(bench, 1, 4096, 1);
  attention_case(bench, 1, 32768, 1);
  attention_case(bench, 16, 4096, 1);
  attention_case(bench, 64, 2048, 1);
  attention_case(bench, 64, 8192, 1);
  attention_case(bench, 256, 1024, 1);
  attention_case(bench, 1, 4096, 4096);
  attention_case(bench, 4, 1024, 512);
}

}  // namespace
}  // namespace troupe::kernel_bench
