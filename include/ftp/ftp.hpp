// ftp: FFN token pruning for long-context LLM prefill. The public API in one include.
//
// Include from CUDA translation units (.cu). Host-only pieces (Config, the host reference under
// ftp/host/) can be included from plain C++ on their own.
#pragma once

#include "ftp/batch.hpp"
#include "ftp/config.hpp"
#include "ftp/error.hpp"
#include "ftp/gemm.hpp"
#include "ftp/policy_traits.hpp"
#include "ftp/pruner.cuh"
#include "ftp/telemetry.hpp"
#include "ftp/version.hpp"
#include "ftp/views.hpp"
#include "ftp/workspace.hpp"

// Policies: importance scorers
#include "ftp/scorer/last_queries_attention.cuh"
#include "ftp/scorer/random.cuh"
// Policies: reserve rules, and the bases of a custom prefix rule
#include "ftp/reserve/cumulative_eta.cuh"
#include "ftp/reserve/keep_all.cuh"
#include "ftp/reserve/prefix_rule.hpp"
#include "ftp/reserve/top_count.cuh"
#include "ftp/reserve/top_ratio.cuh"
// Selection: the paths and their one dispatcher
#include "ftp/selection/dispatch.cuh"
#include "ftp/selection/kept_counts.hpp"
// Policies: FFN executors
#include "ftp/ffn/callable.cuh"
#include "ftp/ffn/cublas_gelu_mlp.cuh"
#include "ftp/ffn/cublas_swiglu.cuh"
#include "ftp/ffn/no_ffn.cuh"
