#include "model/tokenizer/bpe.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <queue>
#include <stdexcept>

#include "model/tokenizer/byte_level.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe::tok {

BpeModel::BpeModel(const nlohmann::json& m, bool byte_level, const std::string& where) : byte_level_(byte_level) {
  const std::string type = m.value("type", std::string("BPE"));
  if (type != "BPE")
    throw std::runtime_error("tokenizer: " + where + ": model type '" + type + "' is not supported (only BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(key) && !m[key].is_null() && !m[key].get<std::string>().empty())
      throw std::runtime_error("tokenizer: " + where + ": BPE '" + key + "' is not supported");
  ignore_merges_ = m.value("ignore_merges", false);
  byte_fallback_ = m.value("byte_fallback", false);
  fuse_unk_ = m.value("fuse_unk", false);
  load_vocab(m.at("vocab"), where);
  if (m.contains("unk_token") && m["unk_token"].is_string()) unk_id_ = token_to_id(m["unk_token"].get<std::string>());
  load_merges(m.at("merges"), where);
}

void BpeModel::load_vocab(const nlohmann::json& vocab, const std::string& where) {
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab.items()) max_id = std::max(max_id, id.get<int32_t>());
  tokens_.assign(static_cast<size_t>(max_id + 1), {});
  for (const auto& [token, id] : vocab.items()) tokens_[static_cast<size_t>(id.get<int32_t>())] = token;
  // The maps hold views into the strings of tokens_/raw_, which are never resized after this point.
  by_token_.reserve(tokens_.size());
  for (size_t id = 0; id < tokens_.size(); ++id)
    if (!tokens_[id].empty()) by_token_.emplace(tokens_[id], static_cast<int32_t>(id));
  byte_ids_.fill(-1);
  fallback_ids_.fill(-1);
  if (byte_level_) {
    raw_.resize(tokens_.size());
    by_raw_.reserve(tokens_.size());
    for (size_t id = 0; id < tokens_.size(); ++id) {
      auto raw = byte_level_to_bytes(tokens_[id]);
      if (!raw || raw->empty()) continue;  // not reachable from byte-level input
      raw_[id] = std::move(*raw);
      by_raw_.emplace(raw_[id], static_cast<int32_t>(id));
    }
    for (int b = 0; b < 256; ++b) {
      char c = static_cast<char>(b);
      auto it = by_raw_.find(std::string_view(&c, 1));
      if (it != by_raw_.end()) byte_ids_[b] = it->second;
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    if (auto id = token_to_id(name)) fallback_ids_[b] = *id;
  }
  (void)where;
}

void BpeModel::load_merges(const nlohmann::json& merges, const std::string& where) {
  merges_.reserve(merges.size());
  int32_t rank = 0;
  std::string merged;
  for (const auto& m : merges) {
    std::string a, b;
    if (m.is_array()) {  // tokenizers >= 0.20 writes [left, right]
      a = m.at(0).get<std::string>();
      b = m.at(1).get<std::string>();
    } else {  // older files write "left right"
      const auto& s = m.get_ref<const std::string&>();
      auto space = s.find(' ');
      if (space == std::string::npos)
        throw std::runtime_error("tokenizer: " + where + ": merge '" + s + "' is not 'left right'");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    }
    auto ia = token_to_id(a), ib = token_to_id(b), im = token_to_id(merged.assign(a).append(b));
    if (!ia || !ib || !im)
      throw std::runtime_error("tokenizer: " + where + ": merge '" + a + " " + b + "' uses a token outside the vocab");
    merges_.insert(*ia, *ib, {rank++, *im});
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = by_token_.find(token);
  if (it == by_token_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id > max_id() || tokens_[static_cast<size_t>(id)].empty()) return nullptr;
  return &tokens_[static_cast<size_t>(id)];
}

void BpeModel::initial_symbols(std::string_view piece, std::vector<int32_t>& syms) const {
  if (byte_level_) {
    for (char c : piece) {
      int32_t id = byte_ids_[static_cast<unsigned char>(c)];
      if (id >= 0) syms.push_back(id);
      else if (unk_id_) syms.push_back(*unk_id_);  // no such byte in the vocab: HF drops it unless unk is set
    }
    return;
  }
  bool pending_unk = false;  // fuse_unk: consecutive unknown characters become one <unk>
  size_t i = 0;
  while (i < piece.size()) {
    size_t n = std::min(utf8_len(static_cast<unsigned char>(piece[i])), piece.size() - i);
    std::string_view ch = piece.substr(i, n);
    i += n;
    if (auto it = by_token_.find(ch); it != by_token_.end()) {
      if (pending_unk) syms.push_back(*unk_id_), pending_unk = false;
      syms.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch) all = all && fallback_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : ch) syms.push_back(fallback_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (!unk_id_) continue;
    if (pending_unk && !fuse_unk_) syms.push_back(*unk_id_);
    pending_unk = true;
  }
  if (pending_unk) syms.push_back(*unk_id_);
}

// Short pieces (nearly all): repeatedly merge the lowest-ranked adjacent pair, leftmost first.
void BpeModel::merge_small(std::vector<int32_t>& s) const {
  constexpr int32_t kNone = INT32_MAX;
  int32_t ranks[64];
  int32_t ids[64];
  auto look = [&](size_t i) {
    const auto* m = merges_.find(s[i], s[i + 1]);
    ranks[i] = m ? m->rank : kNone;
    ids[i] = m ? m->id : -1;
  };
  size_t n = s.size();
  for (size_t i = 0; i + 1 < n; ++i) look(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (ranks[i] < ranks[best]) best = i;
    if (ranks[best] == kNone) break;
    s[best] = ids[best];
    for (size_t i = best + 1; i + 1 < n; ++i) {
      s[i] = s[i + 1];
      ranks[i] = ranks[i + 1];
      ids[i] = ids[i + 1];
    }
    --n;
    if (best > 0) look(best - 1);
    if (best + 1 < n) look(best);
  }
  s.resize(n);
}

// Long pieces: a linked list of symbols and a heap of candidate merges (rank, then position), as HF does.
void BpeModel::merge_large(std::vector<int32_t>& s) const {
  struct Sym {
    int32_t id, prev, next;
  };
  struct Cand {
    int32_t rank, pos, right, left_id, right_id, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const int32_t n = static_cast<int32_t>(s.size());
  std::vector<Sym> sym(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) sym[size_t(i)] = {s[size_t(i)], i - 1, i + 1 < n ? i + 1 : -1};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap;
  auto push = [&](int32_t l) {
    if (l < 0 || sym[size_t(l)].next < 0) return;
    int32_t r = sym[size_t(l)].next;
    if (const auto* m = merges_.find(sym[size_t(l)].id, sym[size_t(r)].id))
      heap.push({m->rank, l, r, sym[size_t(l)].id, sym[size_t(r)].id, m->id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Sym& l = sym[size_t(c.pos)];
    if (l.id != c.left_id || l.next != c.right || sym[size_t(c.right)].id != c.right_id) continue;  // stale
    Sym& r = sym[size_t(c.right)];
    l.id = c.new_id;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = c.pos;
    r.id = -1;
    push(l.prev);
    push(c.pos);
  }
  s.clear();
  for (int32_t i = 0; i >= 0 && i < n; i = sym[size_t(i)].next) s.push_back(sym[size_t(i)].id);
}

void BpeModel::encode_uncached(std::string_view piece, std::vector<int32_t>& syms) const {
  initial_symbols(piece, syms);
  if (syms.size() <= 64) merge_small(syms);
  else merge_large(syms);
}

void BpeModel::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (ignore_merges_) {  // Llama-3: a piece that is itself a token skips the merges
    const auto& map = byte_level_ ? by_raw_ : by_token_;
    if (auto it = map.find(piece); it != map.end()) {
      out.push_back(it->second);
      return;
    }
  }
  bool cacheable = piece.size() < WordCache::kMaxWordBytes;
  if (cacheable && cache_->get(piece, out)) return;
  thread_local std::vector<int32_t> syms;
  syms.clear();
  encode_uncached(piece, syms);
  if (cacheable) cache_->put(piece, syms.data(), syms.size());
  out.insert(out.end(), syms.begin(), syms.end());
}

}  // namespace troupe::tok
