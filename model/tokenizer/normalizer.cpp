#include "model/tokenizer/normalizer.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/tokenizer/regex.hpp"

#ifdef TROUPE_TOKENIZER_HAS_ICU
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#endif

namespace troupe::tok {

struct Normalizer::Step {
  enum Kind { kPrepend, kReplace, kUnicode } kind;
  std::string text;                 // Prepend: prefix; Replace: replacement
  std::unique_ptr<Regex> pattern;   // Replace
  std::string form;                 // Unicode: NFC, NFKC, NFD, NFKD
};

namespace {

void replace_all(std::string& text, const Regex& re, const std::string& with) {
  std::string out;
  size_t pos = 0, b = 0, e = 0;
  bool changed = false;
  while (pos <= text.size() && re.find(text, pos, b, e)) {
    if (e == b) {  // empty match: keep one character and move on
      if (b >= text.size()) break;
      pos = b + 1;
      continue;
    }
    changed = true;
    out.append(text, pos, b - pos);
    out += with;
    pos = e;
  }
  if (!changed) return;
  out.append(text, pos, std::string::npos);
  text.swap(out);
}

#ifdef TROUPE_TOKENIZER_HAS_ICU
void unicode_normalize(std::string& text, const std::string& form) {
  for (unsigned char c : text)
    if (c >= 0x80) goto non_ascii;
  return;  // ASCII is invariant under every normalization form
non_ascii:
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* n = form == "NFC"    ? unorm2_getNFCInstance(&err)
                          : form == "NFKC" ? unorm2_getNFKCInstance(&err)
                          : form == "NFD"  ? unorm2_getNFDInstance(&err)
                                           : unorm2_getNFKDInstance(&err);
  std::u16string src(text.size() + 1, u'\0');
  int32_t len = 0;
  u_strFromUTF8(reinterpret_cast<UChar*>(src.data()), static_cast<int32_t>(src.size()), &len, text.data(),
                static_cast<int32_t>(text.size()), &err);
  if (U_FAILURE(err)) throw std::runtime_error("tokenizer: ICU cannot read text for " + form);
  if (unorm2_isNormalized(n, reinterpret_cast<UChar*>(src.data()), len, &err) && U_SUCCESS(err)) return;
  err = U_ZERO_ERROR;
  std::u16string dst(static_cast<size_t>(len) * 4 + 16, u'\0');
  int32_t out_len = unorm2_normalize(n, reinterpret_cast<UChar*>(src.data()), len,
                                     reinterpret_cast<UChar*>(dst.data()), static_cast<int32_t>(dst.size()), &err);
  if (U_FAILURE(err)) throw std::runtime_error("tokenizer: ICU " + form + " failed");
  std::string out(static_cast<size_t>(out_len) * 3 + 4, '\0');
  int32_t bytes = 0;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &bytes, reinterpret_cast<UChar*>(dst.data()),
              out_len, &err);
  if (U_FAILURE(err)) throw std::runtime_error("tokenizer: ICU cannot write " + form + " text");
  out.resize(static_cast<size_t>(bytes));
  text.swap(out);
}
#endif

}  // namespace

Normalizer::Normalizer(const nlohmann::json& j, const std::string& where) {
  if (!j.is_null()) add(j, where);
}
Normalizer::~Normalizer() = default;
Normalizer::Normalizer(Normalizer&&) noexcept = default;

void Normalizer::add(const nlohmann::json& j, const std::string& where) {
  const std::string type = j.at("type").get<std::string>();
  auto step = std::make_unique<Step>();
  if (type == "Sequence") {
    for (const auto& s : j.at("normalizers")) add(s, where);
    return;
  } else if (type == "Prepend") {
    step->kind = Step::kPrepend;
    step->text = j.at("prepend").get<std::string>();
  } else if (type == "Replace") {
    step->kind = Step::kReplace;
    const auto& p = j.at("pattern");
    bool literal = p.contains("String");
    step->pattern = std::make_unique<Regex>(p.at(literal ? "String" : "Regex").get<std::string>(), literal);
    step->text = j.at("content").get<std::string>();
  } else if (type == "NFC" || type == "NFKC" || type == "NFD" || type == "NFKD") {
#ifndef TROUPE_TOKENIZER_HAS_ICU
    throw std::runtime_error("tokenizer: " + where + ": normalizer " + type + " needs ICU (not built in)");
#endif
    step->kind = Step::kUnicode;
    step->form = type;
  } else {
    throw std::runtime_error("tokenizer: " + where + ": normalizer type '" + type + "' is not supported");
  }
  steps_.push_back(std::move(step));
}

void Normalizer::normalize(std::string& text) const {
  for (const auto& s : steps_) {
    switch (s->kind) {
      case Step::kPrepend:
        if (!text.empty()) text.insert(0, s->text);  // HF prepends only to non-empty text
        break;
      case Step::kReplace:
        replace_all(text, *s->pattern, s->text);
        break;
      case Step::kUnicode:
#ifdef TROUPE_TOKENIZER_HAS_ICU
        unicode_normalize(text, s->form);
#endif
        break;
    }
  }
}

}  // namespace troupe::tok
