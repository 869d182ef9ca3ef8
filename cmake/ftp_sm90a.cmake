# ftp_add_sm90a(<target>...): gives executables built for Hopper sm_90a device code, which the wgmma
# prefill attention kernel (examples/llama3/kernels/attention_prefill_sm90.cuh) needs: wgmma exists
# only for the arch-specific target sm_90a (nvcc -gencode arch=compute_90a,code=sm_90a); a plain
# sm_90 pass compiles that kernel empty and attention_prefill_sm90_available() then says false.
#
# Each entry of the target's CUDA_ARCHITECTURES (initialized from CMAKE_CUDA_ARCHITECTURES, 90 by
# default) is rewritten:
#   90       -> 90a-real;90-virtual  sm_90a SASS in place of sm_90 SASS, compute_90 PTX kept so the
#                                    other kernels still JIT on newer GPUs
#   90-real  -> 90a-real
#   others   -> unchanged (80, 100, 90-virtual, ...)
# sm_90a SASS runs on exactly the devices sm_90 SASS runs on (compute capability 9.0), so nothing is
# lost, and the fatbinary never holds both (which one the driver would load is then not in doubt).
# A list that already names a 90a entry, or native/all/all-major, is left as it is. The library
# target ftp::ftp is an INTERFACE target and stays architecture-neutral: only the executables that
# include the runner's kernels call this.
include_guard(GLOBAL)

function(ftp_add_sm90a)
  foreach(target IN LISTS ARGN)
    get_target_property(archs ${target} CUDA_ARCHITECTURES)
    if(NOT archs OR archs MATCHES "^(native|all|all-major)$" OR archs MATCHES "(^|;)90a")
      message(STATUS "ftp: ${target}: CUDA_ARCHITECTURES '${archs}' left as is (no sm_90a added)")
      continue()
    endif()
    set(result "")
    foreach(arch IN LISTS archs)
      if(arch STREQUAL "90")
        list(APPEND result 90a-real 90-virtual)
      elseif(arch STREQUAL "90-real")
        list(APPEND result 90a-real)
      else()
        list(APPEND result ${arch})
      endif()
    endforeach()
    list(REMOVE_DUPLICATES result)
    set_property(TARGET ${target} PROPERTY CUDA_ARCHITECTURES ${result})
  endforeach()
endfunction()
