// Tests for examples/llama3/tokenizer.hpp and chat_template.hpp.
//
// Four kinds of checks:
//   * a tiny hand-made vocabulary whose every expected id was worked out by hand;
//   * malformed metadata (plain constructor and in-memory GGUF files) -> llama3::LoadError;
//   * the real SmolLM2 tokenizer against tests/fixtures/tokenizer_golden.json, which
//     tools/make_tokenizer_golden.py writes from Hugging Face (ids, pre-token splits for the
//     SmolLM2 and Llama 3 patterns, Unicode classes). Model tests read FTP_MODEL_PATH, else
//     .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf, and skip visibly when it is absent;
//   * the real Qwen2.5-Coder tokenizer against tests/fixtures/tokenizer_golden_qwen2.json
//     (make_tokenizer_golden.py --qwen2: ids, rendered ChatML prompts, Qwen2 splits, NFC). The
//     splits, NFC and chat-template checks need no model; the others are decorated
//     needs_model(kQwen05) and report as skipped without the file.
#include <doctest/doctest.h>

#include "model_path.hpp"
#include "error_text.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "llama3/chat_template.hpp"
#include "llama3/gguf.hpp"
#include "llama3/tokenizer.hpp"

namespace {

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

using ftp_test::contains;
using ftp_test::message_of;
using ftp_test::model_path_or_skip;
using ftp_test::source_path;

// ---------------------------------------------------------------------------------------------
// A small JSON reader for the golden fixture (objects, arrays, strings, numbers, literals)
// ---------------------------------------------------------------------------------------------

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  const Json& operator[](const std::string& key) const {
    for (const auto& kv : object) {
      if (kv.first == key) return kv.second;
    }
    throw std::runtime_error("json: no key '" + key + "'");
  }
  bool has(const std::string& key) const {
    for (const auto& kv : object) {
      if (kv.first == key) return true;
    }
    return false;
  }
  std::vector<int32_t> ints() const {
    std::vector<int32_t> out;
    for (const Json& v : array) out.push_back(static_cast<int32_t>(v.number));
    return out;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}
  Json parse() {
    Json v = value();
    ws();
    if (p_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("json: " + what + " at byte " + std::to_string(p_));
  }
  void ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\r' || s_[p_] == '\t')) ++p_;
  }
  char peek() {
    ws();
    if (p_ >= s_.size()) fail("unexpected end");
    return s_[p_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++p_;
  }
  Json value() {
    Json v;
    const char c = peek();
    if (c == '{') {
      v.kind = Json::Kind::Object;
      ++p_;
      if (peek() == '}') return ++p_, v;
      for (;;) {
        std::string key = str();
        expect(':');
        v.object.emplace_back(std::move(key), value());
        if (peek() == ',') {
          ++p_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = Json::Kind::Array;
      ++p_;
      if (peek() == ']') return ++p_, v;
      for (;;) {
        v.array.push_back(value());
        if (peek() == ',') {
          ++p_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = Json::Kind::String;
      v.string = str();
      return v;
    }
    for (const char* lit : {"true", "false", "null"}) {
      if (s_.compare(p_, std::strlen(lit), lit) == 0) {
        p_ += std::strlen(lit);
        v.kind = lit[0] == 'n' ? Json::Kind::Null : Json::Kind::Bool;
        v.boolean = lit[0] == 't';
        return v;
      }
    }
    v.kind = Json::Kind::Number;
    size_t used = 0;
    v.number = std::stod(s_.substr(p_, 40), &used);
    if (used == 0) fail("bad value");
    p_ += used;
    return v;
  }
  uint32_t hex4() {
    if (p_ + 4 > s_.size()) fail("short \\u escape");
    const uint32_t v = static_cast<uint32_t>(std::stoul(s_.substr(p_, 4), nullptr, 16));
    p_ += 4;
    return v;
  }
  std::string str() {
    expect('"');
    std::string out;
    while (p_ < s_.size() && s_[p_] != '"') {
      const char c = s_[p_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p_ >= s_.size()) fail("unfinished escape");
      const char e = s_[p_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF && s_.compare(p_, 2, "\\u") == 0) {
            p_ += 2;
            const uint32_t low = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          llama3::unicode::append_utf8(out, cp);
          break;
        }
        default: out += e; break;  // \" \\ \/
      }
    }
    if (p_ >= s_.size()) fail("unterminated string");
    ++p_;
    return out;
  }
  const std::string& s_;
  size_t p_ = 0;
};

Json read_fixture(const std::string& name) {
  const std::string path = source_path("tests/fixtures/" + name);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path + " (run the tests from the repository root)");
  std::stringstream ss;
  ss << in.rdbuf();
  return JsonParser(ss.str()).parse();
}

/// The golden fixtures, parsed once.
const Json& golden() {
  static const Json parsed = read_fixture("tokenizer_golden.json");
  return parsed;
}
const Json& golden_qwen2() {
  static const Json parsed = read_fixture("tokenizer_golden_qwen2.json");
  return parsed;
}

/// The real model's tokenizer, loaded once (the vocabulary build takes a few tens of ms).
std::shared_ptr<const llama3::Tokenizer> model_tokenizer(const std::string& path) {
  static std::map<std::string, std::shared_ptr<const llama3::Tokenizer>> cache;
  auto& slot = cache[path];
  if (!slot) slot = std::make_shared<llama3::Tokenizer>(llama3::Tokenizer::from_gguf(llama3::GgufFile::open(path)));
  return slot;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

/// Escapes control bytes so a failing text prints readably.
std::string printable(const std::string& s) {
  std::string out;
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b == '\n') {
      out += "\\n";
    } else if (b < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", b);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A tiny vocabulary, worked by hand
// ---------------------------------------------------------------------------------------------
//
//  id  text      type          id  text     type
//   0  <s>       control        9  bc       normal
//   1  </s>      control       10  <tag>    user-defined
//   2  a         normal        11  <        normal
//   3  b         normal        12  >        normal
//   4  c         normal        13  s        normal
//   5  Ġ (' ')   normal        14  /        normal
//   6  ab        normal        15  <|x|>    control
//   7  Ġab       normal        16  <|x|>y   control
//   8  abc       normal        17  Ċ ('\n') normal
// merges, by rank: 0 "b c" -> bc, 1 "a b" -> ab, 2 "Ġ ab" -> Ġab, 3 "ab c" -> abc.


llama3::Tokenizer tiny_tokenizer(llama3::TokenizerOptions options = {}) {
  std::vector<std::string> tokens = {"<s>", "</s>", "a", "b", "c", "Ġ", "ab", "Ġab", "abc",
                                     "bc", "<tag>", "<", ">", "s", "/", "<|x|>", "<|x|>y", "Ċ"};
  std::vector<int32_t> types(tokens.size(), 1);
  types[0] = types[1] = types[15] = types[16] = 3;
  types[10] = 4;
  return llama3::Tokenizer(tokens, {"b c", "a b", "Ġ ab", "ab c"}, types, 0, 1, "gpt2", options);
}

}  // namespace

TEST_CASE("byte map: 256 distinct printable stand-ins that invert exactly") {
  const llama3::unicode::ByteMap map;
  std::vector<bool> seen(400, false);
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = map.code_point(static_cast<uint8_t>(b));
    CAPTURE(b);
    REQUIRE(cp < seen.size());
    CHECK_FALSE(seen[cp]);
    seen[cp] = true;
    CHECK(map.byte_of(cp) == b);
  }
  CHECK(map.utf8(' ') == "Ġ");
  CHECK(map.utf8('\n') == "Ċ");
  CHECK(map.utf8('a') == "a");
  CHECK(map.byte_of('a' + 0x1000) == -1);
}

TEST_CASE("utf-8 decoding walks any bytes and flags malformed sequences") {
  using llama3::unicode::kInvalidCodePoint;
  using llama3::unicode::next_code_point;
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x80\xC3(\xED\xA0\x80\xC0\xAF";
  std::vector<uint32_t> cps;
  for (size_t pos = 0; pos < s.size();) cps.push_back(next_code_point(s, pos));
  const std::vector<uint32_t> expected = {'a', 0xE9, 0x20AC, 0x1F600,
                                          kInvalidCodePoint,                          // stray 0x80
                                          kInvalidCodePoint, '(',                     // truncated C3
                                          kInvalidCodePoint, kInvalidCodePoint, kInvalidCodePoint,  // surrogate
                                          kInvalidCodePoint, kInvalidCodePoint};      // overlong
  CHECK(cps == expected);
  CHECK(llama3::unicode::utf8_complete_prefix("ab\xE2\x82") == 2);
  CHECK(llama3::unicode::utf8_complete_prefix("ab\xE2\x82\xAC") == 5);
  CHECK(llama3::unicode::utf8_complete_prefix("ab\xF0") == 2);
  CHECK(llama3::unicode::utf8_complete_prefix("") == 0);
}

TEST_CASE("letter and number classes match Unicode at every boundary of the covered blocks") {
  const Json& classes = golden()["char_classes"];
  size_t checked = 0;
  for (const char* klass : {"L", "N", "O"}) {
    for (const Json& v : classes[klass].array) {
      const auto cp = static_cast<uint32_t>(v.number);
      CAPTURE(cp);
      CAPTURE(klass);
      CHECK(llama3::unicode::is_letter(cp) == (klass[0] == 'L'));
      CHECK(llama3::unicode::is_number(cp) == (klass[0] == 'N'));
      ++checked;
    }
  }
  CHECK(checked > 500);
  // Outside the covered blocks everything is "other": e.g. Bengali letters (an approximation).
  CHECK_FALSE(llama3::unicode::is_letter(0x0995));
  CHECK(llama3::unicode::is_space(0x3000));
  CHECK_FALSE(llama3::unicode::is_space(0x1C));  // not White_Space, though Python's isspace says so
}

TEST_CASE("pre-tokenizer splits match Hugging Face for the SmolLM2 and Llama 3 patterns") {
  for (const auto& [name, kind] : {std::pair<std::string, llama3::PreTokenizer>{"smollm", llama3::PreTokenizer::SmolLM},
                                   {"llama-bpe", llama3::PreTokenizer::Llama3}}) {
    SUBCASE(name.c_str()) {
      for (const Json& c : golden()["pretokenize"][name].array) {
        const std::string& text = c["text"].string;
        std::vector<std::string_view> views;
        llama3::pre_tokenize(text, kind, views);
        std::vector<std::string> got(views.begin(), views.end());
        std::vector<std::string> want;
        for (const Json& p : c["pieces"].array) want.push_back(p.string);
        INFO("text: " << printable(text));
        CHECK(got == want);
      }
    }
  }
}

TEST_CASE("pre-tokenizer: GPT-2 pattern on hand-checked strings") {
  const auto split = [](const std::string& text, llama3::PreTokenizer kind) {
    std::vector<std::string_view> v;
    llama3::pre_tokenize(text, kind, v);
    return std::vector<std::string>(v.begin(), v.end());
  };
  using V = std::vector<std::string>;
  const auto gpt2 = llama3::PreTokenizer::Gpt2;
  CHECK(split("Hello world", gpt2) == V{"Hello", " world"});
  CHECK(split("a   b", gpt2) == V{"a", "  ", " b"});  // the last space prefixes the word
  CHECK(split("it's 2024!", gpt2) == V{"it", "'s", " 2024", "!"});
  CHECK(split("x  ", gpt2) == V{"x", "  "});  // a run at the end is taken whole
  CHECK(split("a\nb", gpt2) == V{"a", "\n", "b"});
  CHECK(split("", gpt2).empty());
  CHECK(split(" 2024", llama3::PreTokenizer::SmolLM) == V{" ", "2", "0", "2", "4"});
  CHECK(split("12345", llama3::PreTokenizer::Llama3) == V{"123", "45"});
  // Invalid UTF-8 is kept byte for byte (as "other" characters).
  CHECK(split("a\xFF\xFE b", gpt2) == V{"a", "\xFF\xFE", " b"});
}

TEST_CASE("tiny vocabulary: merges apply by rank, not by length") {
  const llama3::Tokenizer tok = tiny_tokenizer();
  using V = std::vector<int32_t>;
  // "abc": pairs (a,b) rank 1 and (b,c) rank 0 -> b+c first -> [a, bc]; (a,bc) has no merge,
  // so the longer token "abc" is never reached.
  CHECK(tok.encode("abc", false, false) == V{2, 9});
  CHECK(tok.encode("ab", false, false) == V{6});
  // " ab": Ġ a b -> (a,b) rank 1 -> Ġ ab -> (Ġ,ab) rank 2 -> Ġab.
  CHECK(tok.encode(" ab", false, false) == V{7});
  // Two pre-tokens "ab" and " ab"; BOS first when asked.
  CHECK(tok.encode("ab ab", true, false) == V{0, 6, 7});
  // "abab": a b a b -> both (a,b) have rank 1, the leftmost goes first; then (ab,ab) none.
  CHECK(tok.encode("abab", false, false) == V{6, 6});
  // 'd' has no token and there is no unknown token: the byte is dropped.
  CHECK(tok.encode("abd", false, false) == V{6});
  CHECK(tok.encode("", true, true) == V{0});
  CHECK(tok.encode("", false, true).empty());
}

TEST_CASE("tiny vocabulary: special tokens") {
  const llama3::Tokenizer tok = tiny_tokenizer();
  using V = std::vector<int32_t>;
  CHECK(tok.encode("<s>ab</s>", false, true) == V{0, 6, 1});
  // Without parse_special the control tokens are spelled out. Pieces: "<", "s", ">", "ab", "</",
  // "s", ">" (">" is punctuation, "ab" letters); "</" has no merge, so it stays two tokens.
  CHECK(tok.encode("<s>ab</s>", false, false) == V{11, 13, 12, 6, 11, 14, 13, 12});
  // User-defined tokens match even without parse_special.
  CHECK(tok.encode("a<tag>b", false, false) == V{2, 10, 3});
  // Leftmost-longest: "<|x|>y" beats "<|x|>".
  CHECK(tok.encode("<|x|>y<|x|>", false, true) == V{16, 15});
  CHECK(tok.decode({7, 0, 17, 10}) == " ab<s>\n<tag>");
  CHECK(tok.is_end_of_generation(1));
  CHECK_FALSE(tok.is_end_of_generation(2));
  CHECK_THROWS_AS(tok.decode({18}), std::out_of_range);
  CHECK_THROWS_AS(tok.decode({-1}), std::out_of_range);
}

TEST_CASE("tiny vocabulary: bytes without a token become one fused unknown id") {
  llama3::TokenizerOptions options;
  options.unk_id = 1;
  const llama3::Tokenizer tok = tiny_tokenizer(options);
  using V = std::vector<int32_t>;
  CHECK(tok.encode("abddc", false, false) == V{6, 1, 4});  // "dd" -> one unknown
  CHECK(tok.encode("adbdc", false, false) == V{2, 1, 3, 1, 4});
}

TEST_CASE("malformed tokenizer metadata fails with LoadError, never a crash") {
  const std::vector<std::string> tokens = {"a", "b", "ab"};
  const std::vector<int32_t> types = {1, 1, 1};
  const auto make = [&](std::vector<std::string> t, std::vector<std::string> merges,
                        std::vector<int32_t> ty, int32_t bos, int32_t eos, std::string pre = "gpt2") {
    return llama3::Tokenizer(std::move(t), std::move(merges), std::move(ty), bos, eos, std::move(pre));
  };
  CHECK_NOTHROW(make(tokens, {"a b"}, types, 0, 1));
  CHECK_NOTHROW(make(tokens, {"a b"}, {}, -1, -1));  // no types, no bos/eos
  CHECK_THROWS_WITH_AS(make(tokens, {"a b"}, {1, 1}, 0, 1), doctest::Contains("token_type has 2"),
                       llama3::LoadError);
  CHECK_THROWS_WITH_AS(make(tokens, {"a c"}, types, 0, 1), doctest::Contains("'c'"), llama3::LoadError);
  CHECK_THROWS_WITH_AS(make(tokens, {"b a"}, types, 0, 1), doctest::Contains("'ba'"), llama3::LoadError);
  CHECK_THROWS_WITH_AS(make(tokens, {"ab"}, types, 0, 1), doctest::Contains("not two tokens"),
                       llama3::LoadError);
  CHECK_THROWS_WITH_AS(make(tokens, {"a  b"}, types, 0, 1), doctest::Contains("not two tokens"),
                       llama3::LoadError);
  CHECK_THROWS_WITH_AS(make(tokens, {}, types, 3, 1), doctest::Contains("bos_token_id 3"), llama3::LoadError);
  CHECK_THROWS_WITH_AS(make(tokens, {}, types, 0, -7), doctest::Contains("eos_token_id -7"), llama3::LoadError);
  CHECK_THROWS_WITH_AS(make(tokens, {}, {1, 9, 1}, 0, 1), doctest::Contains("token_type 9"), llama3::LoadError);
  CHECK_THROWS_WITH_AS(make({}, {}, {}, -1, -1), doctest::Contains("empty"), llama3::LoadError);
  CHECK_THROWS_WITH_AS(make(tokens, {}, types, 0, 1, "qwen9"), doctest::Contains("qwen9"), llama3::LoadError);
}

namespace {

/// Writes a GGUF v3 file with metadata only (no tensors), for loader tests.
class GgufBuilder {
 public:
  GgufBuilder& str(const std::string& key, const std::string& v) {
    this->key(key, 8);
    string_(v);
    ++count_;
    return *this;
  }
  GgufBuilder& u32(const std::string& key, uint32_t v) {
    this->key(key, 4);
    pod_(v);
    ++count_;
    return *this;
  }
  GgufBuilder& boolean(const std::string& key, bool v) {
    this->key(key, 7);
    pod_(static_cast<uint8_t>(v));
    ++count_;
    return *this;
  }
  GgufBuilder& strs(const std::string& key, const std::vector<std::string>& v) {
    this->key(key, 9);
    pod_(uint32_t{8});
    pod_(static_cast<uint64_t>(v.size()));
    for (const auto& s : v) string_(s);
    ++count_;
    return *this;
  }
  GgufBuilder& i32s(const std::string& key, const std::vector<int32_t>& v) {
    this->key(key, 9);
    pod_(uint32_t{5});
    pod_(static_cast<uint64_t>(v.size()));
    for (const int32_t x : v) pod_(x);
    ++count_;
    return *this;
  }
  GgufBuilder& i64s(const std::string& key, const std::vector<int64_t>& v) {
    this->key(key, 9);
    pod_(uint32_t{11});
    pod_(static_cast<uint64_t>(v.size()));
    for (const int64_t x : v) pod_(x);
    ++count_;
    return *this;
  }
  llama3::GgufFile build() const {
    std::string file = "GGUF";
    const auto put = [&file](const auto& v) { file.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(uint32_t{3});
    put(uint64_t{0});
    put(count_);
    file += body_;
    return llama3::GgufFile::parse(reinterpret_cast<const uint8_t*>(file.data()), file.size());
  }

 private:
  template <class T>
  void pod_(T v) {
    body_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void string_(const std::string& s) {
    pod_(static_cast<uint64_t>(s.size()));
    body_ += s;
  }
  void key(const std::string& k, uint32_t type) {
    string_(k);
    pod_(type);
  }
  std::string body_;
  uint64_t count_ = 0;
};

GgufBuilder valid_gguf_tokenizer() {
  GgufBuilder b;
  b.str("tokenizer.ggml.model", "gpt2")
      .str("tokenizer.ggml.pre", "smollm")
      .strs("tokenizer.ggml.tokens", {"<|im_start|>", "<|im_end|>", "a", "b", "ab", "Ġ"})
      .strs("tokenizer.ggml.merges", {"a b"})
      .i32s("tokenizer.ggml.token_type", {3, 3, 1, 1, 1, 1})
      .u32("tokenizer.ggml.bos_token_id", 0)
      .u32("tokenizer.ggml.eos_token_id", 1)
      .boolean("tokenizer.ggml.add_bos_token", false)
      .str("tokenizer.chat_template", "{{ '<|im_start|>' }}");
  return b;
}

}  // namespace

TEST_CASE("from_gguf reads the tokenizer keys") {
  const llama3::Tokenizer tok = llama3::Tokenizer::from_gguf(valid_gguf_tokenizer().build());
  CHECK(tok.vocab_size() == 6);
  CHECK(tok.merge_count() == 1);
  CHECK(tok.bos_id() == 0);
  CHECK(tok.eos_id() == 1);
  CHECK(tok.pad_id() == -1);
  CHECK_FALSE(tok.add_bos());
  CHECK(tok.pre_tokenizer() == llama3::PreTokenizer::SmolLM);
  CHECK(tok.chat_template() == "{{ '<|im_start|>' }}");
  CHECK(tok.encode("<|im_start|>ab ab<|im_end|>", false, true) == std::vector<int32_t>{0, 4, 5, 4, 1});
}

TEST_CASE("from_gguf rejects malformed metadata with LoadError") {
  SUBCASE("model key missing") {
    GgufBuilder b;
    b.strs("tokenizer.ggml.tokens", {"a"});
    CHECK_THROWS_WITH_AS(llama3::Tokenizer::from_gguf(b.build()), doctest::Contains("tokenizer.ggml.model"),
                         llama3::LoadError);
  }
  SUBCASE("SentencePiece model") {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "llama").strs("tokenizer.ggml.tokens", {"a"});
    CHECK_THROWS_WITH_AS(llama3::Tokenizer::from_gguf(b.build()), doctest::Contains("'llama'"), llama3::LoadError);
  }
  SUBCASE("merges missing") {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "gpt2").strs("tokenizer.ggml.tokens", {"a"});
    CHECK_THROWS_WITH_AS(llama3::Tokenizer::from_gguf(b.build()), doctest::Contains("tokenizer.ggml.merges"),
                         llama3::LoadError);
  }
  SUBCASE("token types of the wrong length") {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", {"a", "b"})
        .strs("tokenizer.ggml.merges", {})
        .i32s("tokenizer.ggml.token_type", {1, 1, 1});
    CHECK_THROWS_WITH_AS(llama3::Tokenizer::from_gguf(b.build()), doctest::Contains("token_type has 3"),
                         llama3::LoadError);
  }
  SUBCASE("merge naming an unknown token") {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "gpt2").strs("tokenizer.ggml.tokens", {"a", "b"}).strs("tokenizer.ggml.merges", {"a x"});
    CHECK_THROWS_WITH_AS(llama3::Tokenizer::from_gguf(b.build()), doctest::Contains("'x'"), llama3::LoadError);
  }
  SUBCASE("bos id past the vocabulary") {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", {"a"})
        .strs("tokenizer.ggml.merges", {})
        .u32("tokenizer.ggml.bos_token_id", 4000000000u);
    CHECK_THROWS_WITH_AS(llama3::Tokenizer::from_gguf(b.build()), doctest::Contains("bos_token_id"),
                         llama3::LoadError);
  }
  SUBCASE("tokens stored as integers") {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "gpt2").i32s("tokenizer.ggml.tokens", {1, 2}).strs("tokenizer.ggml.merges", {});
    CHECK_THROWS_AS(llama3::Tokenizer::from_gguf(b.build()), llama3::LoadError);
  }
}

TEST_CASE("every tokenizer rejection: the actual messages") {
  const std::vector<std::string> tokens = {"a", "b", "ab"};
  const auto make = [&](std::vector<std::string> t, std::vector<std::string> merges, std::vector<int32_t> types,
                        int32_t bos, int32_t eos, std::string pre = "gpt2", llama3::TokenizerOptions options = {}) {
    return llama3::Tokenizer(std::move(t), std::move(merges), std::move(types), bos, eos, std::move(pre),
                             std::move(options));
  };
  using llama3::LoadError;
  SUBCASE("plain constructor") {
    CHECK(contains(message_of<LoadError>([&] { make({}, {}, {}, -1, -1); }),
                   "tokenizer: the vocabulary (tokenizer.ggml.tokens) is empty"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {}, {1, 1}, -1, -1); }),
                   "tokenizer: tokenizer.ggml.token_type has 2 entries but tokenizer.ggml.tokens has 3"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {}, {1, -1, 1}, -1, -1); }),
                   "tokenizer: token 1 has token_type -1, expected 0..6"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {}, {1, 7, 1}, -1, -1); }),
                   "tokenizer: token 1 has token_type 7, expected 0..6"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {}, {}, 3, -1); }),
                   "tokenizer: bos_token_id 3 is outside the vocabulary [0, 3)"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {}, {}, -1, -2); }),
                   "tokenizer: eos_token_id -2 is outside the vocabulary [0, 3)"));
    llama3::TokenizerOptions unk;
    unk.unk_id = 5;
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {}, {}, -1, -1, "gpt2", unk); }),
                   "tokenizer: unknown_token_id 5 is outside the vocabulary [0, 3)"));
    llama3::TokenizerOptions pad;
    pad.pad_id = 3;
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {}, {}, -1, -1, "gpt2", pad); }),
                   "tokenizer: padding_token_id 3 is outside the vocabulary [0, 3)"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {"ab"}, {}, -1, -1); }),
                   "tokenizer: merge 0 'ab' is not two tokens separated by one space"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {"a b", " a"}, {}, -1, -1); }),
                   "tokenizer: merge 1 ' a' is not two tokens separated by one space"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {"a c"}, {}, -1, -1); }),
                   "tokenizer: merge 0 'a c' names 'c', which is not in the vocabulary"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {"b a"}, {}, -1, -1); }),
                   "tokenizer: merge 0 'b a' names 'ba', which is not in the vocabulary"));
    CHECK(contains(message_of<LoadError>([&] { make(tokens, {}, {}, -1, -1, "qwen9"); }),
                   "tokenizer: unsupported tokenizer.ggml.pre 'qwen9' (supported: smollm, llama-bpe, qwen2, gpt2, "
                   "default)"));
  }
  SUBCASE("from_gguf") {
    const auto from = [](const GgufBuilder& b) {
      return message_of<LoadError>([&] { llama3::Tokenizer::from_gguf(b.build()); });
    };
    GgufBuilder no_model;
    no_model.strs("tokenizer.ggml.tokens", {"a"});
    CHECK(contains(from(no_model), "tokenizer: GGUF has no tokenizer.ggml.model"));
    GgufBuilder typed_model;
    typed_model.u32("tokenizer.ggml.model", 2);
    CHECK(contains(from(typed_model), "GGUF: metadata key 'tokenizer.ggml.model' (at byte offset 56) has type uint32: expected string"));
    GgufBuilder spm;
    spm.str("tokenizer.ggml.model", "llama");
    CHECK(contains(from(spm), "tokenizer: tokenizer.ggml.model is 'llama'; only 'gpt2' (byte-level BPE) is supported"));
    GgufBuilder no_tokens;
    no_tokens.str("tokenizer.ggml.model", "gpt2").strs("tokenizer.ggml.merges", {});
    CHECK(contains(from(no_tokens), "tokenizer: GGUF has no tokenizer.ggml.tokens"));
    GgufBuilder no_merges;
    no_merges.str("tokenizer.ggml.model", "gpt2").strs("tokenizer.ggml.tokens", {"a"});
    CHECK(contains(from(no_merges), "tokenizer: GGUF has no tokenizer.ggml.merges"));
    GgufBuilder int_tokens;
    int_tokens.str("tokenizer.ggml.model", "gpt2").i32s("tokenizer.ggml.tokens", {1, 2}).strs("tokenizer.ggml.merges", {});
    CHECK(contains(from(int_tokens), "has type array of int32: expected array of string"));
    GgufBuilder scalar_merges;
    scalar_merges.str("tokenizer.ggml.model", "gpt2").strs("tokenizer.ggml.tokens", {"a"}).u32("tokenizer.ggml.merges", 0);
    CHECK(contains(from(scalar_merges), "metadata key 'tokenizer.ggml.merges'"));
    CHECK(contains(from(scalar_merges), "has type uint32: expected an array"));
    GgufBuilder wide_type;
    wide_type.str("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", {"a", "b"})
        .strs("tokenizer.ggml.merges", {})
        .i64s("tokenizer.ggml.token_type", {1, int64_t(1) << 40});
    CHECK(contains(from(wide_type), "tokenizer: tokenizer.ggml.token_type[1] = 1099511627776 does not fit in int32"));
    GgufBuilder big_eos;
    big_eos.str("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", {"a"})
        .strs("tokenizer.ggml.merges", {})
        .u32("tokenizer.ggml.eos_token_id", 4000000000u);
    CHECK(contains(from(big_eos), "tokenizer: tokenizer.ggml.eos_token_id = 4000000000 does not fit in int32"));
    GgufBuilder far_unk;
    far_unk.str("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", {"a"})
        .strs("tokenizer.ggml.merges", {})
        .u32("tokenizer.ggml.unknown_token_id", 9);
    CHECK(contains(from(far_unk), "tokenizer: unknown_token_id 9 is outside the vocabulary [0, 1)"));
    GgufBuilder bad_pre;
    bad_pre.str("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", {"a"})
        .strs("tokenizer.ggml.merges", {})
        .str("tokenizer.ggml.pre", "qwen9");
    CHECK(contains(from(bad_pre), "tokenizer: unsupported tokenizer.ggml.pre 'qwen9'"));
    GgufBuilder typed_chat;
    typed_chat.str("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", {"a"})
        .strs("tokenizer.ggml.merges", {})
        .u32("tokenizer.chat_template", 1);
    CHECK(contains(from(typed_chat), "metadata key 'tokenizer.chat_template'"));
    CHECK(contains(from(typed_chat), "has type uint32: expected string"));
  }
  SUBCASE("ids outside the vocabulary at use") {
    const llama3::Tokenizer tok = tiny_tokenizer();
    CHECK(contains(message_of<std::out_of_range>([&] { tok.decode({18}); }),
                   "llama3::Tokenizer: token id 18 outside [0, 18)"));
    CHECK(contains(message_of<std::out_of_range>([&] { tok.token_text(-1); }),
                   "llama3::Tokenizer: token id -1 outside [0, 18)"));
  }
  SUBCASE("chat template of an unknown family, or none") {
    CHECK(contains(message_of<std::invalid_argument>([] { llama3::detect_chat_format("{{ messages }}"); }),
                   "chat template: not recognised (looked for '<|im_start|>' for ChatML and '<|start_header_id|>' for "
                   "Llama 3)"));
    CHECK(contains(message_of<std::invalid_argument>([] { llama3::apply_chat_template("", {{"user", "x"}}, true); }),
                   "; the model has no tokenizer.chat_template"));
  }
}

TEST_CASE("chat template: ChatML with SmolLM2's default system message") {
  const std::string smollm =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
      "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
      "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  CHECK(llama3::detect_chat_format(smollm) == llama3::ChatFormat::ChatML);
  CHECK(llama3::chatml_default_system_message(smollm) ==
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  CHECK(llama3::apply_chat_template(smollm, {{"user", "Hi"}}, true) ==
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  // A system message of the user's replaces the default.
  CHECK(llama3::apply_chat_template(smollm, {{"system", "Be brief."}, {"user", "Hi"}}, false) ==
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  // A template that builds its system turn from the message has no default; escaped "\n" works.
  const std::string plain =
      "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}"
      "{% endfor %}{{ '<|im_start|>system\\n' + x + '<|im_end|>' }}";
  CHECK(llama3::chatml_default_system_message(plain).empty());
  CHECK(llama3::chatml_default_system_message("{{ \"<|im_start|>system\\nYou're \\\"Q\\\".<|im_end|>\" }}") ==
        "You're \"Q\".");
  CHECK(llama3::apply_chat_template(plain, {{"user", "x"}}, true) ==
        "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("chat template: Llama 3") {
  const std::string llama3_template =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
      "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
      "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
      "{{ content }}{% endfor %}{% if add_generation_prompt %}"
      "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
  CHECK(llama3::detect_chat_format(llama3_template) == llama3::ChatFormat::Llama3);
  CHECK(llama3::apply_chat_template(llama3_template, {{"system", "Be brief."}, {"user", "  Hi!\n"}}, true) ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  CHECK_THROWS_AS(llama3::apply_chat_template("{{ messages }}", {{"user", "x"}}, true), std::invalid_argument);
  CHECK_THROWS_AS(llama3::detect_chat_format(""), std::invalid_argument);
}

TEST_CASE("SmolLM2 tokenizer: ids match Hugging Face on every golden text") {
  const std::string path = model_path_or_skip();
  if (path.empty()) return;
  const auto tok = model_tokenizer(path);
  CHECK(tok->pre_tokenizer() == llama3::PreTokenizer::SmolLM);
  CHECK(tok->vocab_size() == 49152);
  CHECK(tok->bos_id() == 1);
  CHECK(tok->eos_id() == 2);
  CHECK_FALSE(tok->add_bos());
  CHECK(tok->is_end_of_generation(tok->token_id("<|im_end|>")));

  const Json& g = golden();
  size_t matched = 0, total = 0;
  for (const Json& c : g["cases"].array) {
    const std::string& text = c["text"].string;
    const std::vector<int32_t> want = c["ids"].ints();
    const std::vector<int32_t> got = tok->encode(text, false, true);
    INFO("case " << c["name"].string << ": " << printable(text));
    INFO("want " << show(want));
    INFO("got  " << show(got));
    CHECK(got == want);
    matched += got == want;
    ++total;
    // Round trip, except where bytes without a token were encoded as the unknown id.
    if (std::find(want.begin(), want.end(), tok->unk_id()) == want.end()) {
      CHECK(tok->decode(got) == text);
    }
    // With BOS the ids are the same after one leading bos_id.
    const std::vector<int32_t> with_bos = tok->encode(text, true, true);
    REQUIRE(!with_bos.empty());
    CHECK(with_bos.front() == tok->bos_id());
    CHECK(std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()) == got);
  }
  MESSAGE("golden texts matching Hugging Face: " << matched << "/" << total);
  CHECK(total >= 25);
}

TEST_CASE("SmolLM2 tokenizer: the chat template renders and encodes like Hugging Face") {
  const std::string path = model_path_or_skip();
  if (path.empty()) return;
  const auto tok = model_tokenizer(path);
  const Json& chat = golden()["chat"];
  std::vector<llama3::ChatMessage> messages;
  for (const Json& m : chat["messages"].array) messages.push_back({m["role"].string, m["content"].string});
  const std::string rendered =
      llama3::apply_chat_template(tok->chat_template(), messages, chat["add_generation_prompt"].boolean);
  CHECK(rendered == chat["rendered"].string);
  CHECK(tok->encode(rendered, false, true) == chat["ids"].ints());
  CHECK(tok->decode(tok->encode(rendered, false, true)) == rendered);
}

TEST_CASE("SmolLM2 tokenizer: decode of partial UTF-8 and odd inputs does not break") {
  const std::string path = model_path_or_skip();
  if (path.empty()) return;
  const auto tok = model_tokenizer(path);
  // "😀" is four bytes; its ids decode one by one into fragments that join back exactly.
  const std::vector<int32_t> ids = tok->encode("😀", false, false);
  std::string joined;
  for (const int32_t id : ids) joined += tok->decode({id});
  CHECK(joined == "😀");
  // Invalid UTF-8 in, the same bytes out.
  const std::string junk = "ok\xC3(\x80\xE2\x82 end";  // bytes SmolLM2 has tokens for
  CHECK(tok->decode(tok->encode(junk, false, false)) == junk);
  // Without parse_special, control tokens are spelled out as text and still round-trip.
  const std::string special = "<|im_start|>user";
  const std::vector<int32_t> spelled = tok->encode(special, false, false);
  CHECK(spelled.size() > 2);
  CHECK(tok->decode(spelled) == special);
  CHECK(tok->encode(special, false, true).front() == 1);
}

TEST_CASE("SmolLM2 tokenizer: encoding about 8k tokens of text takes milliseconds") {
  const std::string path = model_path_or_skip();
  if (path.empty()) return;
  const auto tok = model_tokenizer(path);
  std::string text;
  for (const Json& c : golden()["cases"].array) text += c["text"].string + "\n";
  const std::string block = text;
  while (text.size() < 32 * 1024) text += block;
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok->encode(text, false, true);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("encoded " << text.size() << " bytes into " << ids.size() << " tokens in " << ms << " ms");
  CHECK(ids.size() > 8000);
  CHECK(tok->decode(ids).size() > 0);
  // Generous bound: a few ms per 10 KB on a laptop; only a pathological slowdown fails.
  CHECK(ms < 1000.0);
}

// ---------------------------------------------------------------------------------------------
// Qwen2.5-Coder (pre "qwen2"): tests/fixtures/tokenizer_golden_qwen2.json
// ---------------------------------------------------------------------------------------------

namespace {

std::vector<llama3::ChatMessage> chat_messages(const Json& chat) {
  std::vector<llama3::ChatMessage> messages;
  for (const Json& m : chat["messages"].array) messages.push_back({m["role"].string, m["content"].string});
  return messages;
}

/// The Qwen2.5-Coder 0.5B tokenizer, loaded once; the load time is reported by the first caller.
std::shared_ptr<const llama3::Tokenizer> qwen_tokenizer(double* load_ms = nullptr) {
  static double ms = 0;
  static const std::shared_ptr<const llama3::Tokenizer> tok = [] {
    const auto t0 = std::chrono::steady_clock::now();
    auto t = std::make_shared<llama3::Tokenizer>(
        llama3::Tokenizer::from_gguf(llama3::GgufFile::open(ftp_test::model_path(ftp_test::kQwen05))));
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return t;
  }();
  if (load_ms != nullptr) *load_ms = ms;
  return tok;
}

}  // namespace

TEST_CASE("pre-tokenizer splits match the Python regex module for the Qwen2 pattern") {
  const Json& cases = golden_qwen2()["pretokenize"]["qwen2"];
  REQUIRE(cases.array.size() >= 50);
  size_t pieces = 0;
  for (const Json& c : cases.array) {
    const std::string& text = c["text"].string;
    std::vector<std::string_view> views;
    llama3::pre_tokenize(text, llama3::PreTokenizer::Qwen2, views);
    std::vector<std::string> got(views.begin(), views.end());
    std::vector<std::string> want;
    for (const Json& p : c["pieces"].array) want.push_back(p.string);
    INFO("text: " << printable(text));
    CHECK(got == want);
    pieces += want.size();
  }
  CHECK(pieces > 2500);
  // Hand-checked: single digits (Llama 3 groups three), and (?i) folds U+017F (long s) to 's'.
  const auto split = [](const std::string& text) {
    std::vector<std::string_view> v;
    llama3::pre_tokenize(text, llama3::PreTokenizer::Qwen2, v);
    return std::vector<std::string>(v.begin(), v.end());
  };
  using V = std::vector<std::string>;
  CHECK(split("x 12345") == V{"x", " ", "1", "2", "3", "4", "5"});
  CHECK(split("it'\xC5\xBFt") == V{"it", "'\xC5\xBF", "t"});
  CHECK(split("DON'T  go\n\n  now") == V{"DON", "'T", " ", " go", "\n\n", " ", " now"});
  CHECK(llama3::pre_tokenizer_from_name("qwen2") == llama3::PreTokenizer::Qwen2);
}

TEST_CASE("tokenizer NFC normalization matches Python's unicodedata") {
  const Json& cases = golden_qwen2()["nfc"];
  REQUIRE(cases.array.size() >= 5);
  for (const Json& c : cases.array) {
    const std::string& text = c["text"].string;
    const std::string& want = c["nfc"].string;
    INFO("case " << c["name"].string);
    const std::string got = llama3::unicode::to_nfc(text);
    CHECK(got.size() == want.size());
    CHECK(got == want);
    CHECK_FALSE(llama3::unicode::is_nfc_quick(text));  // every case needs normalizing
    CHECK(llama3::unicode::to_nfc(want) == want);      // and NFC is idempotent
  }
  using llama3::unicode::to_nfc;
  CHECK(to_nfc("e\xCC\x81") == "\xC3\xA9");                 // e + U+0301 -> U+00E9
  CHECK(to_nfc("\xE2\x84\xAB") == "\xC3\x85");              // U+212B ANGSTROM SIGN -> U+00C5
  CHECK(to_nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8") == "\xEA\xB0\x81");  // Hangul L V T -> U+AC01
  CHECK(to_nfc("plain ASCII, no change") == "plain ASCII, no change");
  CHECK(llama3::unicode::is_nfc_quick("caf\xC3\xA9 \xE4\xB8\xAD"));
  // Invalid UTF-8 survives, and blocks composition across it.
  CHECK(to_nfc("e\xFF\xCC\x81") == "e\xFF\xCC\x81");
  CHECK(to_nfc("\x80" "a\xCC\x8A") == "\x80\xC3\xA5");
}

TEST_CASE("chat template: Qwen2.5 ChatML renders exactly what transformers rendered") {
  const Json& g = golden_qwen2();
  const std::string& tmpl = g["chat_template"].string;
  CHECK(llama3::detect_chat_format(tmpl) == llama3::ChatFormat::ChatML);
  CHECK(llama3::chatml_default_system_message(tmpl) ==
        "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  REQUIRE(g["chats"].array.size() >= 6);
  for (const Json& chat : g["chats"].array) {
    INFO("chat " << chat["name"].string << ", add_generation_prompt " << chat["add_generation_prompt"].boolean);
    CHECK(llama3::apply_chat_template(tmpl, chat_messages(chat), chat["add_generation_prompt"].boolean) ==
          chat["rendered"].string);
  }
}

TEST_CASE("Qwen2.5 tokenizer: ids match Hugging Face on every golden text" * ftp_test::needs_model(ftp_test::kQwen05)) {
  double load_ms = 0;
  const auto tok = qwen_tokenizer(&load_ms);
  MESSAGE("Qwen2.5 tokenizer (" << tok->vocab_size() << " tokens, " << tok->merge_count()
                                << " merges) loaded in " << load_ms << " ms");
  CHECK(tok->pre_tokenizer() == llama3::PreTokenizer::Qwen2);
  CHECK(tok->normalizes_nfc());
  CHECK(tok->vocab_size() == 151936);
  CHECK(tok->merge_count() == 151387);
  CHECK(tok->eos_id() == 151645);
  CHECK(tok->bos_id() == 151643);
  CHECK(tok->pad_id() == 151643);
  CHECK_FALSE(tok->add_bos());
  const Json& g = golden_qwen2();
  // Every control / user-defined token that Qwen's tokenizer adds is one here too.
  std::vector<std::string> added;
  for (const Json& t : g["added_tokens"].array) added.push_back(t.string);
  REQUIRE(added.size() == 22);
  for (size_t i = 0; i < added.size(); ++i) {
    CAPTURE(added[i]);
    CHECK(tok->token_id(added[i]) == static_cast<int32_t>(151643 + i));
    CHECK(tok->encode(added[i], false, true) == std::vector<int32_t>{static_cast<int32_t>(151643 + i)});
  }

  size_t matched = 0, total = 0;
  for (const Json& c : g["cases"].array) {
    const std::string& text = c["text"].string;
    const std::vector<int32_t> want = c["ids"].ints();
    const std::vector<int32_t> got = tok->encode(text, false, true);
    INFO("case " << c["name"].string << ": " << printable(text));
    INFO("want " << show(want));
    INFO("got  " << show(got));
    CHECK(got == want);
    matched += got == want;
    ++total;
    // Decoding gives the text back, in NFC where the text was not.
    CHECK(tok->decode(got) == (c.has("text_nfc") ? c["text_nfc"].string : text));
    // add_bos changes nothing: Qwen has add_bos_token = false, but when asked, bos comes first.
    const std::vector<int32_t> with_bos = tok->encode(text, true, true);
    REQUIRE(!with_bos.empty());
    CHECK(with_bos.front() == 151643);
    CHECK(std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()) == got);
  }
  MESSAGE("Qwen2 golden texts matching Hugging Face: " << matched << "/" << total);
  CHECK(total >= 40);
}

TEST_CASE("Qwen2.5 tokenizer: the GGUF's chat template renders and encodes like transformers" *
          ftp_test::needs_model(ftp_test::kQwen05)) {
  const auto tok = qwen_tokenizer();
  const Json& g = golden_qwen2();
  CHECK(tok->chat_template() == g["chat_template"].string);
  for (const Json& chat : g["chats"].array) {
    INFO("chat " << chat["name"].string << ", add_generation_prompt " << chat["add_generation_prompt"].boolean);
    const std::string rendered =
        llama3::apply_chat_template(tok->chat_template(), chat_messages(chat), chat["add_generation_prompt"].boolean);
    CHECK(rendered == chat["rendered"].string);
    const std::vector<int32_t> ids = tok->encode(rendered, false, true);
    CHECK(ids == chat["ids"].ints());
    CHECK(ids.front() == 151644);  // <|im_start|>
    CHECK(tok->decode(ids) == rendered);
  }
}

TEST_CASE("Qwen2.5 tokenizer: end of generation is <|im_end|> or <|endoftext|>" *
          ftp_test::needs_model(ftp_test::kQwen05)) {
  const auto tok = qwen_tokenizer();
  CHECK(tok->is_end_of_generation(151645));  // <|im_end|>, the eos
  CHECK(tok->is_end_of_generation(151643));  // <|endoftext|>
  CHECK(tok->token_text(151645) == "<|im_end|>");
  CHECK(tok->token_text(151643) == "<|endoftext|>");
  for (const int32_t id : {0, 13, 198, 9707, 151642, 151644, 151657, 151659, 151664, 151665, 151935}) {
    CAPTURE(id);
    CHECK_FALSE(tok->is_end_of_generation(id));
  }
  CHECK_FALSE(tok->is_end_of_generation(-1));
  CHECK_FALSE(tok->is_end_of_generation(151936));
}

TEST_CASE("Qwen2.5 tokenizer: a 32k-token document encodes well under a second" *
          ftp_test::needs_model(ftp_test::kQwen05)) {
  const auto tok = qwen_tokenizer();
  // Mostly distinct words (a deterministic generator) and code from the fixture, so the per-call
  // piece cache does not hide the BPE cost; one combining mark sends it all through NFC.
  std::string text = "Cafe\xCC\x81\n";
  uint64_t state = 12345;
  const auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  const Json& cases = golden_qwen2()["cases"];
  while (text.size() < 66 * 1024) {
    for (int w = 0; w < 200; ++w) {
      text += ' ';
      const uint32_t len = 2 + next() % 9;
      for (uint32_t k = 0; k < len; ++k) text += static_cast<char>('a' + next() % 26);
      if (next() % 7 == 0) text += std::to_string(next() % 100000);
      if (next() % 5 == 0) text += ".,;:()"[next() % 6];
    }
    text += '\n' + cases.array[next() % cases.array.size()]["text"].string;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok->encode(text, false, true);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("Qwen2.5: encoded " << text.size() << " bytes into " << ids.size() << " tokens in " << ms << " ms");
  CHECK(ids.size() >= 32768);
  CHECK(tok->decode(ids) == llama3::unicode::to_nfc(text));
  CHECK(ms < 1000.0);
}

TEST_CASE("Qwen2.5-Coder 1.5B has the same tokenizer as 0.5B" * ftp_test::needs_model(ftp_test::kQwen05) *
          ftp_test::needs_model(ftp_test::kQwen15)) {
  const auto small = qwen_tokenizer();
  const llama3::Tokenizer big =
      llama3::Tokenizer::from_gguf(llama3::GgufFile::open(ftp_test::model_path(ftp_test::kQwen15)));
  CHECK(big.vocab_size() == small->vocab_size());
  CHECK(big.merge_count() == small->merge_count());
  CHECK(big.pre_tokenizer() == llama3::PreTokenizer::Qwen2);
  CHECK(big.eos_id() == 151645);
  // The two templates differ only in the tools branch ("{{" vs "{" around the tool-call JSON
  // example), so they render the same conversations.
  CHECK(big.chat_template().find("{{\\\"name\\\": <function-name>") != std::string::npos);
  for (const Json& chat : golden_qwen2()["chats"].array) {
    INFO("chat " << chat["name"].string);
    CHECK(llama3::apply_chat_template(big.chat_template(), chat_messages(chat), chat["add_generation_prompt"].boolean) ==
          chat["rendered"].string);
  }
  for (const Json& c : golden_qwen2()["cases"].array) {
    INFO("case " << c["name"].string);
    CHECK(big.encode(c["text"].string, false, true) == c["ids"].ints());
  }
}
