// Config, batch layout and view validation: every bad input names its argument and range.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "ftp/batch.hpp"
#include "ftp/config.hpp"
#include "ftp/views.hpp"
#include "ftp/workspace.hpp"

namespace {

// Runs `f`, expects ftp::Error naming `argument` and a message containing `fragment`.
template <class F>
void expect_error(F f, const std::string& argument, const std::string& fragment) {
  bool thrown = false;
  try {
    f();
  } catch (const ftp::Error& e) {
    thrown = true;
    CAPTURE(e.what());
    CHECK(e.argument() == argument);
    CHECK(std::string(e.what()).find(fragment) != std::string::npos);
  }
  CHECK_MESSAGE(thrown, "expected ftp::Error for ", argument);
}

}  // namespace

TEST_CASE("config defaults are the paper's Llama3 setting and Qwen2 differs only in eta") {
  const ftp::Config c;
  CHECK(c.initial_tokens() == 100);
  CHECK(c.last_queries() == 50);
  CHECK(c.full_layers() == 10);
  CHECK(c.eta() == doctest::Approx(0.90));
  CHECK(ftp::Config::qwen2().eta() == doctest::Approx(0.95));
  CHECK(ftp::Config::qwen2().full_layers() == 10);
  CHECK_FALSE(c.prunes_layer(9));
  CHECK(c.prunes_layer(10));
}

TEST_CASE("config rejects eta outside (0, 1], NaN, negative P or F, and N = 0") {
  expect_error([] { ftp::Config(100, 50, 10, 0.0); }, "eta", "0 < eta <= 1");
  expect_error([] { ftp::Config(100, 50, 10, -0.5); }, "eta", "0 < eta <= 1");
  expect_error([] { ftp::Config(100, 50, 10, 1.0000001); }, "eta", "0 < eta <= 1");
  expect_error([] { ftp::Config(100, 50, 10, std::nan("")); }, "eta", "nan");
  expect_error([] { ftp::Config(100, 50, 10, std::numeric_limits<double>::infinity()); }, "eta", "0 < eta <= 1");
  expect_error([] { ftp::Config(-1, 50, 10, 0.9); }, "initial_tokens (P)", "P >= 0");
  expect_error([] { ftp::Config(100, 0, 10, 0.9); }, "last_queries (N)", "N >= 1");
  expect_error([] { ftp::Config(100, -3, 10, 0.9); }, "last_queries (N)", "N >= 1");
  expect_error([] { ftp::Config(100, 50, -1, 0.9); }, "full_layers (F)", "F >= 0");
  expect_error([] { ftp::Config().with_eta(2.0); }, "eta", "0 < eta <= 1");
  CHECK(ftp::Config(0, 1, 0, 1.0).eta() == 1.0);  // the edges are valid
}

TEST_CASE("cu_seqlens must start at 0, never decrease, and end at T") {
  const int good[] = {0, 3, 3, 10};
  const ftp::BatchLayout layout = ftp::make_batch_layout(good, 3, 10);
  CHECK(layout.num_seqs() == 3);
  CHECK(layout.num_tokens() == 10);
  CHECK(layout.length(1) == 0);
  CHECK(layout.max_length() == 7);

  const int not_zero[] = {1, 3, 10};
  expect_error([&] { ftp::make_batch_layout(not_zero, 2, 10); }, "cu_seqlens", "expected 0");
  const int decreasing[] = {0, 5, 4, 10};
  expect_error([&] { ftp::make_batch_layout(decreasing, 3, 10); }, "cu_seqlens", "not monotone");
  const int short_end[] = {0, 3, 9};
  expect_error([&] { ftp::make_batch_layout(short_end, 2, 10); }, "cu_seqlens", "expected T = 10");
  expect_error([&] { ftp::make_batch_layout(nullptr, 2, 10); }, "cu_seqlens", "host offsets");
  expect_error([&] { ftp::make_batch_layout(good, -1, 10); }, "num_seqs", "B >= 0");
  expect_error([&] { ftp::make_batch_layout(nullptr, 0, 5); }, "num_tokens", "T = 0 for an empty batch");
  CHECK(ftp::make_batch_layout(nullptr, 0, 0).num_seqs() == 0);  // the empty batch is valid
}

TEST_CASE("middle segments exclude the first P and last N tokens and vanish when L <= P + N") {
  const ftp::Config config(2, 3, 0, 0.9);
  const int cu[] = {0, 0, 1, 6, 12, 22};  // lengths 0, 1, 5 (= P+N), 6 (= P+N+1), 10
  const ftp::BatchLayout layout = ftp::make_batch_layout(cu, 5, 22);
  CHECK(ftp::middle_segment(layout, 0, config).count() == 0);
  CHECK(ftp::middle_segment(layout, 1, config).count() == 0);
  CHECK(ftp::middle_segment(layout, 2, config).count() == 0);
  const ftp::MiddleSegment one = ftp::middle_segment(layout, 3, config);
  CHECK(one.begin == 8);
  CHECK(one.end == 9);
  const ftp::MiddleSegment ten = ftp::middle_segment(layout, 4, config);
  CHECK(ten.begin == 14);
  CHECK(ten.end == 19);
}

TEST_CASE("attention and residual views reject null pointers, bad GQA, head sizes and strides") {
  const float dummy[1] = {0.0f};
  ftp::AttentionView<float> a{dummy, 32 * 128, dummy, 8 * 128, 32, 8, 128};
  ftp::detail::validate_attention(a);  // valid

  auto with = [&](auto change) {
    ftp::AttentionView<float> v = a;
    change(v);
    return [v] { ftp::detail::validate_attention(v); };
  };
  expect_error(with([](auto& v) { v.q = nullptr; }), "attention.q", "null pointer");
  expect_error(with([](auto& v) { v.k = nullptr; }), "attention.k", "null pointer");
  expect_error(with([](auto& v) { v.num_q_heads = 30; }), "attention.num_q_heads", "multiple of num_kv_heads");
  expect_error(with([](auto& v) { v.num_kv_heads = 0; }), "attention.num_kv_heads", "Hkv >= 1");
  expect_error(with([](auto& v) { v.head_dim = 96; }), "attention.head_dim", "64, 128 or 256");
  expect_error(with([](auto& v) { v.q_row_stride = 100; }), "attention.q_row_stride", "Hq * d");
  expect_error(with([](auto& v) { v.k_row_stride = 100; }), "attention.k_row_stride", "Hkv * d");

  float residual[4] = {};
  ftp::ResidualView<float> r{residual, 4, 4};
  ftp::detail::validate_residual(r, 4);
  expect_error([&] { ftp::detail::validate_residual(ftp::ResidualView<float>{nullptr, 4, 4}, 4); }, "residual.data",
               "null pointer");
  expect_error([&] { ftp::detail::validate_residual(r, 8); }, "residual.hidden", "hidden size C");
  expect_error([&] { ftp::detail::validate_residual(ftp::ResidualView<float>{residual, 2, 4}, 4); },
               "residual.row_stride", "row_stride >= C");
}

TEST_CASE("an engine lse in the attention view needs positive strides and a known base") {
  const float dummy[1] = {0.0f};
  ftp::AttentionView<float> a{dummy, 32 * 128, dummy, 8 * 128, 32, 8, 128};
  a.lse = dummy;
  a.lse_token_stride = 32;
  a.lse_head_stride = 1;
  ftp::detail::validate_attention(a);  // valid: [T, Hq]
  a.lse_token_stride = 1;
  a.lse_head_stride = 4096;
  ftp::detail::validate_attention(a);  // valid: [Hq, T]
  auto with = [&](auto change) {
    ftp::AttentionView<float> v = a;
    change(v);
    return [v] { ftp::detail::validate_attention(v); };
  };
  expect_error(with([](auto& v) { v.lse_token_stride = 0; }), "attention.lse_token_stride",
               "lse_token_stride >= 1 when lse is given");
  expect_error(with([](auto& v) { v.lse_head_stride = -1; }), "attention.lse_head_stride",
               "lse_head_stride >= 1 when lse is given");
  expect_error(with([](auto& v) { v.lse_base = static_cast<ftp::LseBase>(7); }), "attention.lse_base",
               "LseBase::kNatural or LseBase::kLog2");
  // Without an lse its strides are not looked at; with one query head the head stride is unused.
  ftp::AttentionView<float> no_lse{dummy, 32 * 128, dummy, 8 * 128, 32, 8, 128};
  no_lse.lse_token_stride = -5;
  ftp::detail::validate_attention(no_lse);
  ftp::AttentionView<float> one_head{dummy, 128, dummy, 128, 1, 1, 128};
  one_head.lse = dummy;
  one_head.lse_token_stride = 1;
  ftp::detail::validate_attention(one_head);
}

TEST_CASE("workspace carving hands out aligned slices and names the slice that does not fit") {
  ftp::WorkspaceCarver sizing;
  CHECK(sizing.take<float>(10, "a") == nullptr);
  CHECK(sizing.take<double>(100, "b") == nullptr);
  CHECK(sizing.used() == 256 + 1024);

  alignas(256) static unsigned char buffer[2048];
  ftp::WorkspaceCarver carver(buffer, sizeof(buffer));
  float* a = carver.take<float>(10, "a");
  double* b = carver.take<double>(100, "b");
  CHECK(reinterpret_cast<unsigned char*>(a) == buffer);
  CHECK(reinterpret_cast<unsigned char*>(b) == buffer + 256);
  expect_error([&] { carver.take<float>(1000, "too_big"); }, "workspace", "slice 'too_big'");
}

TEST_CASE("a batch larger than the workspace shape and a too small caller workspace are rejected") {
  const ftp::WorkspaceShape shape{4096, 4, 576, 1536, 9, 3, 64};
  ftp::detail::require_batch_fits(4, 4096, shape);
  expect_error([&] { ftp::detail::require_batch_fits(5, 100, shape); }, "num_seqs", "B <= max_seqs = 4");
  expect_error([&] { ftp::detail::require_batch_fits(1, 4097, shape); }, "num_tokens", "T <= max_tokens = 4096");
  ftp::detail::require_workspace_size(1000, 1000);
  expect_error([&] { ftp::detail::require_workspace_size(999, 1000); }, "workspace_bytes", "at least 1000");
}
