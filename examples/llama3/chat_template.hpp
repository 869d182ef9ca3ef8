// Chat prompt rendering for the two formats the example runner supports, without a Jinja engine.
//
// A GGUF file carries its chat template as Jinja source (`tokenizer.chat_template`). Rather than
// interpret Jinja, we recognise which family the template belongs to by its marker tokens and
// render that family's layout in C++:
//
//   ChatML (SmolLM2, Qwen, ...), marker "<|im_start|>":
//     <|im_start|>{role}\n{content}<|im_end|>\n  ... per message
//     <|im_start|>assistant\n                       if add_generation_prompt
//     When the template holds a literal default system message ("<|im_start|>system\n...<|im_end|>"
//     inside a string literal, as SmolLM2's and Qwen2.5's do) it is put first whenever the first
//     message is not a system message, as those templates do. For Qwen2.5(-Coder) this matches
//     transformers' rendering of system/user/assistant turns (tests/fixtures/
//     tokenizer_golden_qwen2.json); its tools, tool_calls and "tool" role are not reproduced.
//
//   Llama 3 (Meta Llama 3 Instruct), marker "<|start_header_id|>":
//     <|begin_of_text|>                                                   before the first message
//     <|start_header_id|>{role}<|end_header_id|>\n\n{trimmed content}<|eot_id|>   per message
//     <|start_header_id|>assistant<|end_header_id|>\n\n                   if add_generation_prompt
//     Content is trimmed of surrounding whitespace as the template's `| trim` does. Llama 3.1's
//     extras (the "Cutting Knowledge Date" system preamble, tool calls) are not reproduced.
//
// The rendered text contains special tokens as text: encode it with parse_special = true, and
// with add_bos = false for Llama 3, whose rendering already begins with <|begin_of_text|>.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace llama3 {

/// One turn of a conversation.
struct ChatMessage {
  std::string role;     ///< "system", "user" or "assistant"
  std::string content;
};

/// The template families apply_chat_template can render.
enum class ChatFormat {
  ChatML,  ///< <|im_start|>role\n...<|im_end|>
  Llama3,  ///< <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
};

/// Recognises a template's family by its marker tokens; throws std::invalid_argument when it has
/// neither (an empty template included), naming the markers looked for.
inline ChatFormat detect_chat_format(const std::string& template_text) {
  if (template_text.find("<|start_header_id|>") != std::string::npos) return ChatFormat::Llama3;
  if (template_text.find("<|im_start|>") != std::string::npos) return ChatFormat::ChatML;
  throw std::invalid_argument(
      "chat template: not recognised (looked for '<|im_start|>' for ChatML and "
      "'<|start_header_id|>' for Llama 3)" +
      std::string(template_text.empty() ? "; the model has no tokenizer.chat_template" : ""));
}

/// The default system message written literally in a ChatML template, or "" when it has none.
/// Only a message that sits inside one Jinja string literal counts: a system block assembled from
/// `message['content']` is no default. Jinja escapes in the literal (\n, \t, \', \", \\) are undone.
inline std::string chatml_default_system_message(const std::string& template_text) {
  const std::string open = "<|im_start|>system";
  const std::string close = "<|im_end|>";
  for (size_t at = template_text.find(open); at != std::string::npos;
       at = template_text.find(open, at + 1)) {
    // The literal's opening quote is the nearest quote before the marker.
    const size_t quote_pos = template_text.find_last_of("'\"", at);
    if (quote_pos == std::string::npos) continue;
    const char quote = template_text[quote_pos];
    size_t pos = at + open.size();
    // The newline after the role: a real one, or Jinja's escaped "\n".
    if (template_text.compare(pos, 1, "\n") == 0) {
      pos += 1;
    } else if (template_text.compare(pos, 2, "\\n") == 0) {
      pos += 2;
    } else {
      continue;
    }
    const size_t end = template_text.find(close, pos);
    if (end == std::string::npos) continue;
    std::string message;
    bool literal = true;
    for (size_t i = pos; i < end && literal; ++i) {
      const char c = template_text[i];
      if (c == quote) {
        literal = false;  // the string literal closed before <|im_end|>: content is computed
      } else if (c == '\\' && i + 1 < end) {
        const char e = template_text[++i];
        message += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        message += c;
      }
    }
    if (literal && message.find("{{") == std::string::npos) return message;
  }
  return "";
}

namespace chat_detail {

inline std::string trim_whitespace(const std::string& s) {
  const char* space = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(space);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

}  // namespace chat_detail

/// Renders `messages` in the format of `template_text` (the model's `tokenizer.chat_template`);
/// with `add_generation_prompt` the text ends where the assistant's reply begins.
/// Throws std::invalid_argument for a template of another family (see detect_chat_format).
///
///   std::vector<llama3::ChatMessage> chat = {{"user", "Hi!"}};
///   std::string prompt = llama3::apply_chat_template(tok.chat_template(), chat, true);
///   std::vector<int32_t> ids = tok.encode(prompt, /*add_bos=*/false, /*parse_special=*/true);
inline std::string apply_chat_template(const std::string& template_text,
                                       const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt) {
  std::string out;
  switch (detect_chat_format(template_text)) {
    case ChatFormat::ChatML: {
      const auto turn = [&out](const std::string& role, const std::string& content) {
        out += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
      };
      const std::string default_system = chatml_default_system_message(template_text);
      // Like the templates, only a conversation with a first message gets the default system.
      if (!default_system.empty() && !messages.empty() && messages.front().role != "system") {
        turn("system", default_system);
      }
      for (const ChatMessage& m : messages) turn(m.role, m.content);
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    }
    case ChatFormat::Llama3: {
      // The template writes bos_token before the first message only.
      if (!messages.empty()) out += "<|begin_of_text|>";
      for (const ChatMessage& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" +
               chat_detail::trim_whitespace(m.content) + "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }
  }
  return out;
}

}  // namespace llama3
