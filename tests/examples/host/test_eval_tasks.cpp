// Host tests of the long-context task generators and scorers (examples/eval/tasks): deterministic
// from the seed, exact prompt lengths, needles at the stated depths, answers recoverable from the
// prompt text, the scorers on hand-computed cases. A small synthetic byte-level tokenizer serves
// most cases; the Qwen2.5-Coder tokenizer (from the 0.5B GGUF) the cases marked needs_model.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "eval/tasks/code_completion.hpp"
#include "eval/tasks/common.hpp"
#include "eval/tasks/haystack.hpp"
#include "eval/tasks/multikey.hpp"
#include "eval/tasks/passkey.hpp"
#include "eval/tasks/variable_tracking.hpp"
#include "llama3/gguf.hpp"
#include "llama3/tokenizer.hpp"
#include "model_path.hpp"
#include "runtime_skip.hpp"

namespace {

using evaltasks::Tokens;

/// Byte-level BPE over the 256 byte characters, a few merges (so that tokens and bytes differ),
/// ChatML control tokens and a ChatML template with a default system message.
llama3::Tokenizer synthetic_tokenizer() {
  const llama3::unicode::ByteMap map;
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(map.utf8(static_cast<std::uint8_t>(b)));
  const std::string sp = map.utf8(' ');
  for (const std::string& t : {std::string("he"), sp + "t", sp + "the", std::string("in"), sp + "a", std::string("re"),
                               std::string("er"), sp + "o"}) {
    tokens.push_back(t);
  }
  const std::vector<std::string> merges = {"h e", sp + " t", sp + "t he", "i n", sp + " a", "r e", "e r", sp + " o"};
  std::vector<std::int32_t> types(tokens.size(), 1);
  tokens.push_back("<|im_start|>");
  types.push_back(3);
  tokens.push_back("<|im_end|>");
  types.push_back(3);
  llama3::TokenizerOptions options;
  options.chat_template =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\\nYou are a test assistant.<|im_end|>\\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const std::int32_t eos = static_cast<std::int32_t>(tokens.size()) - 1;
  return llama3::Tokenizer(tokens, merges, types, -1, eos, "gpt2", options);
}

const llama3::Tokenizer& tok() {
  static const llama3::Tokenizer t = synthetic_tokenizer();
  return t;
}

/// Prose written for these tests (several paragraphs, sentence ends, a blank line, a long list).
const std::vector<std::string>& test_texts() {
  static const std::vector<std::string> texts = {
      "The river runs past the old mill. Its water is cold in spring and warm in late summer.\n"
      "Children fish from the bridge, and the miller watches them from his window!\n\n"
      "Every morning the baker opens her shop at six. She sells bread, rolls and small cakes; on\n"
      "Sundays there is also a plum tart. Is it the best in the valley? Many people think so.\n\n"
      "The road to the next town climbs through a forest of pines. In winter it is often closed,\n"
      "and the post arrives late or not at all. Nobody minds very much.\n",
      "A short guide to keeping bees. First, choose a quiet corner of the garden that gets the\n"
      "morning sun. Second, put the hive on a stand so that it stays dry. Third, wear a veil.\n"
      "Bees dislike sudden movements, strong smells and dark clothing. They are calm on warm days\n"
      "and cross before a storm. The honey is taken off in late summer, once the combs are capped.\n\n"
      "items: wax frames, a smoker, a hive tool, a brush, gloves, a feeder, spare boxes, a queen\n"
      "excluder, a notebook for the inspections, labels for the jars and a good deal of patience\n",
  };
  return texts;
}

const evaltasks::Haystack& test_haystack() {
  static const evaltasks::Haystack h =
      evaltasks::Haystack::from_texts(tok(), {"river", "bees"}, test_texts());
  return h;
}

bool same_samples(const evaltasks::Sample& a, const evaltasks::Sample& b) {
  return a.prompt == b.prompt && a.answers == b.answers && a.needle_at == b.needle_at && a.info == b.info;
}

bool tokens_at(const Tokens& prompt, int at, const Tokens& piece) {
  if (at < 0 || at + piece.size() > prompt.size()) return false;
  return std::equal(piece.begin(), piece.end(), prompt.begin() + at);
}

std::string digits_after(const std::string& text, const std::string& marker) {
  const std::size_t at = text.find(marker);
  if (at == std::string::npos) return "";
  std::string d;
  for (std::size_t i = at + marker.size(); i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    d += text[i];
  }
  return d;
}

}  // namespace

TEST_CASE("eval tasks: edit similarity on hand-computed cases") {
  using evaltasks::edit_similarity;
  CHECK(edit_similarity("return x + 1", "return x + 1") == doctest::Approx(100.0));
  CHECK(edit_similarity("abc", "xyz") == doctest::Approx(0.0));
  CHECK(edit_similarity("", "") == doctest::Approx(100.0));
  CHECK(edit_similarity("abc", "") == doctest::Approx(0.0));
  // kitten / sitting: LCS "ittn" = 4, indel = 6 + 7 - 8 = 5, 100 * (1 - 5/13) = 61.538...
  CHECK(evaltasks::indel_distance("kitten", "sitting") == 5);
  CHECK(edit_similarity("kitten", "sitting") == doctest::Approx(800.0 / 13.0));
  // "self.x = 1" vs "self.y = 1": one substitution = 2 indels over 20 characters -> 90
  CHECK(edit_similarity("self.x = 1", "self.y = 1") == doctest::Approx(90.0));
  CHECK(edit_similarity("ab", "ba") == doctest::Approx(50.0));  // LCS 1: indel 2 of 4
}

TEST_CASE("eval tasks: first code line and code scoring follow LongBench code_sim") {
  using evaltasks::first_code_line;
  CHECK(first_code_line("\n\n    x = compute(a)\nnext") == "x = compute(a)");
  CHECK(first_code_line("# a comment\n  // another\n```\nfoo(bar)\n") == "foo(bar)");
  CHECK(first_code_line("# only comments") == "");
  CHECK(evaltasks::first_code_line_complete("\n    return x\n") == true);
  CHECK(evaltasks::first_code_line_complete("    return x") == false);
  CHECK(evaltasks::first_code_line_complete("# note\n") == false);
  evaltasks::Sample s;
  s.metric = evaltasks::Metric::EditSimilarity;
  s.answers = {"        return self._value"};
  CHECK(evaltasks::score_answer(s, "    return self._value\n    def") == doctest::Approx(1.0));
  CHECK(evaltasks::score_answer(s, "") == doctest::Approx(0.0));
}

TEST_CASE("eval tasks: exact number match and variable-tracking scoring on hand-made answers") {
  evaltasks::Sample p;
  p.metric = evaltasks::Metric::ContainsNumber;
  p.answers = {"48213"};
  CHECK(evaltasks::score_answer(p, "The pass key is 48213.") == 1.0);
  CHECK(evaltasks::score_answer(p, "48213") == 1.0);
  CHECK(evaltasks::score_answer(p, "482130") == 0.0);
  CHECK(evaltasks::score_answer(p, "4821") == 0.0);
  CHECK(evaltasks::score_answer(p, "The pass key is 4 8 2 1 3.") == 0.0);

  evaltasks::Sample v;
  v.metric = evaltasks::Metric::FractionNamed;
  v.answers = {"QWERT", "ASDFG", "ZXCVB", "POIUY", "LKJHG"};
  CHECK(evaltasks::score_answer(v, "QWERT, ASDFG, ZXCVB, POIUY, LKJHG") == doctest::Approx(1.0));
  CHECK(evaltasks::score_answer(v, "VAR QWERT, VAR ASDFG, VAR ZXCVB") == doctest::Approx(0.6));
  CHECK(evaltasks::score_answer(v, "LKJHG") == doctest::Approx(0.2));
  CHECK(evaltasks::score_answer(v, "qwert, asdfg") == doctest::Approx(0.0));      // case-sensitive
  CHECK(evaltasks::score_answer(v, "QWERTY and ASDFGH") == doctest::Approx(0.0));  // whole words only
  CHECK(evaltasks::score_answer(v, "") == doctest::Approx(0.0));
}

TEST_CASE("eval tasks: lengths past the context are capped or skipped, each with a note") {
  const auto c = evaltasks::fit_lengths({1024, 32768, 65536}, 32768, 12);
  REQUIRE(c.size() == 3);
  CHECK(c[0].used == 1024);
  CHECK(c[0].note.empty());
  CHECK(c[1].used == 32756);
  CHECK_FALSE(c[1].skipped);
  CHECK(c[1].note.find("capped") != std::string::npos);
  CHECK(c[2].skipped);
  CHECK(c[2].used == 0);
  CHECK(c[2].note.find("skipped") != std::string::npos);
}

TEST_CASE("eval tasks: the random generator is deterministic") {
  evaltasks::Rng a(7), b(7), c(8);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next();
    CHECK(x == b.next());
    CHECK(x != c.next());
  }
  evaltasks::Rng r(1);
  for (int i = 0; i < 1000; ++i) {
    const std::string n = evaltasks::random_number(r, 5);
    CHECK(n.size() == 5);
    CHECK(n[0] != '0');
  }
}

TEST_CASE("eval tasks: haystack segments are sentences, and fills have the exact length") {
  const std::string text = test_texts()[0];
  const auto segs = evaltasks::split_segments(text);
  std::string joined;
  for (const auto& s : segs) joined += s;
  CHECK(joined == text);
  CHECK(segs.size() >= 8);
  CHECK(segs[0] == "The river runs past the old mill.");
  CHECK(segs[1] == " Its water is cold in spring and warm in late summer.");
  const evaltasks::Haystack& h = test_haystack();
  for (int count : {1, 17, 300, 5000}) {  // 5000 cycles past the end of the texts
    std::vector<int> starts;
    const Tokens t = h.fill(3, count, true, &starts);
    CHECK(static_cast<int>(t.size()) == count);
    REQUIRE(!starts.empty());
    CHECK(starts[0] == 0);
    for (std::size_t i = 1; i < starts.size(); ++i) {
      CHECK(starts[i] > starts[i - 1]);
      CHECK(starts[i] < count);
      // A segment start is a sentence boundary: the text before it ends a sentence or a paragraph.
      const std::string before = tok().decode(Tokens(t.begin(), t.begin() + starts[i]));
      const std::string after = tok().decode(Tokens(t.begin() + starts[i], t.end()));
      const char last = before.back();
      CHECK_MESSAGE((last == '.' || last == '!' || last == '?' || last == '\n' || evaltasks::is_space(after[0])),
                    "boundary after '", before.substr(before.size() > 20 ? before.size() - 20 : 0), "'");
    }
  }
  CHECK(h.fill(3, 300, true) == h.fill(3, 300, true));
}

TEST_CASE("eval tasks: passkey prompts have the exact length, the needle at its depth, the key inside") {
  const evaltasks::PasskeyTask task(tok(), test_haystack(), 11);
  for (int L : {600, 1024, 2048}) {
    double previous_depth = -1;
    for (int d = 0; d <= 100; d += 10) {
      const evaltasks::Sample s = task.make(L, d);
      CHECK(static_cast<int>(s.prompt.size()) == L);
      CHECK(s.length == L);
      CHECK(same_samples(s, task.make(L, d)));  // deterministic
      REQUIRE(s.needle_at.size() == 1);
      CHECK(tokens_at(s.prompt, s.needle_at[0], s.needles[0]));
      const std::string text = tok().decode(s.prompt);
      const std::string key = digits_after(text, "The pass key is ");
      CHECK(key == s.answers[0]);
      CHECK(key.size() == 5);
      CHECK(text.find(evaltasks::passkey_sentence(key)) != std::string::npos);
      CHECK(text.find("What is the pass key?") != std::string::npos);
      CHECK(text.rfind("<|im_start|>assistant\n") == text.size() - std::string("<|im_start|>assistant\n").size());
      // Depth: the needle's offset in the haystack, within a segment (< 200 tokens here) of the target.
      const int H = L - task.frame().overhead() - static_cast<int>(s.needles[0].size());
      CHECK(s.depth >= 0.0);
      CHECK(s.depth <= 1.0);
      CHECK(std::abs(s.depth - d / 100.0) <= 200.0 / H + 1e-9);
      CHECK(s.depth >= previous_depth);
      if (d == 0) CHECK(s.depth == 0.0);
      previous_depth = s.depth;
      // The needle follows a sentence end (inside the text) or opens the body (depth 0).
      if (d > 0) {
        const std::string before = tok().decode(Tokens(s.prompt.begin(), s.prompt.begin() + s.needle_at[0]));
        const char last = before.back();
        CHECK((last == '.' || last == '!' || last == '?' || last == '\n' || last == ' '));
      }
    }
  }
  CHECK(task.make(1024, 50).answers != task.make(1024, 60).answers);  // fresh key per cell (seeded)
  CHECK_FALSE(same_samples(evaltasks::PasskeyTask(tok(), test_haystack(), 12).make(1024, 50), task.make(1024, 50)));
}

TEST_CASE("eval tasks: multi-key prompts hold every needle, and the asked key's value") {
  const evaltasks::MultiKeyTask task(tok(), test_haystack(), 5);
  for (int L : {1024, 3000}) {
    for (int i = 0; i < 6; ++i) {
      const evaltasks::Sample s = task.make(L, i);
      CHECK(static_cast<int>(s.prompt.size()) == L);
      CHECK(same_samples(s, task.make(L, i)));
      REQUIRE(s.needle_at.size() == 4);
      std::set<int> positions(s.needle_at.begin(), s.needle_at.end());
      CHECK(positions.size() == 4);
      for (std::size_t k = 0; k < 4; ++k) CHECK(tokens_at(s.prompt, s.needle_at[k], s.needles[k]));
      const std::string text = tok().decode(s.prompt);
      const std::string key = s.info.substr(4, s.info.find(' ', 4) - 4);
      CHECK(text.find("What is the special magic number for " + key + " mentioned") != std::string::npos);
      CHECK(digits_after(text, "One of the special magic numbers for " + key + " is: ") == s.answers[0]);
      CHECK(s.answers[0].size() == 7);
      // Four distinct keys in the text.
      std::set<std::string> keys;
      for (std::size_t at = text.find("magic numbers for "); at != std::string::npos;
           at = text.find("magic numbers for ", at + 1)) {
        keys.insert(text.substr(at + 18, text.find(' ', at + 18) - at - 18));
      }
      CHECK(keys.size() == 4);
    }
  }
}

TEST_CASE("eval tasks: variable-tracking chains resolve to the expected variables") {
  const evaltasks::VariableTrackingTask task(tok(), test_haystack(), 9);
  for (int L : {2048, 4096}) {  // ten statements need ten sentence boundaries
    for (int i = 0; i < 5; ++i) {
      const evaltasks::Sample s = task.make(L, i);
      CHECK(static_cast<int>(s.prompt.size()) == L);
      CHECK(same_samples(s, task.make(L, i)));
      REQUIRE(s.needle_at.size() == 10);
      for (std::size_t k = 0; k < s.needle_at.size(); ++k) {
        CHECK(tokens_at(s.prompt, s.needle_at[k], s.needles[k]));
        if (k > 0) CHECK(s.needle_at[k] > s.needle_at[k - 1]);
      }
      // Resolve the assignments in text order, as a reader would.
      const std::string text = tok().decode(s.prompt);
      const std::string value = s.info.substr(6, 5);
      std::map<std::string, std::string> value_of;
      for (std::size_t at = text.find("VAR "); at != std::string::npos; at = text.find("VAR ", at + 1)) {
        const std::string lhs = text.substr(at + 4, 5);
        if (text.compare(at + 9, 3, " = ") != 0) continue;  // the right-hand "VAR X" of a statement
        const std::size_t rhs = at + 12;
        if (text.compare(rhs, 4, "VAR ") == 0) {
          CHECK(value_of.count(text.substr(rhs + 4, 5)) == 1);  // chains come in order
          value_of[lhs] = value_of[text.substr(rhs + 4, 5)];
        } else {
          value_of[lhs] = text.substr(rhs, 5);
        }
      }
      std::set<std::string> expected(s.answers.begin(), s.answers.end()), found;
      for (const auto& [name, v] : value_of) {
        if (v == value) found.insert(name);
      }
      CHECK(value_of.size() == 10);
      CHECK(found == expected);
      CHECK(s.answers.size() == 5);
      CHECK(text.find("assigned the value " + value + " in the text above") != std::string::npos);
      std::string perfect;
      for (const std::string& n : s.answers) perfect += n + ", ";
      CHECK(evaltasks::score_answer(s, perfect) == doctest::Approx(1.0));
    }
  }
}

TEST_CASE("eval tasks: code completion cuts before non-blank code lines, exact length, deterministic") {
  // A folder of generated Python files (no copied code): functions with bodies, comments, blanks.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "ftp_test_eval_code";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "pkg" / "__pycache__");
  for (int f = 0; f < 6; ++f) {
    std::ofstream out(dir / "pkg" / ("mod" + std::to_string(f) + ".py"));
    out << "\"\"\"Module " << f << ".\"\"\"\nimport os\n\n";
    for (int fn = 0; fn < 120 + 40 * f; ++fn) {
      out << "# helper number " << fn << "\n";
      out << "def helper_" << f << "_" << fn << "(value, scale=" << fn % 7 << "):\n";
      out << "    result = value * scale + " << fn << "\n";
      out << "\n";
      out << "    if result > " << fn * 3 << ":\n";
      out << "        return os.path.join(str(result), 'x')\n";
      out << "    return result\n\n";
    }
  }
  { std::ofstream small(dir / "pkg" / "tiny.py"); small << "x = 1\n"; }
  { std::ofstream cache(dir / "pkg" / "__pycache__" / "big.py"); for (int i = 0; i < 4000; ++i) cache << "y = 2\n"; }
  const auto files = evaltasks::list_code_files({dir.string()}, 4096);
  CHECK(files.size() == 6);  // not tiny.py, not __pycache__
  const evaltasks::CodeCompletionTask task(tok(), files, 21);
  std::vector<std::string> notes;
  for (int L : {1024, 4096}) {
    const auto samples = task.make(L, 8, &notes);
    CHECK(samples.size() == 8);
    const auto again = task.make(L, 8);
    REQUIRE(again.size() == samples.size());
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const evaltasks::Sample& s = samples[i];
      CHECK(same_samples(s, again[i]));
      CHECK(static_cast<int>(s.prompt.size()) == L);
      CHECK(s.stop_at_first_line);
      REQUIRE(s.answers.size() == 1);
      CHECK_FALSE(evaltasks::strip(s.answers[0]).empty());
      CHECK(evaltasks::is_target_line(s.answers[0]));
      CHECK(s.answers[0].find('#') == std::string::npos);
      // The prompt is the text right before the cut line, which ends with a newline.
      const std::string path = s.info.substr(0, s.info.rfind(':'));
      const int line_no = std::stoi(s.info.substr(s.info.rfind(':') + 1));
      const std::string file = evaltasks::read_text_file(path);
      const std::string prompt = tok().decode(s.prompt);
      const std::size_t cut = file.find(prompt);
      REQUIRE(cut != std::string::npos);
      const std::size_t end = cut + prompt.size();
      CHECK(file[end - 1] == '\n');
      CHECK(file.compare(end, s.answers[0].size() + 1, s.answers[0] + "\n") == 0);
      CHECK(std::count(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(end), '\n') + 1 == line_no);
      CHECK(evaltasks::score_answer(s, s.answers[0] + "\n") == doctest::Approx(1.0));
    }
  }
  CHECK(notes.empty());
  // Asking for more samples than files and cuts allow: fewer, with a note.
  const auto many = task.make(4096, 1000, &notes);
  CHECK(many.size() < 1000);
  CHECK(notes.size() == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("eval tasks: prompts from the Qwen2.5 tokenizer and the machine's texts" *
          ftp_test::needs_model(ftp_test::kQwen05)) {
  const llama3::Tokenizer qwen =
      llama3::Tokenizer::from_gguf(llama3::GgufFile::open(ftp_test::model_path(ftp_test::kQwen05)));
  if (!std::filesystem::exists("/usr/share/common-licenses/GPL-3")) {
    ftp_test::skip_at_runtime("/usr/share/common-licenses is absent: no haystack text to build prompts from");
    return;
  }
  const evaltasks::Haystack hay = evaltasks::Haystack::from_dir(qwen, "/usr/share/common-licenses");
  CHECK(hay.total_tokens() > 32768);
  const evaltasks::PasskeyTask passkey(qwen, hay);
  for (int L : {1024, 8192}) {
    for (int d : {0, 50, 100}) {
      const evaltasks::Sample s = passkey.make(L, d);
      CHECK(static_cast<int>(s.prompt.size()) == L);
      const std::string text = qwen.decode(s.prompt);
      CHECK(text.find(evaltasks::passkey_sentence(s.answers[0])) != std::string::npos);
      CHECK(text.rfind("<|im_start|>user\n", 200) != std::string::npos);
    }
  }
  const evaltasks::VariableTrackingTask vt(qwen, hay);
  CHECK(vt.make(4096, 0).prompt.size() == 4096);
  const evaltasks::MultiKeyTask mk(qwen, hay);
  CHECK(mk.make(4096, 0).prompt.size() == 4096);
  const auto files = evaltasks::list_code_files(evaltasks::default_code_roots());
  if (files.empty()) {
    MESSAGE("no Python or header files on this machine: code completion part skipped");
    return;
  }
  const evaltasks::CodeCompletionTask code(qwen, files);
  const auto samples = code.make(4096, 3);
  CHECK(samples.size() == 3);
  for (const auto& s : samples) {
    CHECK(s.prompt.size() == 4096);
    const std::string file = evaltasks::read_text_file(s.info.substr(0, s.info.rfind(':')));
    const std::string prompt = qwen.decode(s.prompt);
    const std::size_t at = file.find(prompt);
    REQUIRE(at != std::string::npos);
    CHECK(file.compare(at + prompt.size(), s.answers[0].size(), s.answers[0]) == 0);
  }
}
