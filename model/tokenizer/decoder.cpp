#include "model/tokenizer/decoder.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/tokenizer/utf8.hpp"

namespace troupe::tok {
namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

// A <0xNN> byte-fallback token (HF tests the same shape: six characters, "<0x", ">").
bool byte_token(std::string_view t, unsigned char& byte) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return false;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                   : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return false;
  byte = static_cast<unsigned char>(hi * 16 + lo);
  return true;
}

}  // namespace

Decoder::Decoder(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return;
  if (j.at("type") == "ByteLevel") {
    kind_ = Kind::kByteLevel;
    return;
  }
  kind_ = Kind::kPieces;
  bool fused = false;
  add(j, where, fused);
}

void Decoder::add(const nlohmann::json& j, const std::string& where, bool& fused) {
  const std::string type = j.at("type").get<std::string>();
  Step s{};
  if (type == "Sequence") {
    for (const auto& d : j.at("decoders")) add(d, where, fused);
    return;
  } else if (type == "Replace") {
    const auto& p = j.at("pattern");
    if (!p.contains("String"))
      throw std::runtime_error("tokenizer: " + where + ": decoder Replace with a regex is not supported");
    s.kind = Step::kReplace;
    s.replace = {p.at("String").get<std::string>(), j.at("content").get<std::string>()};
  } else if (type == "ByteFallback") {
    byte_fallback_ = true;
    return;
  } else if (type == "Fuse") {
    fused = true;
    return;
  } else if (type == "Strip") {
    std::string content = j.value("content", std::string(" "));
    size_t start = j.value("start", size_t{0}), stop = j.value("stop", size_t{0});
    if (fused) {  // after Fuse there is one token: the strip applies to the whole text
      strip_content_ = content;
      strip_start_ = start;
      strip_stop_ = stop;
      return;
    }
    s.kind = Step::kStrip;
    s.strip_content = content;
    s.strip_start = start;
    s.strip_stop = stop;
  } else if (type == "Metaspace") {
    s.kind = Step::kMetaspace;
    s.replacement = j.value("replacement", std::string("\xE2\x96\x81"));
    std::string scheme = j.value("prepend_scheme", std::string(j.value("add_prefix_space", true) ? "always" : "never"));
    s.strip_first = scheme != "never";
  } else {
    throw std::runtime_error("tokenizer: " + where + ": decoder type '" + type + "' is not supported");
  }
  if (fused) throw std::runtime_error("tokenizer: " + where + ": decoder step '" + type + "' after Fuse is not supported");
  per_token_.push_back(std::move(s));
}

void DecodeStream::push_bytes(std::string_view bytes, std::string& out) {
  ++index_;
  if (pending_.empty()) {
    size_t used = append_lossy(out, bytes, false);
    pending_.assign(bytes.substr(used));
    return;
  }
  pending_.append(bytes);
  size_t used = append_lossy(out, pending_, false);
  pending_.erase(0, used);
}

void DecodeStream::push(std::string_view token, std::string& out) {
  if (d_->kind_ == Decoder::Kind::kByteLevel) return push_bytes(token, out);
  if (d_->kind_ == Decoder::Kind::kNone) {  // HF joins the tokens with spaces
    if (index_++ > 0) out.push_back(' ');
    out.append(token);
    return;
  }
  std::string t(token);
  for (const auto& s : d_->per_token_) {
    if (s.kind == Decoder::Step::kReplace) {
      replace_all(t, s.replace.from, s.replace.to);
    } else if (s.kind == Decoder::Step::kMetaspace) {
      replace_all(t, s.replacement, index_ == 0 && s.strip_first ? "" : " ");
    } else {  // per-token Strip
      const std::string& c = s.strip_content;
      for (size_t k = 0; k < s.strip_start && !c.empty() && t.compare(0, c.size(), c) == 0; ++k) t.erase(0, c.size());
      for (size_t k = 0; k < s.strip_stop && !c.empty() && t.size() >= c.size() &&
                         t.compare(t.size() - c.size(), c.size(), c) == 0; ++k)
        t.resize(t.size() - c.size());
    }
  }
  ++index_;
  unsigned char byte = 0;
  if (d_->byte_fallback_ && byte_token(t, byte)) {  // wait: the run is valid or invalid only as a whole
    byte_run_.push_back(static_cast<char>(byte));
    return;
  }
  flush_byte_run(out);
  emit(t, out);
}

void DecodeStream::flush_byte_run(std::string& out) {
  if (byte_run_.empty()) return;
  if (is_valid_utf8(byte_run_)) {
    emit(byte_run_, out);
  } else {
    std::string bad;
    for (size_t i = 0; i < byte_run_.size(); ++i) bad += "\xEF\xBF\xBD";  // one U+FFFD per byte, as HF
    emit(bad, out);
  }
  byte_run_.clear();
}

// Final text goes through the whole-text Strip: leading strip characters are dropped, trailing ones are
// held back until something else follows them (or the end decides).
void DecodeStream::emit(std::string_view text, std::string& out) {
  const std::string& c = d_->strip_content_;
  if (c.empty() || (d_->strip_start_ == 0 && d_->strip_stop_ == 0)) {
    out.append(text);
    return;
  }
  while (!started_ && stripped_start_ < d_->strip_start_ && text.substr(0, c.size()) == c) {
    text.remove_prefix(c.size());
    ++stripped_start_;
  }
  if (text.empty()) return;
  started_ = true;
  if (d_->strip_stop_ == 0) {
    out.append(text);
    return;
  }
  size_t keep = text.size();
  while (keep >= c.size() && text.substr(keep - c.size(), c.size()) == c) keep -= c.size();
  if (keep > 0) {
    out += held_tail_;
    held_tail_.clear();
  }
  out.append(text.substr(0, keep));
  held_tail_.append(text.substr(keep));
}

void DecodeStream::settle(std::string& out) {
  if (is_valid_utf8(byte_run_)) flush_byte_run(out);
}

bool DecodeStream::at_char_boundary() const { return pending_.empty() && is_valid_utf8(byte_run_); }

void DecodeStream::finish(std::string& out) {
  if (!pending_.empty()) {
    append_lossy(out, pending_, true);
    pending_.clear();
  }
  flush_byte_run(out);
  const std::string& c = d_->strip_content_;
  for (size_t k = 0; k < d_->strip_stop_ && !c.empty() && held_tail_.size() >= c.size(); ++k)
    held_tail_.resize(held_tail_.size() - c.size());
  out += held_tail_;
  held_tail_.clear();
}

}  // namespace troupe::tok
