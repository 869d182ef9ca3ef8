# FTP_WITH_CUDNN: the runner's optional third prefill attention kernel, cuDNN's fused flash
# attention (SDPA forward) through the header-only cudnn-frontend graph API
# (examples/llama3/cudnn_attention.{hpp,cpp}).
#
#   AUTO (default)  on when cudnn.h and the cudnn-frontend headers are found, else off with a message
#   ON              the same, but missing pieces are a configure error
#   OFF             never; AttentionKernel::Cudnn then throws "not built"
#
# cudnn.h: CUDNN_INCLUDE_DIR, else the CUDA Toolkit's include folders. The frontend headers:
# CUDNN_FRONTEND_INCLUDE_DIR, else .cache/cudnn-frontend/include (scripts/fetch_cudnn_frontend.sh).
#
# No link-time dependency on libcudnn: the frontend is built with NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING
# and the library dlopens libcudnn.so.9 the first time the Cudnn kernel is asked for (override the
# name or path with FTP_CUDNN_LIBRARY). Where it is not found the binaries still start and the
# Cudnn kernel reports itself unavailable; scripts/cudnn_libdir.sh prints a directory for
# LD_LIBRARY_PATH.
#
# Gives the static library ftp_cudnn_attention (compile definition FTP_HAVE_CUDNN=1 for its users)
# and ftp_link_cudnn(<target>...), which links it where it exists and does nothing otherwise.
include_guard(GLOBAL)

set(FTP_WITH_CUDNN AUTO CACHE STRING "cuDNN fused attention in the runner: AUTO, ON or OFF")
set_property(CACHE FTP_WITH_CUDNN PROPERTY STRINGS AUTO ON OFF)

set(FTP_CUDNN_ENABLED OFF)
if(NOT FTP_WITH_CUDNN STREQUAL "OFF")
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/include
            PATH_SUFFIXES include)
  find_path(CUDNN_FRONTEND_INCLUDE_DIR cudnn_frontend.h
            HINTS ${PROJECT_SOURCE_DIR}/.cache/cudnn-frontend/include NO_DEFAULT_PATH)
  find_library(CUDNN_LIBRARY_AT_BUILD NAMES cudnn libcudnn.so.9 HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib)
  set(missing "")
  if(NOT CUDNN_INCLUDE_DIR)
    list(APPEND missing "cudnn.h (set CUDNN_INCLUDE_DIR)")
  endif()
  if(NOT CUDNN_FRONTEND_INCLUDE_DIR)
    list(APPEND missing "the cudnn-frontend headers (run scripts/fetch_cudnn_frontend.sh, or set CUDNN_FRONTEND_INCLUDE_DIR)")
  endif()
  if(missing)
    list(JOIN missing "; " missing_text)
    if(FTP_WITH_CUDNN STREQUAL "ON")
      message(FATAL_ERROR "ftp: FTP_WITH_CUDNN=ON but not found: ${missing_text}")
    endif()
    message(STATUS "ftp: cuDNN attention OFF (not found: ${missing_text}); everything else builds as usual")
  else()
    set(FTP_CUDNN_ENABLED ON)
    if(CUDNN_LIBRARY_AT_BUILD)
      set(lib_note "libcudnn here: ${CUDNN_LIBRARY_AT_BUILD}")
    else()
      set(lib_note "no libcudnn here")
    endif()
    message(STATUS "ftp: cuDNN attention ON (cudnn.h in ${CUDNN_INCLUDE_DIR}, frontend in "
                   "${CUDNN_FRONTEND_INCLUDE_DIR}; libcudnn.so.9 is loaded at run time, ${lib_note})")
  endif()
endif()

if(FTP_CUDNN_ENABLED AND NOT TARGET ftp_cudnn_attention)
  add_library(ftp_cudnn_attention STATIC ${PROJECT_SOURCE_DIR}/examples/llama3/cudnn_attention.cpp)
  target_include_directories(ftp_cudnn_attention PUBLIC ${PROJECT_SOURCE_DIR}/examples)
  # SYSTEM: the frontend's own warnings are not ours.
  target_include_directories(ftp_cudnn_attention SYSTEM PRIVATE ${CUDNN_FRONTEND_INCLUDE_DIR} ${CUDNN_INCLUDE_DIR})
  target_compile_features(ftp_cudnn_attention PUBLIC cxx_std_17)
  target_compile_definitions(ftp_cudnn_attention PUBLIC FTP_HAVE_CUDNN=1
                             PRIVATE NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING)
  target_link_libraries(ftp_cudnn_attention PUBLIC CUDA::cudart PRIVATE ${CMAKE_DL_LIBS})
  set_target_properties(ftp_cudnn_attention PROPERTIES POSITION_INDEPENDENT_CODE ON)
endif()

function(ftp_link_cudnn)
  if(TARGET ftp_cudnn_attention)
    foreach(target IN LISTS ARGN)
      target_link_libraries(${target} PRIVATE ftp_cudnn_attention)
    endforeach()
  endif()
endfunction()
