#pragma once
// Msg<S>: the one typed envelope in which every Cap'n Proto message travels between actors.
//
// A Msg is frozen at construction: the builder's segments are flattened into one word array held by a
// shared_ptr, so a local send (or a broadcast to all workers) passes a reference, never a copy. Each
// reader gets its own FlatArrayMessageReader over the shared words (capnp readers keep a traversal
// counter, so one reader must not be shared across threads). A remote send serializes the bytes
// through CAF's inspect() below.
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/sec.hpp>
#include <caf/meta/type_name.hpp>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace troupe {

template <class S>
class Msg {
 public:
  using Schema = S;

  // Holds a reader and its root; cheap (parses only the segment table). Readers taken from it point
  // into it: keep the View named while they are used (`for (x : msg.view()->getList())` dangles).
  class View {
   public:
    explicit View(kj::ArrayPtr<const capnp::word> words)
      : reader_(std::make_unique<capnp::FlatArrayMessageReader>(words, options())),
        root_(reader_->getRoot<S>()) {}
    typename S::Reader operator*() const { return root_; }
    const typename S::Reader* operator->() const { return &root_; }

   private:
    std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
    typename S::Reader root_;
  };

  Msg() = default;

  // Freezes a finished builder.
  explicit Msg(capnp::MessageBuilder& builder) {
    auto flat = capnp::messageToFlatArray(builder);
    words_ = std::make_shared<std::vector<capnp::word>>(flat.begin(), flat.end());
  }

  // Builds in place: Msg<S>::make([&](auto b) { b.setX(1); }).
  template <class Fill>
  static Msg make(Fill&& fill) {
    capnp::MallocMessageBuilder builder;
    fill(builder.initRoot<S>());
    return Msg(builder);
  }

  // Parses untrusted bytes (a remote peer); throws std::runtime_error on misaligned size or garbage.
  static Msg from_bytes(const std::vector<char>& bytes) {
    if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0)
      throw std::runtime_error("capnp message of " + std::to_string(bytes.size()) + " bytes is not whole words");
    Msg m;
    auto words = std::make_shared<std::vector<capnp::word>>(bytes.size() / sizeof(capnp::word));
    std::memcpy(words->data(), bytes.data(), bytes.size());
    m.words_ = std::move(words);
    m.view();  // validates the segment table now rather than in the receiver
    return m;
  }

  std::vector<char> to_bytes() const {
    if (!words_) return {};
    auto p = reinterpret_cast<const char*>(words_->data());
    return std::vector<char>(p, p + words_->size() * sizeof(capnp::word));
  }

  bool empty() const { return !words_; }
  const void* data() const { return words_ ? words_->data() : nullptr; }
  View view() const {
    if (!words_) throw std::logic_error("reading an empty Msg");
    return View(kj::ArrayPtr<const capnp::word>(words_->data(), words_->size()));
  }
  std::size_t size_bytes() const { return words_ ? words_->size() * sizeof(capnp::word) : 0; }

 private:
  static capnp::ReaderOptions options() {
    capnp::ReaderOptions o;
    o.traversalLimitInWords = 1ull << 30;  // prompts of max-model-len tokens fit comfortably
    return o;
  }
  std::shared_ptr<const std::vector<capnp::word>> words_;
};

// CAF serialization: the frozen bytes, verbatim. Loading re-validates them.
template <class Inspector, class S>
typename Inspector::result_type inspect(Inspector& f, Msg<S>& x) {
  std::vector<char> bytes;
  if constexpr (Inspector::reads_state) bytes = x.to_bytes();
  auto load = caf::meta::load_callback([&]() -> caf::error {
    try {
      x = Msg<S>::from_bytes(bytes);
    } catch (const std::exception&) {  // kj::Exception derives from std::exception
      return caf::make_error(caf::sec::malformed_basp_message);
    }
    return caf::none;
  });
  return f(caf::meta::type_name("troupe.Msg"), bytes, load);
}

}  // namespace troupe
