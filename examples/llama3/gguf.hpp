// GGUF (v2 and v3) reader: metadata key/values and tensor descriptors, with every byte checked.
//
// A GGUF file is, in order (all little-endian):
//   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | n_dims x u64 ne | u32 ggml_type | u64 offset }
//   padding up to `general.alignment` (default 32) | tensor data
// where string = u64 length + bytes (no terminator), and an array value is
// u32 element_type + u64 length + elements. ne[0] is the innermost (fastest-varying) dimension,
// so a linear weight with ne = [in, out] is row-major [out, in]. Tensor offsets are relative to
// the start of the data section and must be multiples of the alignment.
//
// The parser treats the file as hostile: every read is bounds-checked, every count is compared to
// the bytes left before anything is allocated, and every size product is overflow-checked, so a
// malformed file ends in llama3::LoadError (what is wrong, where, what was expected), never a crash.
#pragma once

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llama3 {

/// Raised for any file that cannot be read or does not hold what the loader expects.
class LoadError : public std::runtime_error {
 public:
  explicit LoadError(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {

template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  out.precision(9);
  (out << ... << parts);
  return out.str();
}

[[noreturn]] inline void fail(const std::string& message) { throw LoadError("GGUF: " + message); }

/// A name from the file, quoted for a message: non-printable bytes as \xNN and long names cut,
/// since a corrupt length can make a "name" out of arbitrary binary data.
inline std::string quoted(const std::string& name) {
  constexpr size_t kMaxShown = 96;
  static const char* const kHex = "0123456789abcdef";
  std::string out = "'";
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    const unsigned char ch = static_cast<unsigned char>(name[i]);
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      out += char(ch);
    } else {
      out += "\\x";
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  if (name.size() > kMaxShown) out += cat("...' (", name.size(), " bytes)");
  else out += "'";
  return out;
}

/// a * b, or fail naming `what` when it does not fit in 64 bits.
inline uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& what) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) {
    fail(cat(what, ": size ", a, " x ", b, " overflows 64 bits"));
  }
  return a * b;
}

inline uint64_t checked_add(uint64_t a, uint64_t b, const std::string& what) {
  if (b > std::numeric_limits<uint64_t>::max() - a) {
    fail(cat(what, ": ", a, " + ", b, " overflows 64 bits"));
  }
  return a + b;
}

}  // namespace detail

/// Metadata value types, numbered as in the GGUF specification.
enum class GgufType : uint32_t {
  UInt8 = 0,
  Int8 = 1,
  UInt16 = 2,
  Int16 = 3,
  UInt32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  UInt64 = 10,
  Int64 = 11,
  Float64 = 12,
};

inline const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UInt8: return "uint8";
    case GgufType::Int8: return "int8";
    case GgufType::UInt16: return "uint16";
    case GgufType::Int16: return "int16";
    case GgufType::UInt32: return "uint32";
    case GgufType::Int32: return "int32";
    case GgufType::Float32: return "float32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::UInt64: return "uint64";
    case GgufType::Int64: return "int64";
    case GgufType::Float64: return "float64";
  }
  return "unknown";
}

inline bool gguf_type_is_integer(GgufType t) {
  switch (t) {
    case GgufType::UInt8: case GgufType::Int8: case GgufType::UInt16: case GgufType::Int16:
    case GgufType::UInt32: case GgufType::Int32: case GgufType::UInt64: case GgufType::Int64:
    case GgufType::Bool:
      return true;
    default:
      return false;
  }
}

inline bool gguf_type_is_float(GgufType t) {
  return t == GgufType::Float32 || t == GgufType::Float64;
}

/// Tensor element types, numbered as in ggml (`enum ggml_type`). Only some are dequantized by
/// dequant.hpp; the rest are known so that files holding them still parse and report clearly.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
};

/// How a ggml type packs elements: `block_size` elements take `block_bytes` bytes.
struct GgmlTypeTraits {
  const char* name;
  uint32_t block_size;
  uint32_t block_bytes;
};

/// Traits of a ggml type id, or nullptr for an id this reader does not know.
/// Block sizes follow ggml's block structs (e.g. Q4_1 = fp16 d + fp16 m + 16 bytes of nibbles).
inline const GgmlTypeTraits* ggml_type_traits(uint32_t id) {
  static const GgmlTypeTraits kF32{"F32", 1, 4}, kF16{"F16", 1, 2}, kQ4_0{"Q4_0", 32, 18},
      kQ4_1{"Q4_1", 32, 20}, kQ5_0{"Q5_0", 32, 22}, kQ5_1{"Q5_1", 32, 24}, kQ8_0{"Q8_0", 32, 34},
      kQ8_1{"Q8_1", 32, 36}, kQ2_K{"Q2_K", 256, 84}, kQ3_K{"Q3_K", 256, 110},
      kQ4_K{"Q4_K", 256, 144}, kQ5_K{"Q5_K", 256, 176}, kQ6_K{"Q6_K", 256, 210},
      kQ8_K{"Q8_K", 256, 292}, kIQ2_XXS{"IQ2_XXS", 256, 66}, kIQ2_XS{"IQ2_XS", 256, 74},
      kIQ3_XXS{"IQ3_XXS", 256, 98}, kIQ1_S{"IQ1_S", 256, 50}, kIQ4_NL{"IQ4_NL", 32, 18},
      kIQ3_S{"IQ3_S", 256, 110}, kIQ2_S{"IQ2_S", 256, 82}, kIQ4_XS{"IQ4_XS", 256, 136},
      kI8{"I8", 1, 1}, kI16{"I16", 1, 2}, kI32{"I32", 1, 4}, kI64{"I64", 1, 8},
      kF64{"F64", 1, 8}, kIQ1_M{"IQ1_M", 256, 56}, kBF16{"BF16", 1, 2},
      kTQ1_0{"TQ1_0", 256, 54}, kTQ2_0{"TQ2_0", 256, 66};
  switch (static_cast<GgmlType>(id)) {
    case GgmlType::F32: return &kF32;
    case GgmlType::F16: return &kF16;
    case GgmlType::Q4_0: return &kQ4_0;
    case GgmlType::Q4_1: return &kQ4_1;
    case GgmlType::Q5_0: return &kQ5_0;
    case GgmlType::Q5_1: return &kQ5_1;
    case GgmlType::Q8_0: return &kQ8_0;
    case GgmlType::Q8_1: return &kQ8_1;
    case GgmlType::Q2_K: return &kQ2_K;
    case GgmlType::Q3_K: return &kQ3_K;
    case GgmlType::Q4_K: return &kQ4_K;
    case GgmlType::Q5_K: return &kQ5_K;
    case GgmlType::Q6_K: return &kQ6_K;
    case GgmlType::Q8_K: return &kQ8_K;
    case GgmlType::IQ2_XXS: return &kIQ2_XXS;
    case GgmlType::IQ2_XS: return &kIQ2_XS;
    case GgmlType::IQ3_XXS: return &kIQ3_XXS;
    case GgmlType::IQ1_S: return &kIQ1_S;
    case GgmlType::IQ4_NL: return &kIQ4_NL;
    case GgmlType::IQ3_S: return &kIQ3_S;
    case GgmlType::IQ2_S: return &kIQ2_S;
    case GgmlType::IQ4_XS: return &kIQ4_XS;
    case GgmlType::I8: return &kI8;
    case GgmlType::I16: return &kI16;
    case GgmlType::I32: return &kI32;
    case GgmlType::I64: return &kI64;
    case GgmlType::F64: return &kF64;
    case GgmlType::IQ1_M: return &kIQ1_M;
    case GgmlType::BF16: return &kBF16;
    case GgmlType::TQ1_0: return &kTQ1_0;
    case GgmlType::TQ2_0: return &kTQ2_0;
  }
  return nullptr;
}

inline std::string ggml_type_name(GgmlType t) {
  const GgmlTypeTraits* traits = ggml_type_traits(static_cast<uint32_t>(t));
  return traits ? traits->name : detail::cat("type#", static_cast<uint32_t>(t));
}

namespace detail {

/// Bounds-checked little-endian cursor over the file bytes. Every read names what it reads so a
/// truncation error says where the file ended.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  // `what` names the item for error messages: a string, or a callable returning one, so that
  // reading 100k array elements does not build 100k descriptions that are almost never shown.
  template <class What>
  void need(uint64_t n, const What& what) const {
    if (n > left()) {
      fail(cat("file truncated while reading ", describe(what), " at byte offset ", pos_, ": need ", n,
               " bytes, only ", left(), " left (file size ", size_, ")"));
    }
  }

  template <class T, class What>
  T read(const What& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));  // memcpy: the file gives no alignment guarantee
    pos_ += sizeof(T);
    return v;
  }

  template <class What>
  std::string read_string(const What& what) {
    const uint64_t at = pos_;
    const uint64_t len = read<uint64_t>([&] { return describe(what) + " length"; });
    if (len > left()) {
      fail(cat(describe(what), " at byte offset ", at, " has length ", len, ", more than the ", left(),
               " bytes left in the file"));
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

  /// The text of a `what`: the string itself, or what the callable returns.
  template <class What>
  static std::string describe(const What& what) {
    if constexpr (std::is_invocable_v<const What&>) {
      return what();
    } else {
      return std::string(what);
    }
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

/// Reads one integer or bool of type `t` as a zero/sign-extended 64-bit pattern.
template <class What>
uint64_t read_integer(ByteReader& r, GgufType t, const What& what) {
  switch (t) {
    case GgufType::UInt8: return r.read<uint8_t>(what);
    case GgufType::Int8: return static_cast<uint64_t>(static_cast<int64_t>(r.read<int8_t>(what)));
    case GgufType::UInt16: return r.read<uint16_t>(what);
    case GgufType::Int16: return static_cast<uint64_t>(static_cast<int64_t>(r.read<int16_t>(what)));
    case GgufType::UInt32: return r.read<uint32_t>(what);
    case GgufType::Int32: return static_cast<uint64_t>(static_cast<int64_t>(r.read<int32_t>(what)));
    case GgufType::UInt64: return r.read<uint64_t>(what);
    case GgufType::Int64: return static_cast<uint64_t>(r.read<int64_t>(what));
    case GgufType::Bool: {
      const uint64_t at = r.pos();
      const uint8_t b = r.read<uint8_t>(what);
      if (b > 1) fail(cat(ByteReader::describe(what), " at byte offset ", at, " is a bool with byte ", int(b), ": expected 0 or 1"));
      return b;
    }
    default:
      fail(cat(ByteReader::describe(what), " has non-integer type ", gguf_type_name(t)));  // callers prevent this
  }
}

/// Bytes of one scalar of type `t` (0 for string and array).
inline uint64_t scalar_bytes(GgufType t) {
  switch (t) {
    case GgufType::UInt8: case GgufType::Int8: case GgufType::Bool: return 1;
    case GgufType::UInt16: case GgufType::Int16: return 2;
    case GgufType::UInt32: case GgufType::Int32: case GgufType::Float32: return 4;
    case GgufType::UInt64: case GgufType::Int64: case GgufType::Float64: return 8;
    default: return 0;
  }
}

/// Reads a u32 value type and checks it is one GGUF defines.
inline GgufType read_value_type(ByteReader& r, const std::string& what) {
  const uint64_t at = r.pos();
  const uint32_t raw = r.read<uint32_t>([&] { return "value type of " + what; });
  if (raw > static_cast<uint32_t>(GgufType::Float64)) {
    fail(cat("unknown value type ", raw, " for ", what, " at byte offset ", at, ": expected 0..12 (uint8 .. float64)"));
  }
  return static_cast<GgufType>(raw);
}

}  // namespace detail

/// One tensor's descriptor. `ne` beyond `n_dims` is 1.
struct TensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  std::array<uint64_t, 4> ne{{1, 1, 1, 1}};  ///< ne[0] innermost
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;        ///< relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  uint64_t info_offset = 0;   ///< file offset of this descriptor, for messages

  /// "[576, 49152]" (ne order, innermost first), for messages.
  std::string shape_string() const {
    std::string s = "[";
    for (uint32_t i = 0; i < n_dims; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
  }
};

/// A parsed GGUF file. Copies share the underlying bytes (an mmap for open(), a private copy for
/// parse()), so tensor_data() pointers stay valid as long as any copy lives.
class GgufFile {
 public:
  /// Maps `path` read-only and parses it. Throws LoadError if it cannot be opened or is malformed.
  static GgufFile open(const std::string& path);

  /// Parses `size` bytes at `data`; the bytes are copied, so the caller's buffer may go away.
  static GgufFile parse(const uint8_t* data, size_t size);

  uint32_t version() const { return version_; }

  bool has(const std::string& key) const { return meta_.count(key) != 0; }
  /// Value type of `key` (GgufType::Array for arrays). Throws if absent.
  GgufType type_of(const std::string& key) const { return get_(key).type; }
  /// Element type of the array `key`. Throws if absent or not an array.
  GgufType array_type_of(const std::string& key) const { return array_(key).elem_type; }
  /// Number of elements of the array `key`, without copying it.
  size_t array_size(const std::string& key) const { return array_(key).count; }
  /// All metadata keys in file order.
  const std::vector<std::string>& keys() const { return key_order_; }

  std::string get_string(const std::string& key) const;
  /// Any integer or bool value; throws if a uint64 does not fit in int64.
  int64_t get_int(const std::string& key) const;
  /// A float32/float64 value; integer values are accepted and converted.
  double get_float(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  /// An array of any integer or bool type.
  std::vector<int64_t> get_int_array(const std::string& key) const;
  /// An array of float32/float64 (or integer) elements.
  std::vector<double> get_float_array(const std::string& key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// The tensor called `name`, or nullptr.
  const TensorInfo* find_tensor(const std::string& name) const;
  /// Pointer to the first byte of `t`'s data (t.n_bytes bytes, bounds checked at parse time).
  const uint8_t* tensor_data(const TensorInfo& t) const { return bytes_->data + data_offset_ + t.offset; }

  uint64_t alignment() const { return alignment_; }
  /// File offset where the tensor data section starts.
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return bytes_->size; }

 private:
  /// Owns the file bytes: either an mmap'ed region or a heap copy.
  struct Bytes {
    const uint8_t* data = nullptr;
    size_t size = 0;
    std::vector<uint8_t> copy;
    void* map = nullptr;
    size_t map_size = 0;
    Bytes() = default;
    Bytes(const Bytes&) = delete;
    Bytes& operator=(const Bytes&) = delete;
    ~Bytes() {
      if (map) munmap(map, map_size);
    }
  };

  /// A metadata value. Integers are kept as raw 64-bit patterns with their type so that uint64
  /// values above INT64_MAX are only an error when someone asks for them as int64.
  struct Value {
    GgufType type = GgufType::UInt8;
    GgufType elem_type = GgufType::UInt8;  // arrays only
    uint64_t offset = 0;                   // file offset of the value, for messages
    uint64_t count = 0;                    // arrays only
    uint64_t bits = 0;                     // integer/bool scalars: zero/sign-extended value
    double real = 0;                       // float scalars
    std::string str;                       // string scalars
    std::vector<uint64_t> ints;            // integer/bool arrays
    std::vector<double> reals;             // float arrays
    std::vector<std::string> strs;         // string arrays
  };

  static GgufFile parse_bytes_(std::shared_ptr<Bytes> bytes);
  static void read_header_(detail::ByteReader& r, GgufFile& f, uint64_t& tensor_count, uint64_t& kv_count);
  static Value read_value_(detail::ByteReader& r, const std::string& what);
  void read_alignment_();
  TensorInfo read_tensor_info_(detail::ByteReader& r, uint64_t index) const;
  void check_data_section_(uint64_t end_of_infos);
  const Value& get_(const std::string& key) const;
  const Value& array_(const std::string& key) const;
  [[noreturn]] void wrong_type_(const std::string& key, const Value& v, const char* wanted) const;
  static int64_t to_int64_(const std::string& key, GgufType t, uint64_t bits);

  std::shared_ptr<Bytes> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, Value> meta_;
  std::vector<std::string> key_order_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

inline GgufFile GgufFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw LoadError("GGUF: cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw LoadError("GGUF: cannot stat '" + path + "': " + std::strerror(e));
  }
  auto bytes = std::make_shared<Bytes>();
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > 0) {
    void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw LoadError("GGUF: cannot mmap '" + path + "': " + std::strerror(e));
    }
    bytes->map = map;
    bytes->map_size = size;
    bytes->data = static_cast<const uint8_t*>(map);
    bytes->size = size;
  }
  ::close(fd);  // the mapping stays valid after close
  try {
    return parse_bytes_(std::move(bytes));
  } catch (const LoadError& e) {
    throw LoadError(std::string(e.what()) + " [file '" + path + "']");
  }
}

inline GgufFile GgufFile::parse(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<Bytes>();
  if (size > 0) bytes->copy.assign(data, data + size);
  bytes->data = bytes->copy.data();
  bytes->size = size;
  return parse_bytes_(std::move(bytes));
}

inline GgufFile GgufFile::parse_bytes_(std::shared_ptr<Bytes> bytes) {
  using detail::cat;
  using detail::fail;
  GgufFile f;
  f.bytes_ = std::move(bytes);
  detail::ByteReader r(f.bytes_->data, f.bytes_->size);

  uint64_t tensor_count = 0, kv_count = 0;
  read_header_(r, f, tensor_count, kv_count);

  for (uint64_t i = 0; i < kv_count; ++i) {
    const uint64_t key_at = r.pos();
    std::string key = r.read_string([&] { return cat("key of metadata entry ", i); });
    if (key.empty()) fail(cat("metadata entry ", i, " at byte offset ", key_at, " has an empty key"));
    if (f.meta_.count(key)) fail(cat("duplicate metadata key ", detail::quoted(key), " at byte offset ", key_at));
    Value v = read_value_(r, "metadata key " + detail::quoted(key));
    f.key_order_.push_back(key);
    f.meta_.emplace(std::move(key), std::move(v));
  }
  f.read_alignment_();

  f.tensors_.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    TensorInfo t = f.read_tensor_info_(r, i);
    f.tensor_index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }
  f.check_data_section_(r.pos());
  return f;
}

/// Magic, version and the two counts; the counts are checked against the bytes left.
inline void GgufFile::read_header_(detail::ByteReader& r, GgufFile& f, uint64_t& tensor_count, uint64_t& kv_count) {
  using detail::cat;
  using detail::fail;
  if (r.left() < 4) fail(cat("file too small for the magic: ", r.left(), " bytes, expected at least 4"));
  const uint8_t* m = f.bytes_->data;
  if (!(m[0] == 'G' && m[1] == 'G' && m[2] == 'U' && m[3] == 'F')) {
    fail(cat("bad magic at byte offset 0: expected \"GGUF\" (47 47 55 46), got ", std::hex, int(m[0]), " ",
             int(m[1]), " ", int(m[2]), " ", int(m[3])));
  }
  r.read<uint32_t>("magic");
  f.version_ = r.read<uint32_t>("version");
  if (f.version_ != 2 && f.version_ != 3) {
    // A byte-swapped small version means a big-endian file (allowed by v3, not supported here).
    const uint32_t v = f.version_;
    const uint32_t swapped = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    if (swapped == 2 || swapped == 3) {
      fail(cat("version field at byte offset 4 reads ", v,
               ": this is a big-endian GGUF, only little-endian files are supported"));
    }
    fail(cat("unsupported version ", v, " at byte offset 4: expected 2 or 3"));
  }
  tensor_count = r.read<uint64_t>("tensor count");
  kv_count = r.read<uint64_t>("metadata key/value count");
  // Smallest encodings: a kv is an 8-byte key length + 4-byte type + at least 1 byte of value;
  // a tensor info is 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset). Counts that could not
  // fit in the bytes left are rejected before anything is reserved.
  constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
  constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;
  if (kv_count > r.left() / kMinKvBytes) {
    fail(cat("metadata key/value count ", kv_count, " at byte offset 16 cannot fit in the ", r.left(),
             " bytes left in the file"));
  }
  if (tensor_count > r.left() / kMinTensorInfoBytes) {
    fail(cat("tensor count ", tensor_count, " at byte offset 8 cannot fit in the ", r.left(),
             " bytes left in the file"));
  }
}

/// One value (type tag and payload) of the metadata entry described by `what`.
inline GgufFile::Value GgufFile::read_value_(detail::ByteReader& r, const std::string& what) {
  using detail::cat;
  using detail::fail;
  Value v;
  v.type = detail::read_value_type(r, what);
  v.offset = r.pos();
  const std::string value_what = "value of " + what;
  if (gguf_type_is_integer(v.type)) {
    v.bits = detail::read_integer(r, v.type, value_what);
  } else if (v.type == GgufType::Float32) {
    v.real = r.read<float>(value_what);
  } else if (v.type == GgufType::Float64) {
    v.real = r.read<double>(value_what);
  } else if (v.type == GgufType::String) {
    v.str = r.read_string(value_what);
  } else {  // Array
    const uint64_t et_at = r.pos();
    v.elem_type = detail::read_value_type(r, "elements of " + what);
    const uint64_t count_at = r.pos();
    v.count = r.read<uint64_t>("length of " + what);
    if (v.elem_type == GgufType::Array) {
      fail(cat(what, " at byte offset ", et_at, " is an array of arrays: not supported"));
    }
    // Strings take at least their 8-byte length each; scalars take their size.
    const uint64_t min_elem = v.elem_type == GgufType::String ? 8 : detail::scalar_bytes(v.elem_type);
    if (v.count > r.left() / min_elem) {
      fail(cat(what, ": array length ", v.count, " at byte offset ", count_at, " needs at least ", v.count, " x ",
               min_elem, " bytes, only ", r.left(), " left in the file"));
    }
    uint64_t j = 0;
    auto elem_what = [&] { return cat("element [", j, "] of ", what); };
    if (v.elem_type == GgufType::String) {
      v.strs.reserve(static_cast<size_t>(v.count));
      for (; j < v.count; ++j) v.strs.push_back(r.read_string(elem_what));
    } else if (gguf_type_is_float(v.elem_type)) {
      v.reals.reserve(static_cast<size_t>(v.count));
      for (; j < v.count; ++j) {
        v.reals.push_back(v.elem_type == GgufType::Float32 ? double(r.read<float>(elem_what))
                                                           : r.read<double>(elem_what));
      }
    } else {
      v.ints.reserve(static_cast<size_t>(v.count));
      for (; j < v.count; ++j) v.ints.push_back(detail::read_integer(r, v.elem_type, elem_what));
    }
  }
  return v;
}

/// general.alignment: the spec makes it a uint32; any integer type is taken, but it must be a
/// nonzero power of two since tensor offsets are rounded up to it.
inline void GgufFile::read_alignment_() {
  using detail::cat;
  auto it = meta_.find("general.alignment");
  if (it == meta_.end()) return;
  const Value& a = it->second;
  if (!gguf_type_is_integer(a.type) || a.type == GgufType::Bool) {
    detail::fail(cat("metadata key 'general.alignment' at byte offset ", a.offset, " has type ", gguf_type_name(a.type),
                     ": expected uint32"));
  }
  const int64_t al = to_int64_("general.alignment", a.type, a.bits);
  if (al <= 0 || (al & (al - 1)) != 0 || al > (int64_t(1) << 30)) {
    detail::fail(cat("metadata key 'general.alignment' at byte offset ", a.offset, " is ", al,
                     ": expected a power of two between 1 and 2^30"));
  }
  alignment_ = static_cast<uint64_t>(al);
}

/// Descriptor `index`: name, dims, type and offset, with sizes overflow-checked.
inline TensorInfo GgufFile::read_tensor_info_(detail::ByteReader& r, uint64_t index) const {
  using detail::cat;
  using detail::fail;
  TensorInfo t;
  t.info_offset = r.pos();
  t.name = r.read_string([&] { return cat("name of tensor ", index); });
  const std::string what = "tensor " + detail::quoted(t.name);
  if (t.name.empty()) fail(cat("tensor ", index, " at byte offset ", t.info_offset, " has an empty name"));
  if (tensor_index_.count(t.name)) fail(cat("duplicate ", what, " at byte offset ", t.info_offset));
  const uint64_t ndims_at = r.pos();
  t.n_dims = r.read<uint32_t>("dimension count of " + what);
  if (t.n_dims < 1 || t.n_dims > 4) {
    fail(cat(what, ": dimension count ", t.n_dims, " at byte offset ", ndims_at, " is out of range: expected 1..4"));
  }
  uint64_t n = 1;
  for (uint32_t d = 0; d < t.n_dims; ++d) {
    const uint64_t dim_at = r.pos();
    t.ne[d] = r.read<uint64_t>([&] { return cat("ne[", d, "] of ", what); });
    // ggml keeps ne as int64_t, so larger values are not valid sizes.
    if (t.ne[d] == 0 || t.ne[d] > uint64_t(std::numeric_limits<int64_t>::max())) {
      fail(cat(what, ": ne[", d, "] = ", t.ne[d], " at byte offset ", dim_at, " is out of range: expected 1..2^63-1"));
    }
    n = detail::checked_mul(n, t.ne[d], what + " element count");
  }
  if (n > uint64_t(std::numeric_limits<int64_t>::max())) fail(cat(what, ": element count ", n, " exceeds 2^63-1"));
  t.n_elements = n;
  const uint64_t type_at = r.pos();
  const uint32_t raw_type = r.read<uint32_t>("type of " + what);
  const GgmlTypeTraits* traits = ggml_type_traits(raw_type);
  if (!traits) {
    fail(cat(what, ": unknown tensor type ", raw_type, " at byte offset ", type_at,
             ": expected a ggml type id (F32=0, F16=1, Q4_0=2, Q4_1=3, Q8_0=8, BF16=30, ...)"));
  }
  t.type = static_cast<GgmlType>(raw_type);
  if (t.ne[0] % traits->block_size != 0) {
    fail(cat(what, " of type ", traits->name, ": ne[0] = ", t.ne[0], " is not a multiple of the block size ",
             traits->block_size));
  }
  t.n_bytes = detail::checked_mul(t.n_elements / traits->block_size, traits->block_bytes, what + " byte size");
  const uint64_t off_at = r.pos();
  t.offset = r.read<uint64_t>("data offset of " + what);
  if (t.offset % alignment_ != 0) {
    fail(cat(what, ": data offset ", t.offset, " at byte offset ", off_at,
             " is misaligned: expected a multiple of the alignment ", alignment_));
  }
  return t;
}

/// Places the data section after the descriptors and checks every tensor lies inside it.
inline void GgufFile::check_data_section_(uint64_t end_of_infos) {
  using detail::cat;
  const uint64_t rem = end_of_infos % alignment_;
  data_offset_ = rem ? detail::checked_add(end_of_infos, alignment_ - rem, "data section offset") : end_of_infos;
  const uint64_t file_size = bytes_->size;
  if (tensors_.empty()) return;
  if (data_offset_ > file_size) {
    detail::fail(cat("data section would start at byte offset ", data_offset_, " (end of tensor infos ", end_of_infos,
                     " rounded up to alignment ", alignment_, ") but the file has only ", file_size, " bytes"));
  }
  const uint64_t data_size = file_size - data_offset_;
  for (const TensorInfo& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      detail::fail(cat("tensor ", detail::quoted(t.name), " (", ggml_type_name(t.type), ", ne ", t.shape_string(),
                       ") needs bytes [", t.offset, ", +", t.n_bytes, ") of the data section at file offset ",
                       data_offset_, ", but the data section has only ", data_size, " bytes"));
    }
  }
}

inline const GgufFile::Value& GgufFile::get_(const std::string& key) const {
  auto it = meta_.find(key);
  if (it == meta_.end()) detail::fail("missing metadata key " + detail::quoted(key));
  return it->second;
}

inline const GgufFile::Value& GgufFile::array_(const std::string& key) const {
  const Value& v = get_(key);
  if (v.type != GgufType::Array) wrong_type_(key, v, "an array");
  return v;
}

inline void GgufFile::wrong_type_(const std::string& key, const Value& v, const char* wanted) const {
  std::string have = gguf_type_name(v.type);
  if (v.type == GgufType::Array) have += std::string(" of ") + gguf_type_name(v.elem_type);
  detail::fail(detail::cat("metadata key ", detail::quoted(key), " (at byte offset ", v.offset, ") has type ", have,
                           ": expected ", wanted));
}

inline int64_t GgufFile::to_int64_(const std::string& key, GgufType t, uint64_t bits) {
  if (t == GgufType::UInt64 && bits > uint64_t(std::numeric_limits<int64_t>::max())) {
    detail::fail(detail::cat("metadata key ", detail::quoted(key), " holds uint64 ", bits, ", which does not fit in int64"));
  }
  return static_cast<int64_t>(bits);
}

inline std::string GgufFile::get_string(const std::string& key) const {
  const Value& v = get_(key);
  if (v.type != GgufType::String) wrong_type_(key, v, "string");
  return v.str;
}

inline int64_t GgufFile::get_int(const std::string& key) const {
  const Value& v = get_(key);
  if (!gguf_type_is_integer(v.type)) wrong_type_(key, v, "an integer or bool");
  return to_int64_(key, v.type, v.bits);
}

inline double GgufFile::get_float(const std::string& key) const {
  const Value& v = get_(key);
  if (gguf_type_is_float(v.type)) return v.real;
  if (gguf_type_is_integer(v.type) && v.type != GgufType::Bool) {
    return v.type == GgufType::UInt64 ? double(v.bits) : double(static_cast<int64_t>(v.bits));
  }
  wrong_type_(key, v, "float32 or float64");
}

inline std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const Value& v = array_(key);
  if (v.elem_type != GgufType::String) wrong_type_(key, v, "array of string");
  return v.strs;
}

inline std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const Value& v = array_(key);
  if (!gguf_type_is_integer(v.elem_type)) wrong_type_(key, v, "array of integers");
  std::vector<int64_t> out;
  out.reserve(v.ints.size());
  for (uint64_t b : v.ints) out.push_back(to_int64_(key, v.elem_type, b));
  return out;
}

inline std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const Value& v = array_(key);
  if (gguf_type_is_float(v.elem_type)) return v.reals;
  if (gguf_type_is_integer(v.elem_type) && v.elem_type != GgufType::Bool) {
    std::vector<double> out;
    out.reserve(v.ints.size());
    for (uint64_t b : v.ints) {
      out.push_back(v.elem_type == GgufType::UInt64 ? double(b) : double(static_cast<int64_t>(b)));
    }
    return out;
  }
  wrong_type_(key, v, "array of float32 or float64");
}

inline const TensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace llama3
