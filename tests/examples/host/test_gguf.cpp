// Tests of the GGUF reader, dequantization, LlamaConfig and HostWeights: hand-built files and
// blocks with known contents, malformed files (truncated, flipped, out-of-range fields) that must
// fail with a LoadError saying what and where, and the real SmolLM2 model when it is present.
#include <doctest/doctest.h>

#include "model_path.hpp"
#include "error_text.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llama3/bf16.hpp"
#include "llama3/dequant.hpp"
#include "llama3/gguf.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model_config.hpp"

using namespace llama3;
using ftp_test::contains;
using ftp_test::message_of;

namespace {

// ---------------------------------------------------------------------------------------------
// An in-memory GGUF writer for tests. It writes what it is told, including invalid values, so
// malformed files are easy to make.
class GgufWriter {
 public:
  uint32_t version = 3;
  uint64_t alignment = 32;  // used to place tensor data; write general.alignment yourself
  static constexpr uint64_t kUnset = ~uint64_t(0);
  uint64_t kv_count_override = kUnset;
  uint64_t tensor_count_override = kUnset;

  template <class T>
  static void put(std::vector<uint8_t>& b, T v) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
  }
  static void put_str(std::vector<uint8_t>& b, const std::string& s) {
    put<uint64_t>(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }

  void kv_raw(const std::string& key, uint32_t type, const std::vector<uint8_t>& value) {
    put_str(kv_, key);
    put<uint32_t>(kv_, type);
    kv_.insert(kv_.end(), value.begin(), value.end());
    ++n_kv_;
  }
  template <class T>
  void kv(const std::string& key, GgufType type, T v) {
    std::vector<uint8_t> b;
    put<T>(b, v);
    kv_raw(key, uint32_t(type), b);
  }
  void kv_u32(const std::string& key, uint32_t v) { kv(key, GgufType::UInt32, v); }
  void kv_f32(const std::string& key, float v) { kv(key, GgufType::Float32, v); }
  void kv_str(const std::string& key, const std::string& s) {
    std::vector<uint8_t> b;
    put_str(b, s);
    kv_raw(key, uint32_t(GgufType::String), b);
  }
  void kv_str_array(const std::string& key, const std::vector<std::string>& a) {
    std::vector<uint8_t> b;
    put<uint32_t>(b, uint32_t(GgufType::String));
    put<uint64_t>(b, a.size());
    for (const std::string& s : a) put_str(b, s);
    kv_raw(key, uint32_t(GgufType::Array), b);
  }
  template <class T>
  void kv_array(const std::string& key, GgufType elem, const std::vector<T>& a) {
    std::vector<uint8_t> b;
    put<uint32_t>(b, uint32_t(elem));
    put<uint64_t>(b, a.size());
    for (T v : a) put<T>(b, v);
    kv_raw(key, uint32_t(GgufType::Array), b);
  }

  /// A tensor descriptor with explicit fields (offset relative to the data section) and no data.
  void tensor_raw(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
    put_str(infos_, name);
    put<uint32_t>(infos_, uint32_t(ne.size()));
    for (uint64_t n : ne) put<uint64_t>(infos_, n);
    put<uint32_t>(infos_, type);
    put<uint64_t>(infos_, offset);
    ++n_tensors_;
  }
  /// A tensor with its bytes, placed at the next aligned offset of the data section.
  void tensor(const std::string& name, const std::vector<uint64_t>& ne, GgmlType type, const std::vector<uint8_t>& bytes) {
    while (data_.size() % alignment) data_.push_back(0);
    tensor_raw(name, ne, uint32_t(type), data_.size());
    data_.insert(data_.end(), bytes.begin(), bytes.end());
  }
  void tensor_f32(const std::string& name, const std::vector<uint64_t>& ne, const std::vector<float>& v) {
    std::vector<uint8_t> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    tensor(name, ne, GgmlType::F32, b);
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> f = {'G', 'G', 'U', 'F'};
    put<uint32_t>(f, version);
    put<uint64_t>(f, tensor_count_override != kUnset ? tensor_count_override : n_tensors_);
    put<uint64_t>(f, kv_count_override != kUnset ? kv_count_override : n_kv_);
    f.insert(f.end(), kv_.begin(), kv_.end());
    f.insert(f.end(), infos_.begin(), infos_.end());
    if (n_tensors_) {
      while (f.size() % alignment) f.push_back(0);
      f.insert(f.end(), data_.begin(), data_.end());
    }
    return f;
  }

 private:
  std::vector<uint8_t> kv_, infos_, data_;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
};

/// The LoadError message of parsing `bytes`, or "" if it parsed. Anything else escapes the test.
std::string parse_error(const std::vector<uint8_t>& bytes) {
  return message_of<LoadError>([&] { GgufFile::parse(bytes.data(), bytes.size()); });
}

/// A small valid file with every value type and two tensors.
GgufWriter sample_writer() {
  GgufWriter w;
  w.kv_str("general.architecture", "llama");
  w.kv("u8", GgufType::UInt8, uint8_t(200));
  w.kv("i8", GgufType::Int8, int8_t(-100));
  w.kv("u16", GgufType::UInt16, uint16_t(60000));
  w.kv("i16", GgufType::Int16, int16_t(-30000));
  w.kv_u32("u32", 4000000000u);
  w.kv("i32", GgufType::Int32, int32_t(-2000000000));
  w.kv("u64", GgufType::UInt64, uint64_t(1) << 40);
  w.kv("i64", GgufType::Int64, -(int64_t(1) << 40));
  w.kv_f32("f32", 0.5f);
  w.kv("f64", GgufType::Float64, 0.125);
  w.kv("flag", GgufType::Bool, uint8_t(1));
  w.kv_str_array("words", {"a", "", "ccc"});
  w.kv_array<int32_t>("ints", GgufType::Int32, {1, -2, 3});
  w.kv_array<float>("floats", GgufType::Float32, {1.5f, -2.0f});
  w.tensor_f32("vec", {4}, {1, 2, 3, 4});
  w.tensor_f32("mat", {2, 3}, {1, 2, 3, 4, 5, 6});
  return w;
}

uint16_t fp16_bits(float v) {
  // Only for exactly representable test values: normal halves built from the float's fields.
  uint32_t b;
  std::memcpy(&b, &v, 4);
  if ((b & 0x7fffffffu) == 0) return uint16_t(b >> 16);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const int exp = int((b >> 23) & 0xff) - 127 + 15;
  return uint16_t(sign | (uint32_t(exp) << 10) | ((b >> 13) & 0x3ffu));
}

// ---------------------------------------------------------------------------------------------
using ftp_test::model_path_or_skip;

}  // namespace

// =============================================================================================
TEST_CASE("gguf: a well-formed file parses and every getter returns what was written") {
  const std::vector<uint8_t> bytes = sample_writer().build();
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size());
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.keys().size() == 15);
  CHECK(f.keys().front() == "general.architecture");
  CHECK(f.has("u8"));
  CHECK_FALSE(f.has("nope"));
  CHECK(f.get_string("general.architecture") == "llama");
  CHECK(f.get_int("u8") == 200);
  CHECK(f.get_int("i8") == -100);
  CHECK(f.get_int("u16") == 60000);
  CHECK(f.get_int("i16") == -30000);
  CHECK(f.get_int("u32") == 4000000000LL);
  CHECK(f.get_int("i32") == -2000000000LL);
  CHECK(f.get_int("u64") == (int64_t(1) << 40));
  CHECK(f.get_int("i64") == -(int64_t(1) << 40));
  CHECK(f.get_int("flag") == 1);
  CHECK(f.get_float("f32") == 0.5);
  CHECK(f.get_float("f64") == 0.125);
  CHECK(f.get_float("i32") == -2000000000.0);  // integers are accepted as floats
  CHECK(f.get_string_array("words") == std::vector<std::string>{"a", "", "ccc"});
  CHECK(f.get_int_array("ints") == std::vector<int64_t>{1, -2, 3});
  CHECK(f.get_float_array("floats") == std::vector<double>{1.5, -2.0});
  CHECK(f.array_size("words") == 3);
  CHECK(f.type_of("words") == GgufType::Array);
  CHECK(f.array_type_of("words") == GgufType::String);

  REQUIRE(f.tensors().size() == 2);
  const TensorInfo* mat = f.find_tensor("mat");
  REQUIRE(mat != nullptr);
  CHECK(f.find_tensor("missing") == nullptr);
  CHECK(mat->n_dims == 2);
  CHECK(mat->ne[0] == 2);
  CHECK(mat->ne[1] == 3);
  CHECK(mat->n_elements == 6);
  CHECK(mat->n_bytes == 24);
  CHECK(mat->offset == 32);  // after "vec" (16 bytes) rounded up to the alignment
  CHECK(f.data_offset() % 32 == 0);
  float v[6];
  std::memcpy(v, f.tensor_data(*mat), sizeof v);
  CHECK(v[0] == 1.0f);
  CHECK(v[5] == 6.0f);
}

TEST_CASE("gguf: version 2 is accepted, 1 and 4 are not, big-endian is named") {
  GgufWriter w = sample_writer();
  w.version = 2;
  std::vector<uint8_t> b = w.build();
  CHECK(GgufFile::parse(b.data(), b.size()).version() == 2);
  w.version = 1;
  CHECK(contains(parse_error(w.build()), "unsupported version 1 at byte offset 4: expected 2 or 3"));
  w.version = 4;
  CHECK(contains(parse_error(w.build()), "unsupported version 4"));
  w.version = 0x03000000u;
  CHECK(contains(parse_error(w.build()), "big-endian"));
}

TEST_CASE("gguf: wrong-typed and missing keys throw naming the key") {
  const std::vector<uint8_t> bytes = sample_writer().build();
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size());
  const auto message = [](auto&& fn) { return message_of<LoadError>(fn); };
  CHECK(contains(message([&] { f.get_string("u32"); }), "metadata key 'u32' (at byte offset"));
  CHECK(contains(message([&] { f.get_string("u32"); }), "has type uint32: expected string"));
  CHECK(contains(message([&] { f.get_int("f32"); }), "metadata key 'f32'"));
  CHECK(contains(message([&] { f.get_int("words"); }), "has type array of string: expected an integer"));
  CHECK(contains(message([&] { f.get_float("general.architecture"); }), "'general.architecture'"));
  CHECK(contains(message([&] { f.get_float("flag"); }), "has type bool"));
  CHECK(contains(message([&] { f.get_string_array("ints"); }), "array of int32: expected array of string"));
  CHECK(contains(message([&] { f.get_int_array("words"); }), "'words'"));
  CHECK(contains(message([&] { f.get_float_array("u8"); }), "expected an array"));
  CHECK(contains(message([&] { f.get_int("absent.key"); }), "missing metadata key 'absent.key'"));
}

TEST_CASE("gguf: uint64 above INT64_MAX is an error only when read as int64") {
  GgufWriter w;
  w.kv("big", GgufType::UInt64, UINT64_MAX);
  const std::vector<uint8_t> b = w.build();
  const GgufFile f = GgufFile::parse(b.data(), b.size());
  CHECK_THROWS_WITH_AS(f.get_int("big"), doctest::Contains("does not fit in int64"), LoadError);
  CHECK(f.get_float("big") == doctest::Approx(1.8446744073709552e19));
}

TEST_CASE("gguf: every truncation of a small file throws LoadError") {
  const std::vector<uint8_t> full = sample_writer().build();
  REQUIRE(parse_error(full).empty());
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + long(n));
    const std::string e = parse_error(cut);
    INFO("truncated to ", n, " of ", full.size(), " bytes");
    CHECK_FALSE(e.empty());
    CHECK((contains(e, "truncated") || contains(e, "too small") || contains(e, "cannot fit") ||
           contains(e, "left in the file") || contains(e, "data section")));
  }
  CHECK(contains(parse_error({}), "file too small for the magic"));
  CHECK(contains(parse_error(std::vector<uint8_t>(full.begin(), full.begin() + 6)),
                 "file truncated while reading version at byte offset 4"));
}

TEST_CASE("gguf: malformed fields are rejected with what, where and what was expected") {
  SUBCASE("bad magic") {
    std::vector<uint8_t> b = sample_writer().build();
    b[0] = 'X';
    CHECK(contains(parse_error(b), "bad magic at byte offset 0: expected \"GGUF\""));
  }
  SUBCASE("kv count larger than the file") {
    GgufWriter w = sample_writer();
    w.kv_count_override = uint64_t(1) << 62;
    const std::string e = parse_error(w.build());
    CHECK(contains(e, "metadata key/value count 4611686018427387904 at byte offset 16 cannot fit"));
  }
  SUBCASE("tensor count larger than the file") {
    GgufWriter w = sample_writer();
    w.tensor_count_override = uint64_t(1) << 40;
    CHECK(contains(parse_error(w.build()), "tensor count 1099511627776 at byte offset 8 cannot fit"));
  }
  SUBCASE("string length past the end") {
    GgufWriter w;
    std::vector<uint8_t> v;
    GgufWriter::put<uint64_t>(v, uint64_t(1) << 60);  // claims a huge string
    w.kv_raw("k", uint32_t(GgufType::String), v);
    const std::string e = parse_error(w.build());
    CHECK(contains(e, "value of metadata key 'k' at byte offset 37 has length 1152921504606846976"));
  }
  SUBCASE("array length past the end") {
    GgufWriter w;
    std::vector<uint8_t> v;
    GgufWriter::put<uint32_t>(v, uint32_t(GgufType::UInt32));
    GgufWriter::put<uint64_t>(v, uint64_t(1) << 61);  // 2^61 * 4 bytes would overflow too
    w.kv_raw("arr", uint32_t(GgufType::Array), v);
    CHECK(contains(parse_error(w.build()), "metadata key 'arr': array length 2305843009213693952"));
  }
  SUBCASE("unknown value type") {
    GgufWriter w;
    w.kv_raw("weird", 13, {0, 0, 0, 0});
    CHECK(contains(parse_error(w.build()), "unknown value type 13 for metadata key 'weird' at byte offset"));
  }
  SUBCASE("unknown array element type") {
    GgufWriter w;
    std::vector<uint8_t> v;
    GgufWriter::put<uint32_t>(v, 99);
    GgufWriter::put<uint64_t>(v, 0);
    w.kv_raw("arr", uint32_t(GgufType::Array), v);
    CHECK(contains(parse_error(w.build()), "unknown value type 99 for elements of metadata key 'arr'"));
  }
  SUBCASE("array of arrays") {
    GgufWriter w;
    std::vector<uint8_t> v;
    GgufWriter::put<uint32_t>(v, uint32_t(GgufType::Array));
    GgufWriter::put<uint64_t>(v, 0);
    w.kv_raw("nested", uint32_t(GgufType::Array), v);
    CHECK(contains(parse_error(w.build()), "array of arrays"));
  }
  SUBCASE("bool that is neither 0 nor 1") {
    GgufWriter w;
    w.kv("b", GgufType::Bool, uint8_t(7));
    CHECK(contains(parse_error(w.build()), "bool with byte 7: expected 0 or 1"));
  }
  SUBCASE("duplicate key") {
    GgufWriter w;
    w.kv_u32("a", 1);
    w.kv_u32("a", 2);
    CHECK(contains(parse_error(w.build()), "duplicate metadata key 'a'"));
  }
  SUBCASE("binary junk in a name is escaped in the message") {
    GgufWriter w;
    w.kv_u32("a", 1);
    w.kv_u32(std::string("a\x01\xff", 3), 2);
    w.kv_u32("a", 3);
    CHECK(contains(parse_error(w.build()), "duplicate metadata key 'a' at byte offset"));
    GgufWriter w2;
    w2.kv_u32(std::string("k\x01\xff", 3), 2);
    w2.kv_u32(std::string("k\x01\xff", 3), 2);
    CHECK(contains(parse_error(w2.build()), "duplicate metadata key 'k\\x01\\xff'"));
  }
  SUBCASE("empty key") {
    GgufWriter w;
    w.kv_u32("", 1);
    CHECK(contains(parse_error(w.build()), "empty key"));
  }
  SUBCASE("alignment not a power of two") {
    GgufWriter w = sample_writer();
    w.kv_u32("general.alignment", 48);
    CHECK(contains(parse_error(w.build()), "'general.alignment' at byte offset"));
    CHECK(contains(parse_error(w.build()), "is 48: expected a power of two"));
  }
  SUBCASE("alignment of the wrong type") {
    GgufWriter w;
    w.kv_str("general.alignment", "32");
    CHECK(contains(parse_error(w.build()), "has type string: expected uint32"));
  }
  SUBCASE("a larger alignment is honoured") {
    GgufWriter w;
    w.alignment = 64;
    w.kv_u32("general.alignment", 64);
    w.tensor_f32("vec", {4}, {1, 2, 3, 4});
    w.tensor_f32("mat", {2, 3}, {1, 2, 3, 4, 5, 6});
    const std::vector<uint8_t> b = w.build();
    const GgufFile f = GgufFile::parse(b.data(), b.size());
    CHECK(f.alignment() == 64);
    CHECK(f.data_offset() % 64 == 0);
    CHECK(f.find_tensor("mat")->offset == 64);
  }
  SUBCASE("misaligned tensor offset") {
    GgufWriter w;
    w.tensor_raw("t", {8}, uint32_t(GgmlType::F32), 4);
    CHECK(contains(parse_error(w.build()),
                   "tensor 't': data offset 4 at byte offset 49 is misaligned: expected a multiple of the alignment 32"));
  }
  SUBCASE("unknown tensor type") {
    GgufWriter w;
    w.tensor_raw("t", {8}, 4, 0);  // 4 was Q4_2, removed from ggml
    CHECK(contains(parse_error(w.build()), "tensor 't': unknown tensor type 4 at byte offset 45"));
  }
  SUBCASE("dimension count out of range") {
    GgufWriter w;
    w.tensor_raw("t5", {1, 1, 1, 1, 1}, 0, 0);
    CHECK(contains(parse_error(w.build()), "tensor 't5': dimension count 5 at byte offset 34 is out of range: expected 1..4"));
    GgufWriter w0;
    w0.tensor_raw("t0", {}, 0, 0);
    CHECK(contains(parse_error(w0.build()), "tensor 't0': dimension count 0"));
  }
  SUBCASE("zero dimension") {
    GgufWriter w;
    w.tensor_raw("z", {4, 0}, 0, 0);
    CHECK(contains(parse_error(w.build()), "tensor 'z': ne[1] = 0 at byte offset 45 is out of range"));
  }
  SUBCASE("element count overflow") {
    GgufWriter w;
    w.tensor_raw("huge", {uint64_t(1) << 32, uint64_t(1) << 32, uint64_t(1) << 32}, 0, 0);
    CHECK(contains(parse_error(w.build()), "tensor 'huge' element count: size"));
    CHECK(contains(parse_error(w.build()), "overflows 64 bits"));
  }
  SUBCASE("byte size overflow") {
    GgufWriter w;
    w.tensor_raw("big", {uint64_t(1) << 62}, uint32_t(GgmlType::F32), 0);
    CHECK(contains(parse_error(w.build()), "tensor 'big' byte size"));
  }
  SUBCASE("ne[0] not a whole number of blocks") {
    GgufWriter w;
    w.tensor_raw("q", {48, 2}, uint32_t(GgmlType::Q4_1), 0);
    CHECK(contains(parse_error(w.build()), "tensor 'q' of type Q4_1: ne[0] = 48 is not a multiple of the block size 32"));
  }
  SUBCASE("tensor data past the end of the file") {
    GgufWriter w;
    w.tensor_f32("a", {4}, {1, 2, 3, 4});
    w.tensor_raw("b", {1024}, uint32_t(GgmlType::F32), 32);
    CHECK(contains(parse_error(w.build()), "tensor 'b' (F32, ne [1024]) needs bytes [32, +4096)"));
  }
  SUBCASE("huge tensor offset") {
    GgufWriter w;
    w.tensor_raw("far", {8}, uint32_t(GgmlType::F32), uint64_t(1) << 63);
    CHECK(contains(parse_error(w.build()), "tensor 'far'"));
  }
  SUBCASE("duplicate tensor name") {
    GgufWriter w;
    w.tensor_f32("a", {4}, {1, 2, 3, 4});
    w.tensor_f32("a", {4}, {1, 2, 3, 4});
    CHECK(contains(parse_error(w.build()), "duplicate tensor 'a'"));
  }
}

TEST_CASE("gguf: the remaining malformed headers and descriptors are rejected") {
  SUBCASE("empty tensor name") {
    GgufWriter w;
    w.tensor_raw("", {4}, uint32_t(GgmlType::F32), 0);
    CHECK(contains(parse_error(w.build()), "tensor 0 at byte offset 24 has an empty name"));
  }
  SUBCASE("dimension above 2^63-1") {
    GgufWriter w;
    w.tensor_raw("n", {uint64_t(1) << 63}, uint32_t(GgmlType::F32), 0);
    CHECK(contains(parse_error(w.build()),
                   "tensor 'n': ne[0] = 9223372036854775808 at byte offset 37 is out of range: expected 1..2^63-1"));
  }
  SUBCASE("element count above 2^63-1 without overflowing 64 bits") {
    GgufWriter w;
    w.tensor_raw("e", {uint64_t(1) << 32, (uint64_t(1) << 31) + 1}, uint32_t(GgmlType::I8), 0);
    CHECK(contains(parse_error(w.build()), "tensor 'e': element count 9223372041149743104 exceeds 2^63-1"));
  }
  SUBCASE("file ends inside the padding before the data section") {
    GgufWriter w;
    w.tensor_raw("t", {8}, uint32_t(GgmlType::F32), 0);
    std::vector<uint8_t> b = w.build();
    b.resize(24 + 8 + 1 + 4 + 8 + 4 + 8);  // header + the one descriptor: 57 bytes, not a multiple of 32
    CHECK(contains(parse_error(b), "data section would start at byte offset 64 (end of tensor infos 57 rounded up to "
                                   "alignment 32) but the file has only 57 bytes"));
  }
  SUBCASE("alignment 0, above 2^30, or a uint64 beyond int64") {
    GgufWriter w0;
    w0.kv_u32("general.alignment", 0);
    CHECK(contains(parse_error(w0.build()), "is 0: expected a power of two between 1 and 2^30"));
    GgufWriter big;
    big.kv_u32("general.alignment", uint32_t(1) << 31);
    CHECK(contains(parse_error(big.build()), "is 2147483648: expected a power of two between 1 and 2^30"));
    GgufWriter huge;
    huge.kv("general.alignment", GgufType::UInt64, UINT64_MAX);
    CHECK(contains(parse_error(huge.build()),
                   "metadata key 'general.alignment' holds uint64 18446744073709551615, which does not fit in int64"));
  }
}

TEST_CASE("gguf: getters reject arrays of the wrong element type and scalars asked for as arrays") {
  const std::vector<uint8_t> bytes = sample_writer().build();
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size());
  CHECK(contains(message_of<LoadError>([&] { f.get_float_array("words"); }),
                 "has type array of string: expected array of float32 or float64"));
  CHECK(contains(message_of<LoadError>([&] { f.get_int_array("floats"); }), "has type array of float32: expected array of integers"));
  CHECK(contains(message_of<LoadError>([&] { f.array_size("u8"); }), "metadata key 'u8' (at byte offset"));
  CHECK(contains(message_of<LoadError>([&] { f.array_size("u8"); }), "has type uint8: expected an array"));
  CHECK(contains(message_of<LoadError>([&] { f.type_of("nope"); }), "GGUF: missing metadata key 'nope'"));
}

TEST_CASE("gguf: open() names the file in every error, and a directory is refused") {
  const std::string path = "/tmp/ftp_test_gguf_bad_" + std::to_string(::getpid()) + ".gguf";
  {
    std::vector<uint8_t> bytes = sample_writer().build();
    bytes[0] = 'X';
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  const std::string bad = message_of<LoadError>([&] { GgufFile::open(path); });
  std::remove(path.c_str());
  CHECK(contains(bad, "GGUF: bad magic at byte offset 0"));
  CHECK(contains(bad, " [file '" + path + "']"));

  char dir_template[] = "/tmp/ftp_test_gguf_dir_XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  REQUIRE(dir != nullptr);
  struct stat st {};
  REQUIRE(::stat(dir, &st) == 0);
  const std::string e = message_of<LoadError>([&] { GgufFile::open(dir); });
  ::rmdir(dir);
  // open() succeeds on a directory; mmap then fails (ENODEV), unless the file system reports a
  // directory size of 0, which leaves nothing to map and the parser sees an empty file.
  if (st.st_size > 0) {
    CHECK(contains(e, std::string("GGUF: cannot mmap '") + dir + "': No such device"));
  } else {
    CHECK(contains(e, "file too small for the magic: 0 bytes"));
  }
}

TEST_CASE("gguf: random byte flips never crash (LoadError or a valid parse)") {
  const std::vector<uint8_t> full = sample_writer().build();
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> b = full;
    const int flips = 1 + int(rng() % 4);
    for (int i = 0; i < flips; ++i) b[rng() % b.size()] ^= uint8_t(1u << (rng() % 8));
    INFO("trial ", trial);
    try {
      GgufFile::parse(b.data(), b.size());
    } catch (const LoadError&) {
    }
  }
}

TEST_CASE("gguf: the file form opens, and a missing file is a LoadError naming it") {
  const std::vector<uint8_t> bytes = sample_writer().build();
  const std::string path = "/tmp/ftp_test_gguf_" + std::to_string(::getpid()) + ".gguf";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  const GgufFile f = GgufFile::open(path);
  CHECK(f.get_string("general.architecture") == "llama");
  CHECK(f.file_size() == bytes.size());
  std::remove(path.c_str());
  const std::string expected = "cannot open '" + path + "'";
  CHECK_THROWS_WITH_AS(GgufFile::open(path), doctest::Contains(expected.c_str()), LoadError);
}

// =============================================================================================
TEST_CASE("bf16: conversion rounds to nearest even and keeps NaN and infinity") {
  auto from_bits = [](uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  };
  CHECK(bf16_from_float(1.0f) == 0x3f80);
  CHECK(bf16_from_float(-2.0f) == 0xc000);
  CHECK(bf16_from_float(0.0f) == 0x0000);
  CHECK(bf16_from_float(-0.0f) == 0x8000);
  CHECK(bf16_from_float(from_bits(0x3f808000u)) == 0x3f80);  // tie: stays even
  CHECK(bf16_from_float(from_bits(0x3f818000u)) == 0x3f82);  // tie: rounds up to even
  CHECK(bf16_from_float(from_bits(0x3f808001u)) == 0x3f81);  // above the tie
  CHECK(bf16_from_float(from_bits(0x3f807fffu)) == 0x3f80);  // below the tie
  CHECK(bf16_from_float(from_bits(0x7f7fffffu)) == 0x7f80);  // FLT_MAX rounds to infinity
  CHECK(bf16_from_float(INFINITY) == 0x7f80);
  CHECK(std::isnan(float_from_bf16(bf16_from_float(NAN))));
  CHECK(std::isnan(float_from_bf16(bf16_from_float(from_bits(0x7f800001u)))));  // low-bit NaN stays NaN
  CHECK(float_from_bf16(0x3f80) == 1.0f);
  CHECK(float_from_bf16(0xbfc0) == -1.5f);
  for (float v : {0.1f, -3.14159f, 1e-30f, 6.5e4f}) {
    CHECK(std::fabs(float_from_bf16(bf16_from_float(v)) - v) <= std::fabs(v) * (1.0f / 256));
  }
}

TEST_CASE("dequant: fp16 widening is exact for normals, subnormals, zeros, infinity and NaN") {
  CHECK(float_from_fp16(0x3c00) == 1.0f);
  CHECK(float_from_fp16(0xc000) == -2.0f);
  CHECK(float_from_fp16(0x3555) == 0.333251953125f);  // 1365 / 4096
  CHECK(float_from_fp16(0x7bff) == 65504.0f);
  CHECK(float_from_fp16(0x0001) == std::ldexp(1.0f, -24));
  CHECK(float_from_fp16(0x03ff) == std::ldexp(1023.0f, -24));
  CHECK(float_from_fp16(0x8001) == -std::ldexp(1.0f, -24));
  CHECK(float_from_fp16(0x0000) == 0.0f);
  CHECK(std::signbit(float_from_fp16(0x8000)));
  CHECK(float_from_fp16(0x7c00) == INFINITY);
  CHECK(float_from_fp16(0xfc00) == -INFINITY);
  CHECK(std::isnan(float_from_fp16(0x7e00)));
}

TEST_CASE("dequant: Q8_0 block is q * d") {
  std::vector<uint8_t> block(34);
  const uint16_t d = fp16_bits(0.5f);
  std::memcpy(block.data(), &d, 2);
  for (int i = 0; i < 32; ++i) block[size_t(2 + i)] = uint8_t(int8_t(i * 8 - 128));
  float y[32];
  dequantize_to_float(GgmlType::Q8_0, block.data(), 32, y);
  for (int i = 0; i < 32; ++i) CHECK(y[i] == float(i * 8 - 128) * 0.5f);
  uint16_t h[32];
  dequantize_to_bf16(GgmlType::Q8_0, block.data(), 32, h);
  for (int i = 0; i < 32; ++i) CHECK(float_from_bf16(h[i]) == float(i * 8 - 128) * 0.5f);
}

TEST_CASE("dequant: Q4_0 low nibbles are elements 0..15, high nibbles 16..31, value (q - 8) * d") {
  std::vector<uint8_t> blocks(2 * 18);
  const float ds[2] = {2.0f, -0.25f};
  for (int b = 0; b < 2; ++b) {
    const uint16_t d = fp16_bits(ds[b]);
    std::memcpy(&blocks[size_t(b * 18)], &d, 2);
    for (int j = 0; j < 16; ++j) blocks[size_t(b * 18 + 2 + j)] = uint8_t(j | ((15 - j) << 4));
  }
  float y[64];
  dequantize_to_float(GgmlType::Q4_0, blocks.data(), 64, y);
  for (int b = 0; b < 2; ++b) {
    for (int j = 0; j < 16; ++j) {
      CHECK(y[b * 32 + j] == float(j - 8) * ds[b]);
      CHECK(y[b * 32 + 16 + j] == float(15 - j - 8) * ds[b]);
    }
  }
}

TEST_CASE("dequant: Q4_1 value is q * d + m") {
  std::vector<uint8_t> block(20);
  const uint16_t d = fp16_bits(0.25f), m = fp16_bits(-1.0f);
  std::memcpy(&block[0], &d, 2);
  std::memcpy(&block[2], &m, 2);
  for (int j = 0; j < 16; ++j) block[size_t(4 + j)] = uint8_t(((j * 7) & 15) | (j << 4));
  float y[32];
  dequantize_to_float(GgmlType::Q4_1, block.data(), 32, y);
  for (int j = 0; j < 16; ++j) {
    CHECK(y[j] == float((j * 7) & 15) * 0.25f - 1.0f);
    CHECK(y[16 + j] == float(j) * 0.25f - 1.0f);
  }
}

TEST_CASE("dequant: F32, F16 and BF16 inputs") {
  const float f32[3] = {1.0f, -0.1f, 3e38f};
  uint16_t out[3];
  dequantize_to_bf16(GgmlType::F32, reinterpret_cast<const uint8_t*>(f32), 3, out);
  CHECK(out[0] == 0x3f80);
  CHECK(out[1] == bf16_from_float(-0.1f));
  CHECK(out[2] == bf16_from_float(3e38f));
  const uint16_t f16[2] = {0x3c00, 0xc000};
  float back[2];
  dequantize_to_float(GgmlType::F16, reinterpret_cast<const uint8_t*>(f16), 2, back);
  CHECK(back[0] == 1.0f);
  CHECK(back[1] == -2.0f);
  const uint16_t b16[2] = {0x3f80, 0xc0a0};
  dequantize_to_bf16(GgmlType::BF16, reinterpret_cast<const uint8_t*>(b16), 2, out);
  CHECK(out[0] == 0x3f80);
  CHECK(out[1] == 0xc0a0);
  dequantize_to_float(GgmlType::BF16, reinterpret_cast<const uint8_t*>(b16), 2, back);
  CHECK(back[1] == -5.0f);
}

TEST_CASE("dequant: unsupported types and partial blocks are LoadErrors") {
  std::vector<uint8_t> junk(256);
  float y[256];
  CHECK_THROWS_WITH_AS(dequantize_to_float(GgmlType::Q5_K, junk.data(), 256, y),
                       doctest::Contains("tensor type Q5_K is not supported"), LoadError);
  CHECK_THROWS_WITH_AS(dequantize_to_float(GgmlType::Q8_0, junk.data(), 20, y),
                       doctest::Contains("20 elements of Q8_0 is not a whole number of blocks of 32"), LoadError);
}

// =============================================================================================
namespace {

/// Metadata of a tiny Llama: C=8, I=12, 2 layers, Hq=2, Hkv=1, d=4, V=16.
/// `skip` leaves keys out (without the "<arch>." prefix), so a test can write its own value.
GgufWriter tiny_llama_metadata(const std::string& arch = "llama", const std::set<std::string>& skip = {}) {
  GgufWriter w;
  w.kv_str("general.architecture", arch);
  const std::string p = arch + ".";
  auto u32 = [&](const std::string& key, uint32_t v) {
    if (!skip.count(key)) w.kv_u32(p + key, v);
  };
  auto f32 = [&](const std::string& key, float v) {
    if (!skip.count(key)) w.kv_f32(p + key, v);
  };
  u32("context_length", 64);
  u32("embedding_length", 8);
  u32("block_count", 2);
  u32("feed_forward_length", 12);
  u32("attention.head_count", 2);
  u32("attention.head_count_kv", 1);
  f32("rope.freq_base", 10000.0f);
  f32("attention.layer_norm_rms_epsilon", 1e-6f);
  return w;
}

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * float(int(i % 7) - 3);
  return v;
}

/// The metadata `w` (by default tiny_llama_metadata) plus every tensor, all F32, not yet built;
/// `skip` omits one tensor by name, `bad_shape` gives one tensor a transposed shape.
GgufWriter tiny_llama_writer(const std::string& skip = "", const std::string& bad_shape = "", bool with_output = false,
                             GgufWriter w = tiny_llama_metadata()) {
  auto add = [&](const std::string& name, std::vector<uint64_t> ne) {
    if (name == skip) return;
    if (name == bad_shape && ne.size() == 2) std::swap(ne[0], ne[1]);
    size_t n = 1;
    for (uint64_t x : ne) n *= size_t(x);
    w.tensor_f32(name, ne, ramp(n, 0.01f));
  };
  add("token_embd.weight", {8, 16});
  for (int l = 0; l < 2; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {8});
    add(b + "attn_q.weight", {8, 8});
    add(b + "attn_k.weight", {8, 4});
    add(b + "attn_v.weight", {8, 4});
    add(b + "attn_output.weight", {8, 8});
    add(b + "ffn_norm.weight", {8});
    add(b + "ffn_gate.weight", {8, 12});
    add(b + "ffn_up.weight", {8, 12});
    add(b + "ffn_down.weight", {12, 8});
  }
  add("output_norm.weight", {8});
  if (with_output) add("output.weight", {8, 16});
  return w;
}

std::vector<uint8_t> tiny_llama_file(const std::string& skip = "", const std::string& bad_shape = "",
                                     bool with_output = false) {
  return tiny_llama_writer(skip, bad_shape, with_output).build();
}

std::string config_error(const GgufWriter& w) {
  const std::vector<uint8_t> b = w.build();
  return message_of<LoadError>([&] { config_from_gguf(GgufFile::parse(b.data(), b.size())); });
}

}  // namespace

TEST_CASE("config: a tiny llama reads back with derived sizes") {
  const std::vector<uint8_t> b = tiny_llama_file();
  const LlamaConfig c = config_from_gguf(GgufFile::parse(b.data(), b.size()));
  CHECK(c.architecture == "llama");
  CHECK(c.hidden == 8);
  CHECK(c.ffn == 12);
  CHECK(c.n_layers == 2);
  CHECK(c.n_heads == 2);
  CHECK(c.n_kv_heads == 1);
  CHECK(c.head_dim == 4);
  CHECK(c.rope_dim == 4);
  CHECK(c.vocab == 16);  // rows of token_embd.weight
  CHECK(c.group_size() == 2);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.rms_eps == doctest::Approx(1e-6));
  CHECK(c.rope_style == RopeStyle::Interleaved);
  CHECK(c.rope_scaling.type == RopeScalingType::None);
  CHECK_FALSE(c.qkv_bias);
}

TEST_CASE("config: invalid or missing metadata names the key") {
  SUBCASE("architecture") {
    GgufWriter w;
    w.kv_str("general.architecture", "gpt2");
    CHECK(contains(config_error(w), "general.architecture is 'gpt2': expected 'llama' or 'qwen2'"));
  }
  SUBCASE("missing key") {
    GgufWriter w;
    w.kv_str("general.architecture", "llama");
    CHECK(contains(config_error(w), "missing metadata key 'llama.context_length'"));
  }
  SUBCASE("head counts") {
    GgufWriter bad;
    bad.kv_str("general.architecture", "llama");
    bad.kv_u32("llama.context_length", 64);
    bad.kv_u32("llama.embedding_length", 12);
    bad.kv_u32("llama.block_count", 1);
    bad.kv_u32("llama.feed_forward_length", 8);
    bad.kv_u32("llama.attention.head_count", 3);
    bad.kv_u32("llama.attention.head_count_kv", 2);
    CHECK(contains(config_error(bad), "llama.attention.head_count (3) is not a multiple of llama.attention.head_count_kv (2)"));
  }
  SUBCASE("zero is not positive") {
    GgufWriter w;
    w.kv_str("general.architecture", "llama");
    w.kv_u32("llama.context_length", 0);
    CHECK(contains(config_error(w), "metadata key 'llama.context_length' is 0: expected a positive integer"));
  }
  SUBCASE("wrong type") {
    GgufWriter w;
    w.kv_str("general.architecture", "llama");
    w.kv_str("llama.context_length", "lots");
    CHECK(contains(config_error(w), "metadata key 'llama.context_length'"));
  }
  SUBCASE("missing epsilon") {
    GgufWriter w;
    w.kv_str("general.architecture", "llama");
    w.kv_u32("llama.context_length", 64);
    w.kv_u32("llama.embedding_length", 8);
    w.kv_u32("llama.block_count", 1);
    w.kv_u32("llama.feed_forward_length", 8);
    w.kv_u32("llama.attention.head_count", 2);
    CHECK(contains(config_error(w), "missing metadata key 'llama.attention.layer_norm_rms_epsilon'"));
  }
  SUBCASE("odd rope dimension") {
    GgufWriter w = tiny_llama_metadata();
    w.kv_u32("llama.rope.dimension_count", 3);
    w.kv_u32("llama.vocab_size", 16);
    CHECK(contains(config_error(w), "llama.rope.dimension_count is 3: expected an even number <= head size 4"));
  }
  SUBCASE("unsupported rope scaling") {
    GgufWriter w = tiny_llama_metadata();
    w.kv_str("llama.rope.scaling.type", "yarn");
    w.kv_u32("llama.vocab_size", 16);
    CHECK(contains(config_error(w), "'llama.rope.scaling.type' is 'yarn': expected 'none', 'linear' or 'llama3'"));
  }
  SUBCASE("no way to tell the vocabulary") {
    CHECK(contains(config_error(tiny_llama_metadata()), "cannot tell the vocabulary size"));
  }
}

TEST_CASE("config: qwen2 keys use the qwen2 prefix, NeoX RoPE and biases") {
  GgufWriter w = tiny_llama_metadata("qwen2");
  w.kv_str_array("tokenizer.ggml.tokens", {"a", "b", "c"});
  w.kv_str("qwen2.rope.scaling.type", "linear");
  w.kv_f32("qwen2.rope.scaling.factor", 4.0f);
  const std::vector<uint8_t> b = w.build();
  const LlamaConfig c = config_from_gguf(GgufFile::parse(b.data(), b.size()));
  CHECK(c.architecture == "qwen2");
  CHECK(c.vocab == 3);  // no embedding tensor: the token list
  CHECK(c.rope_style == RopeStyle::NeoX);
  CHECK(c.qkv_bias);
  CHECK(c.rope_scaling.type == RopeScalingType::Linear);
  CHECK(c.rope_scaling.factor == 4.0);
}

TEST_CASE("config: llama3 rope scaling keys") {
  GgufWriter w = tiny_llama_metadata();
  w.kv_u32("llama.vocab_size", 16);
  w.kv_str("llama.rope.scaling.type", "llama3");
  w.kv_f32("llama.rope.scaling.factor", 8.0f);
  w.kv_u32("llama.rope.scaling.original_context_length", 8192);
  w.kv_f32("llama.rope.scaling.low_freq_factor", 1.0f);
  w.kv_f32("llama.rope.scaling.high_freq_factor", 4.0f);
  const std::vector<uint8_t> b = w.build();
  const LlamaConfig c = config_from_gguf(GgufFile::parse(b.data(), b.size()));
  CHECK(c.rope_scaling.type == RopeScalingType::Llama3);
  CHECK(c.rope_scaling.factor == 8.0);
  CHECK(c.rope_scaling.original_context_length == 8192);
  CHECK(c.rope_scaling.high_freq_factor == 4.0);
}

TEST_CASE("weights: a tiny llama loads, ties its output, and bad tensors are named") {
  {
    const std::vector<uint8_t> b = tiny_llama_file();
    const GgufFile f = GgufFile::parse(b.data(), b.size());
    const LlamaConfig c = config_from_gguf(f);
    const HostWeights w = HostWeights::load(f, c);
    CHECK(w.tied_output);
    CHECK(w.output.empty());
    CHECK(&w.output_weight() == &w.token_embd);  // shared, not copied
    CHECK(w.token_embd.size() == 16 * 8);
    REQUIRE(w.layers.size() == 2);
    CHECK(w.layers[1].wk.size() == 4 * 8);
    CHECK(w.layers[1].w_down.size() == 8 * 12);
    CHECK(w.layers[0].bq.empty());
    CHECK(w.rope_freqs.empty());
    // Row-major [out, in]: element (o, i) of a linear weight is GGUF element o * in + i.
    CHECK(w.layers[0].w_gate[size_t(3 * 8 + 5)] == bf16_from_float(ramp(96, 0.01f)[3 * 8 + 5]));
  }
  {
    const std::vector<uint8_t> b = tiny_llama_file("", "", /*with_output=*/true);
    const GgufFile f = GgufFile::parse(b.data(), b.size());
    const HostWeights w = HostWeights::load(f, config_from_gguf(f));
    CHECK_FALSE(w.tied_output);
    CHECK(&w.output_weight() == &w.output);
  }
  const auto load_error = [](const std::vector<uint8_t>& b) {
    return message_of<LoadError>([&] {
      const GgufFile f = GgufFile::parse(b.data(), b.size());
      HostWeights::load(f, config_from_gguf(f));
    });
  };
  CHECK(contains(load_error(tiny_llama_file("blk.1.ffn_up.weight")),
                 "missing tensor 'blk.1.ffn_up.weight' (expected ne [8, 12])"));
  CHECK(contains(load_error(tiny_llama_file("", "blk.0.attn_k.weight")),
                 "tensor 'blk.0.attn_k.weight' has ne [4, 8]: expected [8, 4]"));
  CHECK(contains(load_error(tiny_llama_file("", "blk.0.ffn_down.weight")),
                 "tensor 'blk.0.ffn_down.weight' has ne [8, 12]: expected [12, 8]"));
}

TEST_CASE("config: every other rejected value names the key and what was expected") {
  const auto without = [](std::initializer_list<std::string> keys) { return tiny_llama_metadata("llama", keys); };
  SUBCASE("no architecture, or one of the wrong type") {
    GgufWriter w;
    w.kv_u32("llama.block_count", 2);
    CHECK(contains(config_error(w), "model config: missing metadata key 'general.architecture'"));
    GgufWriter typed;
    typed.kv_u32("general.architecture", 1);
    CHECK(contains(config_error(typed), "metadata key 'general.architecture' (at byte offset 56) has type uint32: expected string"));
  }
  SUBCASE("negative count") {
    GgufWriter w = without({"attention.head_count"});
    w.kv("llama.attention.head_count", GgufType::Int32, int32_t(-5));
    CHECK(contains(config_error(w), "metadata key 'llama.attention.head_count' is -5: expected a positive integer"));
  }
  SUBCASE("a size above 2^24") {
    GgufWriter w = without({"feed_forward_length"});
    w.kv_u32("llama.feed_forward_length", (1u << 24) + 1);
    CHECK(contains(config_error(w), "metadata key 'llama.feed_forward_length' is 16777217: expected at most 16777216"));
  }
  SUBCASE("value head size differs from key head size") {
    GgufWriter w = tiny_llama_metadata();
    w.kv_u32("llama.attention.key_length", 4);
    w.kv_u32("llama.attention.value_length", 8);
    CHECK(contains(config_error(w),
                   "llama.attention.value_length (8) differs from llama.attention.key_length (4): not supported"));
  }
  SUBCASE("hidden size not a multiple of the head count") {
    GgufWriter w = without({"embedding_length"});
    w.kv_u32("llama.embedding_length", 9);
    CHECK(contains(config_error(w), "llama.embedding_length (9) is not a multiple of llama.attention.head_count (2)"));
  }
  SUBCASE("head size above 4096") {
    GgufWriter w = tiny_llama_metadata();
    w.kv_u32("llama.attention.key_length", 5000);
    CHECK(contains(config_error(w), "head size 5000 is out of range: expected at most 4096"));
  }
  SUBCASE("rope dimension above the head size") {
    GgufWriter w = tiny_llama_metadata();
    w.kv_u32("llama.rope.dimension_count", 6);
    CHECK(contains(config_error(w), "llama.rope.dimension_count is 6: expected an even number <= head size 4"));
  }
  SUBCASE("rope base of 1") {
    GgufWriter w = without({"rope.freq_base"});
    w.kv_f32("llama.rope.freq_base", 1.0f);
    CHECK(contains(config_error(w), "llama.rope.freq_base is 1: expected a finite number > 1"));
  }
  SUBCASE("rms epsilon of 0") {
    GgufWriter w = without({"attention.layer_norm_rms_epsilon"});
    w.kv_f32("llama.attention.layer_norm_rms_epsilon", 0.0f);
    CHECK(contains(config_error(w),
                   "metadata key 'llama.attention.layer_norm_rms_epsilon' is 0: expected a number in (0, 1)"));
  }
  SUBCASE("llama3 rope scaling with low >= high frequency factor") {
    GgufWriter w = tiny_llama_metadata();
    w.kv_str("llama.rope.scaling.type", "llama3");
    w.kv_f32("llama.rope.scaling.factor", 8.0f);
    w.kv_f32("llama.rope.scaling.low_freq_factor", 4.0f);
    w.kv_f32("llama.rope.scaling.high_freq_factor", 1.0f);
    CHECK(contains(config_error(w), "llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor, got 4 and 1"));
  }
  SUBCASE("rope scaling factor of 0") {
    GgufWriter w = tiny_llama_metadata();
    w.kv_str("llama.rope.scaling.type", "linear");
    w.kv_f32("llama.rope.scaling.factor", 0.0f);
    CHECK(contains(config_error(w), "llama.rope.scaling.factor is 0: expected a finite number > 0"));
  }
  SUBCASE("embedding with 3 dimensions") {
    GgufWriter w = tiny_llama_metadata();
    w.tensor_f32("token_embd.weight", {8, 2, 1}, std::vector<float>(16));
    CHECK(contains(config_error(w), "tensor 'token_embd.weight' has 3 dimensions: expected 2 ([C, V])"));
  }
  SUBCASE("more tokens than embedding rows") {
    GgufWriter w = tiny_llama_metadata();
    w.kv_str_array("tokenizer.ggml.tokens", std::vector<std::string>(3, "t"));
    w.tensor_f32("token_embd.weight", {8, 2}, std::vector<float>(16));
    CHECK(contains(config_error(w), "tokenizer.ggml.tokens has 3 entries but 'token_embd.weight' only 2 rows"));
  }
  SUBCASE("vocabulary above 2^31") {
    GgufWriter w = tiny_llama_metadata();
    w.kv_u32("llama.vocab_size", (1u << 31) + 1);
    CHECK(contains(config_error(w), "vocabulary size 2147483649 is out of range: expected 1..2^31"));
  }
}

TEST_CASE("weights: undequantizable types, bad rope divisors and missing qwen2 biases are named") {
  auto load_error = [](const GgufWriter& w) {
    const std::vector<uint8_t> b = w.build();
    return message_of<LoadError>([&] {
      const GgufFile f = GgufFile::parse(b.data(), b.size());
      HostWeights::load(f, config_from_gguf(f));
    });
  };
  SUBCASE("an int32 tensor") {
    GgufWriter w = tiny_llama_writer("blk.0.ffn_norm.weight");
    w.tensor("blk.0.ffn_norm.weight", {8}, GgmlType::I32, std::vector<uint8_t>(32));
    CHECK(contains(load_error(w), "weights: tensor 'blk.0.ffn_norm.weight' has type I32: expected F32, F16, BF16, "
                                  "Q8_0, Q4_0, Q4_1, Q5_0, Q4_K or Q6_K"));
  }
  SUBCASE("a rope divisor of 0") {
    GgufWriter w = tiny_llama_writer();
    w.tensor_f32("rope_freqs.weight", {2}, {1.0f, 0.0f});
    CHECK(contains(load_error(w), "weights: tensor 'rope_freqs.weight' element 1 is 0: expected a finite divisor > 0"));
  }
  SUBCASE("qwen2 without Q/K/V biases") {
    GgufWriter w = tiny_llama_writer("", "", false, tiny_llama_metadata("qwen2"));
    CHECK(contains(load_error(w), "weights: missing tensor 'blk.0.attn_q.bias' (expected ne [8])"));
  }
  SUBCASE("2^24 blocks claimed, 2 present: rejected at blk.2 without allocating for 2^24") {
    GgufWriter meta = tiny_llama_metadata("llama", {"block_count"});
    meta.kv_u32("llama.block_count", 1u << 24);
    rusage before {};
    ::getrusage(RUSAGE_SELF, &before);
    CHECK(contains(load_error(tiny_llama_writer("", "", false, meta)),
                   "weights: missing tensor 'blk.2.attn_norm.weight' (expected ne [8])"));
    rusage after {};
    ::getrusage(RUSAGE_SELF, &after);
    // Sizing the layer list up front took 4.7 GB here (2^24 empty LayerWeights) before failing.
    CHECK(after.ru_maxrss - before.ru_maxrss < 512 * 1024);  // KiB
  }
  SUBCASE("dequantizing a tensor of an unsupported type names it") {
    GgufWriter w;
    w.tensor("q5k", {256}, GgmlType::Q5_K, std::vector<uint8_t>(176));
    const std::vector<uint8_t> b = w.build();
    const GgufFile f = GgufFile::parse(b.data(), b.size());
    CHECK(contains(message_of<LoadError>([&] { tensor_to_float(f, *f.find_tensor("q5k")); }),
                   "tensor 'q5k': dequantize: tensor type Q5_K is not supported: expected F32, F16, BF16, Q8_0, Q4_0, "
                   "Q4_1, Q5_0, Q4_K or Q6_K"));
  }
}

// =============================================================================================
TEST_CASE("real model: SmolLM2-135M config, tensors and a dequantized block") {
  const std::string path = model_path_or_skip();
  if (path.empty()) return;
  const GgufFile f = GgufFile::open(path);
  CHECK(f.version() == 3);
  const LlamaConfig c = config_from_gguf(f);
  CHECK(c.architecture == "llama");
  CHECK(c.hidden == 576);
  CHECK(c.ffn == 1536);
  CHECK(c.n_layers == 30);
  CHECK(c.n_heads == 9);
  CHECK(c.n_kv_heads == 3);
  CHECK(c.head_dim == 64);
  CHECK(c.vocab == 49152);
  CHECK(c.rope_theta == 100000.0);
  CHECK(f.array_size("tokenizer.ggml.tokens") == 49152);
  CHECK(f.get_string_array("tokenizer.ggml.tokens")[1] == "<|im_start|>");
  CHECK(f.get_int("tokenizer.ggml.eos_token_id") == 2);
  const TensorInfo* q = f.find_tensor("blk.0.attn_q.weight");
  REQUIRE(q != nullptr);
  CHECK(q->type == GgmlType::Q4_1);
  CHECK(q->shape_string() == "[576, 576]");
  CHECK(f.find_tensor("output.weight") == nullptr);  // tied embeddings

  // bf16 dequantization equals rounding the float dequantization, on a real Q4_1 tensor.
  const std::vector<float> as_float = tensor_to_float(f, *q);
  const std::vector<uint16_t> as_bf16 = tensor_to_bf16(f, *q);
  REQUIRE(as_float.size() == 576u * 576u);
  size_t mismatches = 0;
  for (size_t i = 0; i < as_float.size(); ++i) mismatches += as_bf16[i] != bf16_from_float(as_float[i]);
  CHECK(mismatches == 0);

  const HostWeights w = HostWeights::load(f, c);
  CHECK(w.tied_output);
  CHECK(w.layers.size() == 30);
  CHECK(w.token_embd.size() == 49152u * 576u);
}

TEST_CASE("real model: truncating the header anywhere is a LoadError") {
  const std::string path = model_path_or_skip();
  if (path.empty()) return;
  const GgufFile full = GgufFile::open(path);
  // Only the header and tensor infos matter here; copy them (plus a bit of data) once.
  const size_t header = size_t(full.data_offset());
  std::vector<uint8_t> bytes(header + 64);
  {
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  // ~150 cut points spread over the header, plus the edges of the tensor info section.
  std::vector<size_t> cuts;
  for (size_t n = 0; n < 64; ++n) cuts.push_back(n);
  for (size_t n = 64; n < header; n += header / 97 + 1) cuts.push_back(n);
  for (size_t n = header - 40; n < header; ++n) cuts.push_back(n);
  for (size_t n : cuts) {
    INFO("truncated to ", n, " bytes");
    try {
      GgufFile::parse(bytes.data(), n);
      FAIL("parsed a truncated header");
    } catch (const LoadError& e) {
      const std::string msg = e.what();
      CHECK((contains(msg, "truncated") || contains(msg, "too small") || contains(msg, "cannot fit") ||
             contains(msg, "left in the file") || contains(msg, "data section")));
    }
  }
  // With the whole header but no data, the first tensor is named as the one that does not fit.
  try {
    GgufFile::parse(bytes.data(), header);
    FAIL("parsed a file without data");
  } catch (const LoadError& e) {
    CHECK(contains(e.what(), "tensor '"));
    CHECK(contains(e.what(), "but the data section has only 0 bytes"));
  }
}
