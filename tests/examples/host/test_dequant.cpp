// Tests of dequant.hpp's block types against gguf-py (the `gguf` package, llama.cpp's Python
// reader): tests/fixtures/dequant_golden.json (written by tools/make_dequant_fixtures.py) holds
// random blocks of Q4_0, Q4_1, Q5_0, Q8_0, Q4_K and Q6_K, and the first blocks of one tensor of each
// quantized type of Qwen2.5-Coder-0.5B (Q4_K_M), with the float32 values gguf.quants.dequantize
// gives them as bit patterns. The match is exact: every product in these formulas is exact in
// float, so the single rounding of Q4_1's "+ m" and Q4_K's "- dmin * m" is the same on both sides
// (see dequant.hpp), and no tolerance is allowed. Plus hand-built blocks whose values are worked out
// by hand, the count and unsupported-type errors, and the real model's tensors when it is present.
#include <doctest/doctest.h>

#include "model_path.hpp"
#include "error_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llama3/bf16.hpp"
#include "llama3/dequant.hpp"
#include "llama3/gguf.hpp"

using namespace llama3;
using ftp_test::contains;
using ftp_test::message_of;

namespace {

const nlohmann::json& golden() {
  static const nlohmann::json j = [] {
    const std::string path = ftp_test::source_path("tests/fixtures/dequant_golden.json");
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot read ", path, " (run tools/make_dequant_fixtures.py)");
    return nlohmann::json::parse(in);
  }();
  return j;
}

GgmlType type_named(const std::string& name) {
  for (uint32_t id = 0; id < 64; ++id) {
    const GgmlTypeTraits* t = ggml_type_traits(id);
    if (t && name == t->name) return static_cast<GgmlType>(id);
  }
  FAIL("unknown type name in the fixture: ", name);
  return GgmlType::F32;
}

std::vector<uint8_t> bytes_from_hex(const std::string& hex) {
  REQUIRE(hex.size() % 2 == 0);
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

std::string hex8(uint32_t u) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", u);
  return buf;
}

std::vector<uint32_t> expected_bits(const nlohmann::json& c) {
  std::vector<uint32_t> out;
  for (const auto& h : c.at("expected")) out.push_back(uint32_t(std::stoul(h.get<std::string>(), nullptr, 16)));
  return out;
}

/// Dequantizes `n` elements at `raw` both ways and checks them against the expected float bits:
/// float exactly, bf16 as bf16_from_float of the expected floats. Reports the first difference.
void check_against(GgmlType type, const uint8_t* raw, const std::vector<uint32_t>& want) {
  const uint64_t n = want.size();
  std::vector<float> got(n);
  dequantize_to_float(type, raw, n, got.data());
  std::vector<uint16_t> got_bf16(n);
  dequantize_to_bf16(type, raw, n, got_bf16.data());
  size_t float_mismatches = 0, bf16_mismatches = 0;
  for (size_t i = 0; i < n; ++i) {
    if (bits_of(got[i]) != want[i]) {
      if (float_mismatches++ == 0) {
        MESSAGE("first float mismatch at element ", i, ": got ", got[i], " (", hex8(bits_of(got[i])), "), gguf-py ",
                float_of(want[i]), " (", hex8(want[i]), ")");
      }
    }
    if (got_bf16[i] != bf16_from_float(float_of(want[i]))) {
      if (bf16_mismatches++ == 0) MESSAGE("first bf16 mismatch at element ", i);
    }
  }
  CHECK(float_mismatches == 0);
  CHECK(bf16_mismatches == 0);
}

std::vector<uint8_t> fp16_le(float v) {
  // Only for values exactly representable in fp16 with a normal exponent (the hand-built blocks).
  uint32_t u = bits_of(v);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const int exponent = int((u >> 23) & 0xff) - 127 + 15;
  REQUIRE(exponent > 0);
  REQUIRE(exponent < 31);
  REQUIRE((u & 0x1fffu) == 0);
  const uint16_t h = uint16_t(sign | (exponent << 10) | ((u >> 13) & 0x3ffu));
  return {uint8_t(h & 0xff), uint8_t(h >> 8)};
}

}  // namespace

// =============================================================================================
TEST_CASE("dequant golden: random blocks of every block type equal gguf-py bit for bit") {
  const nlohmann::json& g = golden();
  std::vector<std::string> types;
  for (const auto& c : g.at("random")) {
    const std::string name = c.at("type").get<std::string>();
    types.push_back(name);
    CAPTURE(name);
    const GgmlType type = type_named(name);
    const GgmlTypeTraits& traits = *ggml_type_traits(uint32_t(type));
    const std::vector<uint8_t> raw = bytes_from_hex(c.at("raw").get<std::string>());
    const std::vector<uint32_t> want = expected_bits(c);
    REQUIRE(want.size() == c.at("n_elements").get<size_t>());
    REQUIRE(raw.size() == want.size() / traits.block_size * traits.block_bytes);
    CHECK(can_dequantize(type));
    check_against(type, raw.data(), want);
  }
  CHECK(types == std::vector<std::string>{"Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q6_K"});
}

TEST_CASE("dequant golden: the real model's blocks in the fixture equal gguf-py bit for bit") {
  // The same comparison on the stored bytes (no model file needed); the real-model case below
  // checks that these are the bytes of the named tensors.
  const nlohmann::json& g = golden();
  REQUIRE_MESSAGE(g.contains("model_tensors"),
                  "the fixture has no model blocks: regenerate it with tools/make_dequant_fixtures.py --from-gguf "
                  ".cache/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
  std::vector<std::string> types;
  for (const auto& c : g.at("model_tensors")) {
    const std::string name = c.at("type").get<std::string>(), tensor = c.at("tensor").get<std::string>();
    types.push_back(name);
    CAPTURE(name);
    CAPTURE(tensor);
    const std::vector<uint8_t> raw = bytes_from_hex(c.at("raw").get<std::string>());
    check_against(type_named(name), raw.data(), expected_bits(c));
  }
  CHECK(types == std::vector<std::string>{"Q4_K", "Q5_0", "Q6_K", "Q8_0"});
}

// =============================================================================================
TEST_CASE("dequant: Q5_0 value is ((nibble | 5th bit << 4) - 16) * d") {
  std::vector<uint8_t> block = fp16_le(0.5f);
  // qh: the 5th bit of element i is bit i; set it for elements 1, 16 and 31.
  const uint32_t qh = (1u << 1) | (1u << 16) | (1u << 31);
  for (int i = 0; i < 4; ++i) block.push_back(uint8_t(qh >> (8 * i)));
  for (int j = 0; j < 16; ++j) block.push_back(uint8_t(j | (15 - j) << 4));  // lo = j, hi = 15 - j
  REQUIRE(block.size() == 22);
  float y[32];
  dequantize_to_float(GgmlType::Q5_0, block.data(), 32, y);
  CHECK(y[0] == (0 - 16) * 0.5f);
  CHECK(y[1] == (1 + 16 - 16) * 0.5f);
  CHECK(y[15] == (15 - 16) * 0.5f);
  CHECK(y[16] == (15 + 16 - 16) * 0.5f);
  CHECK(y[17] == (14 - 16) * 0.5f);
  CHECK(y[31] == (0 + 16 - 16) * 0.5f);
}

TEST_CASE("dequant: Q4_K value is d * sc * nibble - dmin * m with the 6-bit scales unpacked") {
  std::vector<uint8_t> block = fp16_le(0.25f);   // d
  const std::vector<uint8_t> dmin = fp16_le(2.0f);
  block.insert(block.end(), dmin.begin(), dmin.end());
  // Scales sc[s] = 40 + s, mins m[s] = 20 + s: sub-blocks 0..3 take bytes 0..7 directly; 4..7 take
  // their low 4 bits from bytes 8..11 and their top 2 bits from the top bits of bytes 0..7.
  int sc[8], m[8];
  for (int s = 0; s < 8; ++s) sc[s] = 40 + s, m[s] = 20 + s;
  uint8_t scales[12];
  for (int s = 0; s < 4; ++s) {
    scales[s] = uint8_t(sc[s] | (sc[s + 4] >> 4) << 6);
    scales[s + 4] = uint8_t(m[s] | (m[s + 4] >> 4) << 6);
    scales[s + 8] = uint8_t((sc[s + 4] & 15) | (m[s + 4] & 15) << 4);
  }
  block.insert(block.end(), scales, scales + 12);
  // qs[32g + l]: low nibble = l % 16 (sub-block 2g), high nibble = g (sub-block 2g + 1).
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) block.push_back(uint8_t((l % 16) | g << 4));
  }
  REQUIRE(block.size() == 144);
  std::vector<float> y(256);
  dequantize_to_float(GgmlType::Q4_K, block.data(), 256, y.data());
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      CAPTURE(g);
      CAPTURE(l);
      CHECK(y[64 * g + l] == 0.25f * sc[2 * g] * float(l % 16) - 2.0f * m[2 * g]);
      CHECK(y[64 * g + 32 + l] == 0.25f * sc[2 * g + 1] * float(g) - 2.0f * m[2 * g + 1]);
    }
  }
}

TEST_CASE("dequant: Q6_K value is d * scale * (6-bit q - 32) in 16 sub-blocks of 16") {
  // Element e of half h = e / 128 takes its low 4 bits from ql and its top 2 from qh; choose the
  // 6-bit value e % 64 for every element and build the bytes from that.
  uint8_t ql[128] = {}, qh[64] = {};
  auto q_of = [](int e) { return e % 64; };
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int base = 128 * h;
      const int q1 = q_of(base + l), q2 = q_of(base + l + 32), q3 = q_of(base + l + 64), q4 = q_of(base + l + 96);
      ql[64 * h + l] = uint8_t((q1 & 15) | (q3 & 15) << 4);
      ql[64 * h + l + 32] = uint8_t((q2 & 15) | (q4 & 15) << 4);
      qh[32 * h + l] = uint8_t((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
    }
  }
  std::vector<uint8_t> block(ql, ql + 128);
  block.insert(block.end(), qh, qh + 64);
  for (int s = 0; s < 16; ++s) block.push_back(uint8_t(int8_t(s % 2 ? -(s + 1) : s + 1)));  // scales ±(s+1)
  const std::vector<uint8_t> d = fp16_le(0.125f);
  block.insert(block.end(), d.begin(), d.end());
  REQUIRE(block.size() == 210);
  std::vector<float> y(256);
  dequantize_to_float(GgmlType::Q6_K, block.data(), 256, y.data());
  for (int e = 0; e < 256; ++e) {
    CAPTURE(e);
    const int s = e / 16;
    const float scale = float(s % 2 ? -(s + 1) : s + 1);
    CHECK(y[e] == 0.125f * scale * float(q_of(e) - 32));
  }
}

// =============================================================================================
TEST_CASE("dequant: which types can be dequantized, and the errors for the others") {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                     GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    CAPTURE(ggml_type_name(t));
    CHECK(can_dequantize(t));
  }
  for (GgmlType t : {GgmlType::Q5_1, GgmlType::Q8_1, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q5_K, GgmlType::Q8_K,
                     GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::I32, GgmlType::F64, GgmlType::TQ1_0}) {
    CAPTURE(ggml_type_name(t));
    CHECK_FALSE(can_dequantize(t));
  }
  std::vector<uint8_t> zeros(4 * 256);
  std::vector<float> out(4 * 256);
  std::vector<uint16_t> out_bf16(4 * 256);
  SUBCASE("an unsupported type lists every supported one") {
    const std::string want =
        "dequantize: tensor type Q5_K is not supported: expected F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K or Q6_K";
    CHECK(message_of<LoadError>([&] { dequantize_to_float(GgmlType::Q5_K, zeros.data(), 256, out.data()); }) == want);
    CHECK(message_of<LoadError>([&] { dequantize_to_bf16(GgmlType::Q5_K, zeros.data(), 256, out_bf16.data()); }) ==
          want);
  }
  SUBCASE("a count that is not a whole number of blocks names the type and the block size") {
    CHECK(message_of<LoadError>([&] { dequantize_to_float(GgmlType::Q4_K, zeros.data(), 300, out.data()); }) ==
          "dequantize: 300 elements of Q4_K is not a whole number of blocks of 256");
    CHECK(message_of<LoadError>([&] { dequantize_to_bf16(GgmlType::Q4_K, zeros.data(), 32, out_bf16.data()); }) ==
          "dequantize: 32 elements of Q4_K is not a whole number of blocks of 256");
    CHECK(message_of<LoadError>([&] { dequantize_to_float(GgmlType::Q6_K, zeros.data(), 128, out.data()); }) ==
          "dequantize: 128 elements of Q6_K is not a whole number of blocks of 256");
    CHECK(message_of<LoadError>([&] { dequantize_to_float(GgmlType::Q5_0, zeros.data(), 48, out.data()); }) ==
          "dequantize: 48 elements of Q5_0 is not a whole number of blocks of 32");
  }
  SUBCASE("several blocks of a 256-element type are laid out one after another") {
    // All-zero blocks dequantize to 0; a count of 3 blocks writes exactly 768 elements.
    std::fill(out.begin(), out.end(), -1.0f);
    dequantize_to_float(GgmlType::Q4_K, zeros.data(), 768, out.data());
    for (size_t i = 0; i < 768; ++i) REQUIRE(out[i] == 0.0f);
    CHECK(out[768] == -1.0f);
  }
}

// =============================================================================================
TEST_CASE("real model: Qwen2.5-Coder-0.5B's Q4_K, Q5_0, Q6_K and Q8_0 tensors begin with the fixture's blocks" *
          ftp_test::needs_model(ftp_test::kQwen05)) {
  const nlohmann::json& g = golden();
  REQUIRE_MESSAGE(g.contains("model"), "the fixture has no model blocks: regenerate it with "
                                       "tools/make_dequant_fixtures.py --from-gguf <the 0.5B GGUF>");
  const std::string path = ftp_test::model_path(ftp_test::kQwen05);
  const GgufFile f = GgufFile::open(path);
  REQUIRE_MESSAGE(f.file_size() == g.at("model").at("bytes").get<size_t>(), "the fixture was made from another file (",
                  g.at("model").at("file").get<std::string>(), "), not ", path);
  for (const auto& c : g.at("model_tensors")) {
    const std::string name = c.at("tensor").get<std::string>();
    CAPTURE(name);
    const TensorInfo* t = f.find_tensor(name);
    REQUIRE(t != nullptr);
    CHECK(ggml_type_name(t->type) == c.at("type").get<std::string>());
    const std::vector<uint8_t> raw = bytes_from_hex(c.at("raw").get<std::string>());
    REQUIRE(raw.size() <= t->n_bytes);
    CHECK(std::memcmp(f.tensor_data(*t), raw.data(), raw.size()) == 0);
    check_against(t->type, f.tensor_data(*t), expected_bits(c));
  }

  // Whole tensors, one of each type (the first of at most 8M elements: the embedding and output
  // matrices have 136M), dequantize to finite values, and bf16 is the float result rounded.
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_0, GgmlType::Q6_K, GgmlType::Q8_0}) {
    const TensorInfo* t = nullptr;
    for (const TensorInfo& candidate : f.tensors()) {
      if (candidate.type == type && candidate.n_elements <= 8u * 1024 * 1024) {
        t = &candidate;
        break;
      }
    }
    REQUIRE_MESSAGE(t != nullptr, "no ", ggml_type_name(type), " tensor of at most 8M elements");
    CAPTURE(t->name);
    const std::vector<float> as_float = tensor_to_float(f, *t);
    const std::vector<uint16_t> as_bf16 = tensor_to_bf16(f, *t);
    size_t non_finite = 0, mismatches = 0;
    for (size_t i = 0; i < as_float.size(); ++i) {
      non_finite += !std::isfinite(as_float[i]);
      mismatches += as_bf16[i] != bf16_from_float(as_float[i]);
    }
    CHECK(non_finite == 0);
    CHECK(mismatches == 0);
  }
}
