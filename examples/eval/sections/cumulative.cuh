// ftp_eval section (b): the cumulative attention-score share over the sorted middle tokens (Fig. 6).
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

// ---- b. cumulative attention-score curve ------------------------------------------------------------

void section_cumulative(Eval& E) {
  llama3::DeviceModel& model = *E.model;
  const int L = nearest(E.grid.lengths, 4096), text = 0;
  const Tokens prompt = fidelity_prompt(E, L, text);
  using Scorer = CapturingScorer<ftp::LastQueriesAttention>;
  auto capture = std::make_shared<ScoreCapture>();
  ftp::Pruner<bf16, Scorer, ftp::CumulativeEta> pruner(E.paper, model.pruner_shape(),
                                                       Scorer(ftp::LastQueriesAttention{}, capture));
  const llama3::PrefillResult r = model.prefill_with(prompt, pruner);

  const int P = E.paper.initial_tokens(), N = E.paper.last_queries();
  const int mid_begin = std::min(P, L), mid_end = std::max(mid_begin, L - N);
  const int M = L > P + N ? mid_end - mid_begin : 0;
  const std::vector<double> etas = {0.5, 0.8, 0.9, 0.95};
  std::vector<double> fractions, mean_curve(kCurvePoints, 0.0);
  for (int k = 1; k <= kCurvePoints; ++k) fractions.push_back(static_cast<double>(k) / kCurvePoints);
  std::vector<std::string> layers;
  int curves = 0;
  std::printf("\n== (b) cumulative attention-score share over the sorted middle tokens (%d tokens, %d middle)\n", L, M);
  std::printf("%5s %6s %9s %9s %9s %9s %9s %12s\n", "layer", "kept", "top 10%", "top 30%", "top 60%", "for 90%",
              "for 95%", "kept mid dev");
  for (const auto& [layer, scores] : capture->of_layer) {
    std::vector<double> mid;
    bool valid = static_cast<int>(scores.size()) == L;
    for (int t = mid_begin; valid && t < mid_end; ++t) {
      const float s = scores[static_cast<std::size_t>(t)];
      valid = std::isfinite(s) && s >= 0.0f;
      mid.push_back(s);
    }
    std::sort(mid.begin(), mid.end(), std::greater<double>());
    std::vector<double> prefix(mid.size() + 1, 0.0);
    for (std::size_t i = 0; i < mid.size(); ++i) prefix[i + 1] = prefix[i] + mid[i];
    const double total = prefix.back();
    const bool usable = valid && M > 0 && total > 0;
    std::vector<double> curve;
    for (int k = 1; k <= kCurvePoints && usable; ++k) {
      const std::size_t n = static_cast<std::size_t>(std::lround(static_cast<double>(k) / kCurvePoints * M));
      curve.push_back(prefix[n] / total);
    }
    Obj tokens_for;
    std::vector<double> need(etas.size(), NAN);
    for (std::size_t e = 0; e < etas.size() && usable; ++e) {
      const std::size_t n = static_cast<std::size_t>(
          std::lower_bound(prefix.begin(), prefix.end(), etas[e] * total) - prefix.begin());
      need[e] = static_cast<double>(n) / M;
      char key[16];
      std::snprintf(key, sizeof key, "%.2f", etas[e]);
      tokens_for.num(key, need[e]);
    }
    // The kept middle count the device chose, against the count these host scores give at eta
    // (double sums here, exact fixed point on the device: they may differ by a token or so).
    const int kept = r.kept_per_layer[static_cast<std::size_t>(layer)];
    const int kept_mid = kept - reserved_tokens(E.paper, L);
    const double host_mid =
        usable ? static_cast<double>(std::lower_bound(prefix.begin(), prefix.end(), E.paper.eta() * total) - prefix.begin())
               : NAN;
    if (usable) {
      for (int k = 0; k < kCurvePoints; ++k) mean_curve[static_cast<std::size_t>(k)] += curve[static_cast<std::size_t>(k)];
      ++curves;
    } else {
      progress("(b) WARNING: layer %d scores unusable (valid %d, middle %d, total %.3g)", layer, valid, M, total);
    }
    layers.push_back(Obj()
                         .integer("layer", layer)
                         .num("kept_fraction", static_cast<double>(kept) / L)
                         .integer("kept_middle", kept_mid)
                         .num("kept_middle_from_host_scores", host_mid)
                         .boolean("valid_scores", usable)
                         .num("score_total", total)
                         .raw("tokens_for_share", tokens_for.done())
                         .raw("curve", jarr(curve))
                         .done());
    const auto at = [&](int pct) { return usable ? curve[static_cast<std::size_t>(pct - 1)] : NAN; };
    std::printf("%5d %6.3f %9.3f %9.3f %9.3f %9.3f %9.3f %6d/%-5.0f\n", layer, static_cast<double>(kept) / L, at(10),
                at(30), at(60), need[2], need[3], kept_mid, host_mid);
  }
  for (double& v : mean_curve) v = curves > 0 ? v / curves : NAN;
  std::printf("mean over %d layers: top 10%% %.3f, top 30%% %.3f, top 60%% %.3f of the score mass\n", curves,
              mean_curve[9], mean_curve[29], mean_curve[59]);
  std::fflush(stdout);
  E.sections["cumulative"] = Obj()
                                 .integer("length", L)
                                 .integer("text", text)
                                 .str("first_document", E.corpus.name_of(text))
                                 .integer("middle_tokens", M)
                                 .raw("fractions", jarr(fractions))
                                 .raw("mean_curve", jarr(mean_curve))
                                 .raw("layers", jlist(layers))
                                 .done();
}

}  // namespace ftp_eval
