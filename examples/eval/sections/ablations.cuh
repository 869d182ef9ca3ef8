// ftp_eval section (d): policy ablations through prefill_with, AblationResult and its JSON/table rows.
// One section a file, so each can be read and changed alone.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common.cuh"

namespace ftp_eval {

// ---- d. ablations -------------------------------------------------------------------------------------

/// One configuration's results over the ablation texts.
struct AblationResult {
  std::string group, label, scorer, reserve;
  ftp::Config config;
  double ratio = NAN;  // TopRatio only
  std::vector<std::vector<int>> kept;  // [text][layer] kept tokens
  std::vector<double> kl, ttft, speedup, dense_ttft;
  std::vector<bool> top1, exact;
};

/// Runs `pruner` through prefill_with on every ablation text: greedy generation against the dense
/// reference, then the median TTFT. `before_text(t)` may retune the pruner's policies per text.
template <class PrunerT, class BeforeText>
AblationResult run_ablation(Eval& E, AblationResult res, PrunerT& pruner, BeforeText&& before_text) {
  llama3::DeviceModel& model = *E.model;
  const int L = E.grid.ablation_length;
  for (int t = 0; t < E.grid.texts; ++t) {
    const Tokens prompt = fidelity_prompt(E, L, t);
    const DenseRef& d = dense_ref(E, L, t);
    before_text(t);
    const Generation g = generate(model, E.tok, prompt, kFidelityNewTokens,
                                  [&](const Tokens& p) { return model.prefill_with(p, pruner); });
    const double tt = median_ttft(E.args.reps, [&] { return model.prefill_with(prompt, pruner); });
    const Agreement a = agree(d.gen, g);
    res.kept.push_back(g.prefill.kept_per_layer);
    res.kl.push_back(a.kl);
    res.top1.push_back(a.top1);
    res.exact.push_back(a.exact);
    res.ttft.push_back(tt);
    res.dense_ttft.push_back(d.ttft_ms);
    res.speedup.push_back(d.ttft_ms / tt);
  }
  return res;
}

/// Middle kept fraction per text and layer >= F: (kept - reserved) / middle tokens.
double mean_middle_kept(const AblationResult& r, int L) {
  const int reserved = reserved_tokens(r.config, L), middle = L - reserved;
  std::vector<double> v;
  for (const auto& k : r.kept) {
    for (int l = r.config.full_layers(); l < static_cast<int>(k.size()); ++l) {
      v.push_back(middle > 0 ? static_cast<double>(k[static_cast<std::size_t>(l)] - reserved) / middle : 1.0);
    }
  }
  return mean(v);
}

std::string ablation_json(const AblationResult& r, int L, std::vector<double>* kept_mean_out = nullptr) {
  const std::size_t layers = r.kept.empty() ? 0 : r.kept.front().size();
  std::vector<double> kept_mean(layers, 0.0);
  for (const auto& k : r.kept) {
    for (std::size_t l = 0; l < layers; ++l) kept_mean[l] += static_cast<double>(k[l]) / L / r.kept.size();
  }
  if (kept_mean_out != nullptr) *kept_mean_out = kept_mean;
  std::vector<std::string> per_text;
  for (std::size_t t = 0; t < r.kl.size(); ++t) {
    per_text.push_back(Obj()
                           .integer("text", static_cast<long long>(t))
                           .num("kl", r.kl[t])
                           .boolean("top1_agree", r.top1[t])
                           .boolean("exact_match", r.exact[t])
                           .num("ttft_ms", r.ttft[t])
                           .num("speedup", r.speedup[t])
                           .done());
  }
  return Obj()
      .str("group", r.group)
      .str("label", r.label)
      .str("scorer", r.scorer)
      .str("reserve", r.reserve)
      .integer("P", r.config.initial_tokens())
      .integer("N", r.config.last_queries())
      .integer("F", r.config.full_layers())
      .num("eta", r.config.eta())
      .num("ratio", r.ratio)
      .integer("texts", static_cast<long long>(r.kl.size()))
      .num("mean_kept_fraction_pruned", mean_from(kept_mean, r.config.full_layers()))
      .num("ffn_work_share", mean(kept_mean))
      .num("mean_middle_kept_fraction", mean_middle_kept(r, L))
      .num("kl_mean", mean(r.kl))
      .num("kl_median", median(r.kl))
      .num("kl_max", max_of(r.kl))
      .num("top1_rate", rate(r.top1))
      .num("exact_rate", rate(r.exact))
      .num("ttft_ms", mean(r.ttft))
      .num("ttft_dense_ms", mean(r.dense_ttft))
      .num("speedup", mean(r.speedup))
      .raw("kept_fraction", jarr(kept_mean))
      .raw("per_text", jlist(per_text))
      .done();
}

void print_ablation_row(const AblationResult& r, int L) {
  std::vector<double> kept_mean;
  ablation_json(r, L, &kept_mean);
  std::printf("%-10s %-26s %9.3f %9.3f %10.4g %6.2f %6.2f %9.2f %8.3f\n", r.group.c_str(), r.label.c_str(),
              mean_from(kept_mean, r.config.full_layers()), mean(kept_mean), mean(r.kl), rate(r.top1), rate(r.exact),
              mean(r.ttft), mean(r.speedup));
  std::fflush(stdout);
}

void section_ablations(Eval& E) {
  llama3::DeviceModel& model = *E.model;
  const int L = E.grid.ablation_length;
  const ftp::WorkspaceShape shape = model.pruner_shape();
  std::vector<AblationResult> results;
  bool truncated = false;
  std::printf("\n== (d) ablations at %d tokens over %d texts (policies swapped through prefill_with)\n", L,
              E.grid.texts);
  std::printf("%-10s %-26s %9s %9s %10s %6s %6s %9s %8s\n", "group", "config", "kept(F..)", "FFN work", "KL mean",
              "top1", "exact", "TTFT ms", "speedup");

  // Dense references first (each one's generation warms the shape up before its timed prefills;
  // likewise every pruner's first generation below precedes its timing).
  for (int t = 0; t < E.grid.texts && !E.out_of_time(); ++t) dense_ref(E, L, t);

  const auto describe = [](const ftp::Config& c) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "P=%d N=%d F=%d eta=%.2f", c.initial_tokens(), c.last_queries(), c.full_layers(),
                  c.eta());
    return std::string(buf);
  };
  // CumulativeEta with the attention scorer at config c (the paper's policies, any settings).
  std::map<std::string, AblationResult> cache;  // by describe(c): the paper config appears in several groups
  const auto cumulative = [&](const std::string& group, const ftp::Config& c) -> const AblationResult* {
    auto it = cache.find(describe(c));
    if (it == cache.end()) {
      if (E.out_of_time()) { truncated = true; return nullptr; }
      ftp::Pruner<bf16> pruner(c, shape);
      AblationResult base;
      base.label = describe(c);
      base.scorer = "LastQueriesAttention";
      base.reserve = "CumulativeEta";
      base.config = c;
      it = cache.emplace(describe(c), run_ablation(E, base, pruner, [](int) {})).first;
      progress("(d) %s: KL %.4g", describe(c).c_str(), mean(it->second.kl));
    }
    AblationResult r = it->second;
    r.group = group;
    results.push_back(r);
    print_ablation_row(r, L);
    return &results.back();
  };

  // The paper's settings first: the random and TopRatio runs take their kept counts from it.
  const AblationResult* paper_ptr = cumulative("paper", E.paper);
  if (paper_ptr == nullptr) {
    std::printf("(truncated: time budget reached)\n");
  } else {
    const AblationResult paper = *paper_ptr;

    // (i) random scores at the attention scorer's kept count, per text and layer (Table 3).
    if (!E.out_of_time()) {
      ftp::Pruner<bf16, ftp::RandomScorer, PerLayerTopCount> pruner(E.paper, shape, ftp::RandomScorer(1234),
                                                                    PerLayerTopCount{});
      const int reserved = reserved_tokens(E.paper, L);
      AblationResult r;
      r.group = "scorer";
      r.label = "random, same kept counts";
      r.scorer = "RandomScorer(seed 1234)";
      r.reserve = "PerLayerTopCount";
      r.config = E.paper;
      r = run_ablation(E, r, pruner, [&](int t) {
        std::vector<int>& table = pruner.reserve().count_of_layer;
        table.assign(paper.kept[static_cast<std::size_t>(t)].size(), 0);
        for (std::size_t l = 0; l < table.size(); ++l) {
          table[l] = std::max(0, paper.kept[static_cast<std::size_t>(t)][l] - reserved);
        }
      });
      // The random run must have kept exactly the attention run's counts (same policy contract).
      for (std::size_t t = 0; t < r.kept.size(); ++t) {
        if (r.kept[t] != paper.kept[t]) progress("(d) WARNING: random run text %zu kept counts differ from the attention run's", t);
      }
      AblationResult attention = paper;
      attention.group = "scorer";
      attention.label = "attention (paper)";
      results.push_back(attention);
      print_ablation_row(attention, L);
      results.push_back(r);
      print_ablation_row(r, L);
    } else {
      truncated = true;
    }

    // (ii) eta, (iii) F, (iv) P x N (Table 6).
    for (double eta : E.grid.etas) cumulative("eta", E.paper.with_eta(eta));
    for (int F : E.grid.full_layers) cumulative("F", E.paper.with_full_layers(F));
    for (int P : E.grid.initial_tokens) {
      for (int N : E.grid.last_queries) cumulative("PxN", E.paper.with_initial_tokens(P).with_last_queries(N));
    }

    // (v) TopRatio at the paper run's mean middle kept fraction vs CumulativeEta.
    if (!E.out_of_time()) {
      const double ratio = std::min(1.0, std::max(1e-4, mean_middle_kept(paper, L)));
      ftp::Pruner<bf16, ftp::LastQueriesAttention, ftp::TopRatio> pruner(E.paper, shape, ftp::LastQueriesAttention{},
                                                                         ftp::TopRatio(ratio));
      AblationResult r;
      r.group = "reserve";
      char label[64];
      std::snprintf(label, sizeof label, "TopRatio %.3f", ratio);
      r.label = label;
      r.scorer = "LastQueriesAttention";
      r.reserve = "TopRatio";
      r.config = E.paper;
      r.ratio = ratio;
      r = run_ablation(E, r, pruner, [](int) {});
      AblationResult eta = paper;
      eta.group = "reserve";
      eta.label = "CumulativeEta 0.90 (paper)";
      results.push_back(eta);
      print_ablation_row(eta, L);
      results.push_back(r);
      print_ablation_row(r, L);
    } else {
      truncated = true;
    }
  }
  if (truncated) std::printf("(truncated: time budget reached)\n");
  std::fflush(stdout);
  std::vector<std::string> rows;
  for (const AblationResult& r : results) rows.push_back(ablation_json(r, L));
  E.sections["ablations"] = Obj()
                                .integer("length", L)
                                .integer("texts", E.grid.texts)
                                .integer("reps", E.args.reps)
                                .boolean("truncated", truncated)
                                .raw("rows", jlist(rows))
                                .done();
}

}  // namespace ftp_eval
