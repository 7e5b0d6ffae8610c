// tokenizer.json "normalizer": the steps Llama/Qwen/DeepSeek tokenizers use (Sequence, Prepend, Replace,
// NFC/NFKC/NFD/NFKD). Applied to each text segment between added tokens, as HF does.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace troupe::tok {

class Normalizer {
 public:
  // `where` names the file for error messages. A null json gives an empty (identity) normalizer.
  Normalizer(const nlohmann::json& j, const std::string& where);
  ~Normalizer();
  Normalizer(Normalizer&&) noexcept;

  bool empty() const { return steps_.empty(); }
  void normalize(std::string& text) const;

 private:
  struct Step;
  void add(const nlohmann::json& j, const std::string& where);
  std::vector<std::unique_ptr<Step>> steps_;
};

}  // namespace troupe::tok
