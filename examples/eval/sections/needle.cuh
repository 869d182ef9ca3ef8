// ftp_eval section (c): needle in a haystack, dense vs FTP (Fig. 8).
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

// ---- c. needle in a haystack ------------------------------------------------------------------------

void section_needle(Eval& E) {
  llama3::DeviceModel& model = *E.model;
  std::vector<std::string> rows;
  std::map<std::pair<int, int>, std::pair<int, int>> hits;  // (depth, length) -> (dense, ftp)
  bool truncated = false;
  for (int L : E.grid.needle_lengths) {
    for (int depth : E.grid.needle_depths) {
      if (E.out_of_time()) { truncated = true; break; }
      double actual = 0;
      const Tokens prompt = needle_prompt(E, L, depth, &actual);
      const Generation d =
          generate(model, E.tok, prompt, kNeedleNewTokens, [&](const Tokens& p) { return model.prefill(p, false); });
      const Generation f =
          generate(model, E.tok, prompt, kNeedleNewTokens, [&](const Tokens& p) { return model.prefill(p, true); });
      const bool dh = d.text.find(kNeedleAnswer) != std::string::npos;
      const bool fh = f.text.find(kNeedleAnswer) != std::string::npos;
      const Agreement a = agree(d, f);
      hits[{depth, L}] = {dh, fh};
      rows.push_back(Obj()
                         .integer("length", L)
                         .integer("prompt_tokens", static_cast<long long>(prompt.size()))
                         .integer("depth_percent", depth)
                         .num("actual_depth", actual)
                         .boolean("dense_hit", dh)
                         .boolean("ftp_hit", fh)
                         .num("kl", a.kl)
                         .boolean("top1_agree", a.top1)
                         .boolean("exact_match", a.exact)
                         .num("mean_kept_fraction_pruned", mean_from(kept_fractions(f.prefill), E.paper.full_layers()))
                         .str("dense_answer", d.text)
                         .str("ftp_answer", f.text)
                         .done());
      progress("(c) L=%d depth %d%%: dense %s | FTP %s", L, depth, dh ? "hit" : "miss", fh ? "hit" : "miss");
    }
    if (truncated) break;
  }
  std::printf("\n== (c) needle in a haystack: cell = dense/FTP (1 = answer contains %s)\n%6s", kNeedleAnswer, "depth");
  for (int L : E.grid.needle_lengths) std::printf(" %7d", L);
  std::printf("\n");
  int dense_total = 0, ftp_total = 0, cells = 0;
  for (int depth : E.grid.needle_depths) {
    std::printf("%5d%%", depth);
    for (int L : E.grid.needle_lengths) {
      auto it = hits.find({depth, L});
      if (it == hits.end()) {
        std::printf(" %7s", "-");
      } else {
        std::printf("     %d/%d", it->second.first, it->second.second);
        dense_total += it->second.first;
        ftp_total += it->second.second;
        ++cells;
      }
    }
    std::printf("\n");
  }
  std::printf("retrieved: dense %d/%d, FTP %d/%d%s\n", dense_total, cells, ftp_total, cells,
              truncated ? " (truncated: time budget reached)" : "");
  std::fflush(stdout);
  E.sections["needle"] = Obj()
                             .str("needle", kNeedle)
                             .str("question", kNeedleQuestion)
                             .str("answer", kNeedleAnswer)
                             .integer("new_tokens", kNeedleNewTokens)
                             .raw("lengths", jarr(E.grid.needle_lengths))
                             .raw("depths", jarr(E.grid.needle_depths))
                             .integer("dense_hits", dense_total)
                             .integer("ftp_hits", ftp_total)
                             .integer("cells", cells)
                             .boolean("truncated", truncated)
                             .raw("rows", jlist(rows))
                             .done();
}

}  // namespace ftp_eval
