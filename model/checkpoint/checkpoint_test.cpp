#define BOOST_TEST_MODULE checkpoint
#include "model/checkpoint/checkpoint_test_util.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>

using namespace troupe;
using namespace troupe::testing;

namespace {
bool error_says(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
  } catch (const CheckpointError& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return true;
    BOOST_TEST_MESSAGE("error was: " << e.what());
  }
  return false;
}
}  // namespace

BOOST_AUTO_TEST_CASE(element_conversions) {
  BOOST_TEST(bf16_to_f32(0x3f80) == 1.0f);
  BOOST_TEST(bf16_to_f32(0xc040) == -3.0f);
  BOOST_TEST(f16_to_f32(0x3c00) == 1.0f);
  BOOST_TEST(f16_to_f32(0xc000) == -2.0f);
  BOOST_TEST(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
  BOOST_TEST(std::isinf(f16_to_f32(0x7c00)));
  BOOST_TEST(f8e4m3_to_f32(0x38) == 1.0f);
  BOOST_TEST(f8e4m3_to_f32(0x7e) == 448.0f);
  BOOST_TEST(f8e4m3_to_f32(0xb8) == -1.0f);
  BOOST_TEST(f8e4m3_to_f32(0x01) == std::ldexp(1.0f, -9));
  BOOST_TEST(f8e4m3_to_f32(0x3c) == 1.5f);
  BOOST_TEST(std::isnan(f8e4m3_to_f32(0x7f)));
}

BOOST_AUTO_TEST_CASE(single_file_all_dtypes) {
  TempDir dir;
  std::vector<Entry> es = {
    f32_entry("a", {2, 3}, {1, 2, 3, 4, 5, 6}),
    {"b", "BF16", {2}, u16_bytes({0x3f80, 0xc040})},
    {"h", "F16", {1}, u16_bytes({0x3c00})},
    {"q", "F8_E4M3", {2}, {std::byte{0x38}, std::byte{0x7e}}},
    {"i", "I32", {1}, raw_bytes(std::int32_t(-7))},
    {"l", "I64", {1}, raw_bytes(std::int64_t(1) << 40)},
    {"u", "U8", {1}, {std::byte{200}}},
  };
  write_safetensors(dir.path + "/model.safetensors", es);
  auto ck = Checkpoint::open(dir.path);
  BOOST_TEST(ck.names().size() == 7u);
  BOOST_TEST(ck.has("a"));
  BOOST_TEST(!ck.has("z"));
  auto a = to_f32(ck.tensor("a", {2, 3}));
  BOOST_TEST(a == std::vector<float>({1, 2, 3, 4, 5, 6}));
  BOOST_TEST(to_f32(ck.tensor("b")) == std::vector<float>({1, -3}));
  BOOST_TEST(to_f32(ck.tensor("h"))[0] == 1.0f);
  BOOST_TEST(to_f32(ck.tensor("q")) == std::vector<float>({1, 448}));
  BOOST_TEST(to_f32(ck.tensor("i"))[0] == -7.0f);
  BOOST_TEST(to_f32(ck.tensor("l"))[0] == float(std::int64_t(1) << 40));
  BOOST_TEST(to_f32(ck.tensor("u"))[0] == 200.0f);
  BOOST_TEST(ck.total_bytes() == 24u + 4 + 2 + 2 + 4 + 8 + 1);
  BOOST_TEST((ck.tensor("q").dtype == DType::f8_e4m3));
  BOOST_TEST(std::string(dtype_name(DType::bf16)) == "BF16");
  // A single file opens by its path too.
  BOOST_TEST(Checkpoint::open(dir.path + "/model.safetensors").has("a"));
}

BOOST_AUTO_TEST_CASE(sharded_index) {
  TempDir dir;
  write_safetensors(dir.path + "/model-00001-of-00002.safetensors", {f32_entry("x", {1}, {3})});
  write_safetensors(dir.path + "/model-00002-of-00002.safetensors", {f32_entry("y", {2}, {4, 5})});
  write_text(dir.path + "/model.safetensors.index.json",
             R"({"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors",
                 "y": "model-00002-of-00002.safetensors"}})");
  auto ck = Checkpoint::open(dir.path);
  BOOST_TEST(to_f32(ck.tensor("x"))[0] == 3.0f);
  BOOST_TEST(to_f32(ck.tensor("y"))[1] == 5.0f);
  write_text(dir.path + "/model.safetensors.index.json",
             R"({"weight_map": {"x": "model-00001-of-00002.safetensors", "w": "model-00001-of-00002.safetensors"}})");
  BOOST_TEST(error_says([&] { Checkpoint::open(dir.path); }, "'w' listed in the index is missing"));
}

BOOST_AUTO_TEST_CASE(fp8_block_dequant) {
  // A 130x2 weight spans two row blocks: rows 0..127 use scale 2, rows 128..129 scale 0.5.
  TempDir dir;
  std::vector<std::byte> w(130 * 2, std::byte{0x38});  // all 1.0
  write_safetensors(dir.path + "/model.safetensors",
                    {{"w", "F8_E4M3", {130, 2}, w}, f32_entry("w_scale_inv", {2, 1}, {2.0f, 0.5f}),
                     f32_entry("bad_scale", {1, 1}, {1.0f})});
  auto ck = Checkpoint::open(dir.path);
  auto f = to_f32(ck.tensor("w"), &ck.tensor("w_scale_inv"));
  BOOST_TEST(f[0] == 2.0f);
  BOOST_TEST(f[127 * 2 + 1] == 2.0f);
  BOOST_TEST(f[128 * 2] == 0.5f);
  BOOST_TEST(f[129 * 2 + 1] == 0.5f);
  BOOST_TEST(error_says([&] { to_f32(ck.tensor("w"), &ck.tensor("bad_scale")); }, "bad_scale"));
}

BOOST_AUTO_TEST_CASE(errors_name_tensor_or_file) {
  TempDir dir;
  std::string p = dir.path + "/model.safetensors";
  write_safetensors(p, {f32_entry("layer.w", {2, 2}, {1, 2, 3, 4})});
  auto ck = Checkpoint::open(p);
  BOOST_TEST(error_says([&] { ck.tensor("layer.missing"); }, "'layer.missing' is missing"));
  BOOST_TEST(error_says([&] { ck.tensor("layer.w", {4, 1}); }, "'layer.w' has shape [2, 2], expected [4, 1]"));

  write_safetensors(p, {{"odd", "Q4_K", {1}, {std::byte{0}}}});
  BOOST_TEST(error_says([&] { Checkpoint::open(p); }, "'odd': unknown dtype \"Q4_K\""));

  write_safetensors(p, {f32_entry("t", {4}, {1, 2, 3, 4})});
  truncate_file(p, 16 + 5);  // into the header
  BOOST_TEST(error_says([&] { Checkpoint::open(p); }, "exceeds the file size"));
  write_safetensors(p, {f32_entry("t", {4}, {1, 2, 3, 4})});
  truncate_file(p, 4);  // header intact, data cut short
  BOOST_TEST(error_says([&] { Checkpoint::open(p); }, "tensor 't': data [0, 16) lies past the end"));

  write_text(p, std::string("\x05\0\0\0\0\0\0\0{bad}", 13));
  BOOST_TEST(error_says([&] { Checkpoint::open(p); }, "bad header"));
  write_safetensors(p, {{"short", "F32", {3}, raw_bytes(1.0f)}});
  BOOST_TEST(error_says([&] { Checkpoint::open(p); }, "'short': 4 bytes do not hold shape [3]"));
  BOOST_TEST(error_says([&] { Checkpoint::open(dir.path + "/nope.safetensors"); }, "nope.safetensors"));
  std::filesystem::remove(p);
  BOOST_TEST(error_says([&] { Checkpoint::open(dir.path); }, "no model.safetensors"));
}
