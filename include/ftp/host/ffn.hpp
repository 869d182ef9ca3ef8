// Host reference of the FFN executors: row by row, double accumulation. `round` is applied where
// the device stores a value in the element type T (normed input, GEMM outputs, activation, the
// updated residual), so a bf16 run can be compared tightly; identity for fp32.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace ftp::host {

using Rounding = float (*)(float);
inline float no_rounding(float x) { return x; }

/// Weights as float arrays, row-major [out, in] like the device executors.
struct SwiGluWeights {
  const float* norm_weight = nullptr;  // [C]
  const float* gate = nullptr;         // [I, C]
  const float* up = nullptr;           // [I, C]
  const float* down = nullptr;         // [C, I]
  float eps = 1e-5f;
};

struct GeluMlpWeights {
  const float* norm_weight = nullptr;  // [C]
  const float* norm_bias = nullptr;    // [C] or null
  const float* up = nullptr;           // [I, C]
  const float* up_bias = nullptr;      // [I] or null
  const float* down = nullptr;         // [C, I]
  const float* down_bias = nullptr;    // [C] or null
  float eps = 1e-5f;
};

/// Reference of ftp::CublasSwiGLU on the given rows of residual [T, C] (row stride `stride`).
struct CublasSwiGLU {
  void run(float* residual, std::int64_t stride, int C, int I, const std::vector<int>& rows, const SwiGluWeights& w,
           Rounding round = no_rounding) const {
    std::vector<float> x(C), normed(C), act(I);
    for (int t : rows) {
      float* row = residual + static_cast<std::int64_t>(t) * stride;
      double sum_sq = 0.0;
      for (int c = 0; c < C; ++c) sum_sq += static_cast<double>(row[c]) * row[c];
      const double inv_rms = 1.0 / std::sqrt(sum_sq / C + w.eps);
      for (int c = 0; c < C; ++c) normed[c] = round(static_cast<float>(row[c] * inv_rms * w.norm_weight[c]));
      for (int i = 0; i < I; ++i) {
        double g = 0.0, u = 0.0;
        for (int c = 0; c < C; ++c) {
          g += static_cast<double>(normed[c]) * w.gate[static_cast<std::int64_t>(i) * C + c];
          u += static_cast<double>(normed[c]) * w.up[static_cast<std::int64_t>(i) * C + c];
        }
        const double gr = round(static_cast<float>(g)), ur = round(static_cast<float>(u));
        act[i] = round(static_cast<float>(gr / (1.0 + std::exp(-gr)) * ur));
      }
      for (int c = 0; c < C; ++c) {
        double out = 0.0;
        for (int i = 0; i < I; ++i) out += static_cast<double>(act[i]) * w.down[static_cast<std::int64_t>(c) * I + i];
        row[c] = round(static_cast<float>(row[c] + out));
      }
    }
  }
};

/// Reference of ftp::CublasGeluMlp (LayerNorm, GELU tanh approximation).
struct CublasGeluMlp {
  void run(float* residual, std::int64_t stride, int C, int I, const std::vector<int>& rows, const GeluMlpWeights& w,
           Rounding round = no_rounding) const {
    std::vector<float> normed(C), hidden(I);
    for (int t : rows) {
      float* row = residual + static_cast<std::int64_t>(t) * stride;
      double mean = 0.0;
      for (int c = 0; c < C; ++c) mean += row[c];
      mean /= C;
      double var = 0.0;
      for (int c = 0; c < C; ++c) var += (row[c] - mean) * (row[c] - mean);
      const double inv_std = 1.0 / std::sqrt(var / C + w.eps);
      for (int c = 0; c < C; ++c) {
        const double b = w.norm_bias != nullptr ? w.norm_bias[c] : 0.0;
        normed[c] = round(static_cast<float>((row[c] - mean) * inv_std * w.norm_weight[c] + b));
      }
      for (int i = 0; i < I; ++i) {
        double h = 0.0;
        for (int c = 0; c < C; ++c) h += static_cast<double>(normed[c]) * w.up[static_cast<std::int64_t>(i) * C + c];
        double v = round(static_cast<float>(h)) + (w.up_bias != nullptr ? w.up_bias[i] : 0.0);
        v = 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
        hidden[i] = round(static_cast<float>(v));
      }
      for (int c = 0; c < C; ++c) {
        double out = w.down_bias != nullptr ? w.down_bias[c] : 0.0;
        for (int i = 0; i < I; ++i) out += static_cast<double>(hidden[i]) * w.down[static_cast<std::int64_t>(c) * I + i];
        row[c] = round(static_cast<float>(row[c] + out));
      }
    }
  }
};

}  // namespace ftp::host
