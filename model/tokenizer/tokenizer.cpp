#include "model/tokenizer/tokenizer.hpp"

#include "model/tokenizer/tokenizer_impl.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe {
namespace tok {

void TokenizerImpl::encode(std::string_view text, bool add_special_tokens, std::vector<int32_t>& out) const {
  std::string sanitized;  // HF only sees valid UTF-8 (Rust &str); invalid input is read the lossy way
  if (!is_valid_utf8(text)) {
    append_lossy(sanitized, text, true);
    text = sanitized;
  }
  out.reserve(out.size() + text.size() / 3 + prefix_ids.size() + suffix_ids.size() + 4);
  if (add_special_tokens) out.insert(out.end(), prefix_ids.begin(), prefix_ids.end());
  thread_local std::vector<Segment> segments;
  segments.clear();
  added.raw_matcher().split(text, 0, static_cast<uint32_t>(text.size()), added.tokens(), segments);
  for (const auto& s : segments) {  // encode_segment never touches `segments`
    if (s.id >= 0) out.push_back(s.id);
    else encode_segment(text.substr(s.begin, s.end - s.begin), s.begin == 0, out);
  }
  if (add_special_tokens) out.insert(out.end(), suffix_ids.begin(), suffix_ids.end());
}

// Normalizes one plain segment, then finds the normalized=true added tokens in it (HF's second pass).
void TokenizerImpl::encode_segment(std::string_view text, bool at_input_start, std::vector<int32_t>& out) const {
  if (normalizer.empty() && added.normalized_matcher().empty()) return encode_plain(text, at_input_start, out);
  std::string norm(text);
  normalizer.normalize(norm);
  std::vector<Segment> parts;
  added.normalized_matcher().split(norm, 0, static_cast<uint32_t>(norm.size()), added.tokens(), parts);
  for (const auto& p : parts) {
    if (p.id >= 0) out.push_back(p.id);
    else encode_plain(std::string_view(norm).substr(p.begin, p.end - p.begin), at_input_start && p.begin == 0, out);
  }
}

void TokenizerImpl::encode_plain(std::string_view text, bool at_input_start, std::vector<int32_t>& out) const {
  thread_local std::string buf;
  thread_local std::vector<Piece> pieces;
  buf.assign(text);
  pre_tokenizer.split(buf, pieces, at_input_start);
  for (const auto& p : pieces) model.encode(std::string_view(buf).substr(p.begin, p.end - p.begin), out);
}

const std::string* TokenizerImpl::token_text(int32_t id) const {
  if (const AddedToken* t = added.find(id)) return &t->content;
  return model.id_to_token(id);
}

void TokenizerImpl::decode_into(DecodeStream& stream, int32_t id, bool skip_special, std::string& out) const {
  if (id < 0 || id >= vocab_size) return;  // HF skips ids it does not know
  if (skip_special && special[static_cast<size_t>(id)]) return;
  if (decoder.byte_level()) {
    if (token_text(id) != nullptr) stream.push_bytes(decode_bytes[static_cast<size_t>(id)], out);
    return;
  }
  if (const std::string* t = token_text(id)) stream.push(*t, out);
}

}  // namespace tok

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> out;
  impl_->encode(text, add_special_tokens, out);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  tok::DecodeStream stream(impl_->decoder);
  std::string out;
  for (int32_t id : ids) impl_->decode_into(stream, id, skip_special_tokens, out);
  stream.finish(out);
  return out;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const tok::AddedToken* t = impl_->added.find(token)) return t->id;
  return impl_->model.token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const std::string* t = impl_->token_text(id);
  return t ? *t : std::string();
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->vocab_size && impl_->special[static_cast<size_t>(id)];
}

}  // namespace troupe
