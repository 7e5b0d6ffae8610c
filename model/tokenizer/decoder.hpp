// tokenizer.json "decoder" as a stream: tokens go in one at a time and only text that later tokens cannot
// change comes out. Tokenizer::decode and IncrementalDetokenizer both run this one stream, so streamed
// output concatenates to exactly the full decode.
// Supported: ByteLevel (bytes joined, then lossy UTF-8 like HF), and Sequence/single steps of Replace,
// ByteFallback, Fuse, Strip, Metaspace (SentencePiece style); no decoder joins tokens with spaces (as HF).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace troupe::tok {

class Decoder {
 public:
  Decoder(const nlohmann::json& j, const std::string& where);  // null json: no decoder

  bool byte_level() const { return kind_ == Kind::kByteLevel; }

 private:
  friend class DecodeStream;
  enum class Kind { kNone, kByteLevel, kPieces };
  struct Replace {
    std::string from, to;
  };
  struct Step {  // one per-token step, in file order
    enum { kReplace, kMetaspace, kStrip } kind;
    Replace replace;
    std::string replacement;  // Metaspace
    bool strip_first = false; // Metaspace: drop the replacement in the first token (prepend_scheme != never)
    std::string strip_content;
    size_t strip_start = 0, strip_stop = 0;
  };
  void add(const nlohmann::json& j, const std::string& where, bool& fused);

  Kind kind_ = Kind::kNone;
  std::vector<Step> per_token_;  // steps applied to each token before ByteFallback groups bytes
  bool byte_fallback_ = false;
  // Strip after Fuse applies to the whole text: drop up to `start` leading / `stop` trailing chars.
  std::string strip_content_;
  size_t strip_start_ = 0, strip_stop_ = 0;
};

class DecodeStream {
 public:
  explicit DecodeStream(const Decoder& d) : d_(&d) {}

  // `token` is the token string (vocab form, or an added token's content); for ByteLevel decoders pass
  // `bytes` instead: the token already mapped to raw bytes. Appends final text to `out`.
  void push(std::string_view token, std::string& out);
  void push_bytes(std::string_view bytes, std::string& out);
  void finish(std::string& out);
  // After priming with context text the client already has: a byte-fallback run that is complete UTF-8
  // goes to `out` (HF's stream would have shown it with the context); an unfinished one waits for its end.
  void settle(std::string& out);
  // Whether everything pushed so far decodes to whole characters (no byte of an unfinished one waits):
  // where HF's DecodeStream would have shown all of it.
  bool at_char_boundary() const;

 private:
  void emit(std::string_view text, std::string& out);
  void flush_byte_run(std::string& out);

  const Decoder* d_;
  size_t index_ = 0;         // tokens seen
  std::string pending_;      // ByteLevel: bytes of an unfinished character
  std::string byte_run_;     // ByteFallback: consecutive <0xNN> bytes, judged as a group
  size_t stripped_start_ = 0;
  bool started_ = false;     // a non-stripped character has been emitted
  std::string held_tail_;    // trailing strip characters held back
};

}  // namespace troupe::tok
