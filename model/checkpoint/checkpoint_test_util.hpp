#pragma once
// Builds small safetensors files in a temporary directory for the checkpoint and model tests.
#include "model/checkpoint/checkpoint.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace troupe::testing {

struct TempDir {
  std::string path;
  TempDir() {
    auto base = std::filesystem::temp_directory_path() / "troupe-ckpt-XXXXXX";
    std::string tmpl = base.string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

struct Entry {
  std::string name, dtype;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> bytes;
};

template <class T>
std::vector<std::byte> raw_bytes(T v) {
  std::vector<std::byte> b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  return b;
}

inline std::vector<std::byte> u16_bytes(const std::vector<std::uint16_t>& v) {
  std::vector<std::byte> b(v.size() * 2);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline Entry f32_entry(const std::string& name, std::vector<std::int64_t> shape, const std::vector<float>& v) {
  std::vector<std::byte> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return {name, "F32", std::move(shape), std::move(b)};
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline void write_safetensors(const std::string& path, const std::vector<Entry>& es) {
  std::string header = "{";
  std::size_t off = 0;
  for (std::size_t i = 0; i < es.size(); ++i) {
    std::string shape;
    for (std::size_t d = 0; d < es[i].shape.size(); ++d) shape += (d ? "," : "") + std::to_string(es[i].shape[d]);
    header += (i ? "," : "") + std::string("\"") + es[i].name + "\":{\"dtype\":\"" + es[i].dtype + "\",\"shape\":[" +
              shape + "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + es[i].bytes.size()) + "]}";
    off += es[i].bytes.size();
  }
  header += "}";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  for (const auto& e : es) out.write(reinterpret_cast<const char*>(e.bytes.data()), std::streamsize(e.bytes.size()));
}

inline void truncate_file(const std::string& path, std::size_t drop) {
  auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - drop);
}

}  // namespace troupe::testing
