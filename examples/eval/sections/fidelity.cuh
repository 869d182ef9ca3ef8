// ftp_eval section (a): fidelity of FTP against dense on license texts at the paper defaults.
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

// ---- a. fidelity ----------------------------------------------------------------------------------

void section_fidelity(Eval& E) {
  llama3::DeviceModel& model = *E.model;
  const int F = E.paper.full_layers();
  std::vector<std::string> rows, summary;
  bool truncated = false;
  std::printf("\n== (a) fidelity on license texts, paper defaults P=%d N=%d F=%d eta=%.2f, %d greedy tokens\n",
              E.paper.initial_tokens(), E.paper.last_queries(), F, E.paper.eta(), kFidelityNewTokens);
  std::printf("%7s %5s %10s %10s %10s %6s %6s %10s %10s %8s\n", "tokens", "texts", "kept(F..)", "KL mean", "KL max",
              "top1", "exact", "TTFT dense", "TTFT FTP", "speedup");
  for (int L : E.grid.lengths) {
    if (E.out_of_time()) { truncated = true; break; }
    {  // warm this shape up (cuBLAS heuristics, CUB, lazy module loading) before any timing
      const Tokens p = fidelity_prompt(E, L, 0);
      model.prefill(p, false);
      model.prefill(p, true);
    }
    std::vector<std::vector<double>> kept;  // [text][layer]
    std::vector<double> kl, ttft_d, ttft_f, speedup;
    std::vector<bool> top1, exact;
    for (int t = 0; t < E.grid.texts; ++t) {
      if (E.out_of_time()) { truncated = true; break; }
      const Tokens prompt = fidelity_prompt(E, L, t);
      const DenseRef& d = dense_ref(E, L, t);
      const Generation f =
          generate(model, E.tok, prompt, kFidelityNewTokens, [&](const Tokens& p) { return model.prefill(p, true); });
      const double tf = median_ttft(E.args.reps, [&] { return model.prefill(prompt, true); });
      const Agreement a = agree(d.gen, f);
      kept.push_back(kept_fractions(f.prefill));
      kl.push_back(a.kl);
      top1.push_back(a.top1);
      exact.push_back(a.exact);
      ttft_d.push_back(d.ttft_ms);
      ttft_f.push_back(tf);
      speedup.push_back(d.ttft_ms / tf);
      rows.push_back(Obj()
                         .integer("length", L)
                         .integer("prompt_tokens", static_cast<long long>(prompt.size()))
                         .integer("text", t)
                         .str("first_document", E.corpus.name_of(t))
                         .num("kl", a.kl)
                         .boolean("top1_agree", a.top1)
                         .boolean("exact_match", a.exact)
                         .raw("first_diff", a.first_diff < 0 ? "null" : std::to_string(a.first_diff))
                         .boolean("finite_logits", a.finite)
                         .num("ttft_dense_ms", d.ttft_ms)
                         .num("ttft_ftp_ms", tf)
                         .num("speedup", d.ttft_ms / tf)
                         .raw("kept_fraction", jarr(kept.back()))
                         .num("mean_kept_fraction_pruned", mean_from(kept.back(), F))
                         .str("dense_text", d.gen.text)
                         .str("ftp_text", f.text)
                         .done());
      progress("(a) L=%d text %d (%s): kept %.3f KL %.4g top1 %d exact %d TTFT %.2f / %.2f ms", L, t,
               E.corpus.name_of(t).c_str(), mean_from(kept.back(), F), a.kl, a.top1, a.exact, d.ttft_ms, tf);
    }
    if (kept.empty()) continue;
    std::vector<double> kmean(static_cast<std::size_t>(E.layers())), kmin = kmean, kmax = kmean;
    for (int l = 0; l < E.layers(); ++l) {
      std::vector<double> v;
      for (const auto& k : kept) v.push_back(k[static_cast<std::size_t>(l)]);
      kmean[l] = mean(v);
      kmin[l] = *std::min_element(v.begin(), v.end());
      kmax[l] = max_of(v);
    }
    const double kept_pruned = mean_from(kmean, F);
    summary.push_back(Obj()
                          .integer("length", L)
                          .integer("texts", static_cast<long long>(kept.size()))
                          .raw("kept_fraction_mean", jarr(kmean))
                          .raw("kept_fraction_min", jarr(kmin))
                          .raw("kept_fraction_max", jarr(kmax))
                          .num("mean_kept_fraction_pruned", kept_pruned)
                          .num("ffn_work_share", mean(kmean))
                          .num("kl_mean", mean(kl))
                          .num("kl_median", median(kl))
                          .num("kl_max", max_of(kl))
                          .num("top1_rate", rate(top1))
                          .num("exact_rate", rate(exact))
                          .num("ttft_dense_ms", mean(ttft_d))
                          .num("ttft_ftp_ms", mean(ttft_f))
                          .num("speedup", mean(speedup))
                          .done());
    std::printf("%7d %5zu %10.3f %10.4g %10.4g %6.2f %6.2f %10.2f %10.2f %8.3f\n", L, kept.size(), kept_pruned,
                mean(kl), max_of(kl), rate(top1), rate(exact), mean(ttft_d), mean(ttft_f), mean(speedup));
  }
  if (truncated) std::printf("(truncated: time budget reached)\n");
  std::fflush(stdout);
  E.sections["fidelity"] = Obj()
                               .raw("config", Obj()
                                                  .integer("P", E.paper.initial_tokens())
                                                  .integer("N", E.paper.last_queries())
                                                  .integer("F", F)
                                                  .num("eta", E.paper.eta())
                                                  .done())
                               .integer("new_tokens", kFidelityNewTokens)
                               .str("question", kFidelityQuestion)
                               .boolean("truncated", truncated)
                               .raw("summary", jlist(summary))
                               .raw("rows", jlist(rows))
                               .done();
}

}  // namespace ftp_eval
