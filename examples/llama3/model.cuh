// The llama3 GPU runner, umbrella header: one include gives DeviceModel and all its parts.
//   synthetic_weights.cuh  runner_kernels.cuh  device_resources.cuh  device_layout.cuh
//   model_types.cuh  device_model.cuh (DeviceModel: construction, uploads, prefill/decode, pruners)
#pragma once

#include "llama3/device_layout.cuh"
#include "llama3/device_model.cuh"
#include "llama3/device_resources.cuh"
#include "llama3/model_types.cuh"
#include "llama3/runner_kernels.cuh"
#include "llama3/synthetic_weights.cuh"
