// What the library's FFN executors share: the rows run in chunks, and the workspace holds one chunk.
#pragma once

#include <algorithm>
#include <cstddef>

#include "ftp/error.hpp"
#include "ftp/workspace.hpp"

namespace ftp::detail {

/// Base of an FFNExecutor whose kept rows run in chunks of `chunk_rows` (default 4096, where cuBLAS
/// is already near its peak), so that its workspace is bounded by the chunk, not by T. `Buffers<T>`
/// names one chunk's buffers, laid out by `layout(WorkspaceCarver&, const WorkspaceShape&, int chunk)`.
template <template <class> class Buffers>
struct ChunkedFfn {
  ChunkedFfn() = default;
  explicit ChunkedFfn(int rows_per_chunk) : chunk_rows(rows_per_chunk) {
    require(rows_per_chunk >= 1, "chunk_rows", rows_per_chunk, "chunk_rows >= 1");
  }

  template <class T>
  std::size_t workspace_bytes(const WorkspaceShape& shape) const {
    WorkspaceCarver carver;
    Buffers<T>{}.layout(carver, shape, chunk_capacity(shape));
    return carver.used();
  }

  int chunk_rows = 4096;  ///< kept rows per chunk

 protected:
  /// This executor's buffers inside its slice of the workspace (`workspace_bytes<T>(shape)` long).
  template <class T>
  Buffers<T> carve(void* workspace, const WorkspaceShape& shape) const {
    WorkspaceCarver carver(workspace, workspace_bytes<T>(shape));
    Buffers<T> buf;
    buf.layout(carver, shape, chunk_capacity(shape));
    return buf;
  }

 private:
  // No chunk is longer than the batch, and a workspace planned for T = 0 still holds one row.
  int chunk_capacity(const WorkspaceShape& shape) const { return std::max(1, std::min(chunk_rows, shape.max_tokens)); }
};

}  // namespace ftp::detail
