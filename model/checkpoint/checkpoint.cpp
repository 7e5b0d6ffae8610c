#include "model/checkpoint/checkpoint.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace troupe {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f16: case DType::bf16: return 2;
    case DType::f8_e4m3: case DType::u8: return 1;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::f8_e4m3: return "F8_E4M3";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

std::int64_t TensorView::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

namespace {

bool parse_dtype(const std::string& s, DType& out) {
  static const std::map<std::string, DType> kNames = {
    {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16}, {"F8_E4M3", DType::f8_e4m3},
    {"I32", DType::i32}, {"I64", DType::i64}, {"U8", DType::u8}};
  auto it = kNames.find(s);
  if (it == kNames.end()) return false;
  out = it->second;
  return true;
}

// One read-only mapping of a whole file; unmapped when the checkpoint goes away.
struct Mapping {
  std::string path;
  const std::byte* base = nullptr;
  std::size_t size = 0;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  explicit Mapping(std::string p) : path(std::move(p)) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw CheckpointError("checkpoint '" + path + "': cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      throw CheckpointError("checkpoint '" + path + "': cannot stat: " + std::strerror(errno));
    }
    size = static_cast<std::size_t>(st.st_size);
    if (size > 0) {
      void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (m == MAP_FAILED) {
        ::close(fd);
        throw CheckpointError("checkpoint '" + path + "': cannot map: " + std::strerror(errno));
      }
      base = static_cast<const std::byte*>(m);
    }
    ::close(fd);
  }
  ~Mapping() {
    if (base) ::munmap(const_cast<std::byte*>(base), size);
  }
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError("checkpoint index '" + path + "': cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

struct Checkpoint::Impl {
  std::vector<std::unique_ptr<Mapping>> files;
  std::map<std::string, TensorView> tensors;
  std::size_t total = 0;

  void add_file(const std::string& path);
  void add_tensor(const Mapping& m, const std::string& name, const json& e, std::size_t data_start);
};

void Checkpoint::Impl::add_tensor(const Mapping& m, const std::string& name, const json& e, std::size_t data_start) {
  auto where = "checkpoint '" + m.path + "': tensor '" + name + "': ";
  if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
    throw CheckpointError(where + "header entry needs dtype, shape and data_offsets");
  TensorView v;
  v.name = name;
  if (!e["dtype"].is_string() || !parse_dtype(e["dtype"].get<std::string>(), v.dtype))
    throw CheckpointError(where + "unknown dtype " + e["dtype"].dump() +
                          " (supported: F32, F16, BF16, F8_E4M3, I32, I64, U8)");
  const json& shape = e["shape"];
  const json& off = e["data_offsets"];
  if (!shape.is_array() || !off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned())
    throw CheckpointError(where + "bad shape or data_offsets in the header");
  for (const auto& d : shape) {
    if (!d.is_number_unsigned()) throw CheckpointError(where + "bad shape " + shape.dump());
    v.shape.push_back(d.get<std::int64_t>());
  }
  auto begin = off[0].get<std::size_t>(), end = off[1].get<std::size_t>();
  if (end < begin || data_start + end > m.size)
    throw CheckpointError(where + "data [" + std::to_string(begin) + ", " + std::to_string(end) +
                          ") lies past the end of the file (truncated?)");
  v.nbytes = end - begin;
  if (v.nbytes != std::size_t(v.numel()) * dtype_size(v.dtype))
    throw CheckpointError(where + std::to_string(v.nbytes) + " bytes do not hold shape " + shape.dump() + " of " +
                          dtype_name(v.dtype));
  v.data = m.base + data_start + begin;
  total += v.nbytes;
  if (!tensors.emplace(name, std::move(v)).second) throw CheckpointError(where + "appears twice");
}

void Checkpoint::Impl::add_file(const std::string& path) {
  auto m = std::make_unique<Mapping>(path);
  auto where = "checkpoint '" + path + "': ";
  if (m->size < 8) throw CheckpointError(where + "too short for a safetensors header (truncated?)");
  std::uint64_t hlen = 0;
  std::memcpy(&hlen, m->base, 8);  // little-endian, as are the machines we run on
  if (hlen > m->size - 8) throw CheckpointError(where + "header length " + std::to_string(hlen) + " exceeds the file size (truncated?)");
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(m->base) + 8, reinterpret_cast<const char*>(m->base) + 8 + hlen);
  } catch (const json::exception& e) {
    throw CheckpointError(where + "bad header: " + e.what());
  }
  if (!header.is_object()) throw CheckpointError(where + "bad header: not a JSON object");
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    add_tensor(*m, it.key(), it.value(), 8 + hlen);
  }
  files.push_back(std::move(m));
}

Checkpoint::Checkpoint() : impl_(std::make_unique<Impl>()) {}
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint c;
  if (!fs::is_directory(path)) {
    c.impl_->add_file(path);
    return c;
  }
  fs::path dir(path);
  fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    json j;
    try {
      j = json::parse(read_text(index.string()));
    } catch (const json::exception& e) {
      throw CheckpointError("checkpoint index '" + index.string() + "': bad JSON: " + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      throw CheckpointError("checkpoint index '" + index.string() + "': no weight_map object");
    std::map<std::string, std::vector<std::string>> by_file;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it)
      by_file[it.value().get<std::string>()].push_back(it.key());
    for (const auto& [file, names] : by_file) {
      c.impl_->add_file((dir / file).string());
      for (const auto& n : names)
        if (!c.impl_->tensors.count(n))
          throw CheckpointError("checkpoint '" + (dir / file).string() + "': tensor '" + n +
                                "' listed in the index is missing");
    }
    return c;
  }
  if (fs::exists(dir / "model.safetensors")) {
    c.impl_->add_file((dir / "model.safetensors").string());
    return c;
  }
  throw CheckpointError("checkpoint '" + path + "': no model.safetensors or model.safetensors.index.json");
}

bool Checkpoint::has(const std::string& name) const { return impl_->tensors.count(name) != 0; }

const TensorView& Checkpoint::tensor(const std::string& name, const std::vector<std::int64_t>& expect_shape) const {
  auto it = impl_->tensors.find(name);
  if (it == impl_->tensors.end()) throw CheckpointError("checkpoint: tensor '" + name + "' is missing");
  if (!expect_shape.empty() && it->second.shape != expect_shape) {
    auto str = [](const std::vector<std::int64_t>& s) {
      std::string r = "[";
      for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
      return r + "]";
    };
    throw CheckpointError("checkpoint: tensor '" + name + "' has shape " + str(it->second.shape) + ", expected " +
                          str(expect_shape));
  }
  return it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [n, v] : impl_->tensors) out.push_back(n);
  return out;
}

std::size_t Checkpoint::total_bytes() const { return impl_->total; }

}  // namespace troupe
