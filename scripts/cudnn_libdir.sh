#!/usr/bin/env bash
# Prints the directory holding libcudnn.so.9 (nothing, exit 1, when none is found), for
# LD_LIBRARY_PATH: the runner loads cuDNN at run time (dlopen) and on the GPU machine cuDNN may
# live only inside PyTorch's install.
#
#   d="$(scripts/cudnn_libdir.sh)" && export LD_LIBRARY_PATH="${d}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
#
# Order: what the dynamic loader already finds (ldconfig), the nvidia-cudnn wheel of any python3
# on PATH or of /opt/*/.venv, then a search of the usual install roots.
set -uo pipefail

if ldconfig -p 2>/dev/null | grep -q 'libcudnn\.so\.9 '; then
  dirname "$(ldconfig -p | awk '/libcudnn\.so\.9 / {print $NF; exit}')"
  exit 0
fi

for py in python3 /opt/*/.venv/bin/python3 /opt/*/venv/bin/python3; do
  command -v "${py}" >/dev/null 2>&1 || [[ -x "${py}" ]] || continue
  d="$("${py}" -c 'import nvidia.cudnn, os; print(os.path.join(list(nvidia.cudnn.__path__)[0], "lib"))' 2>/dev/null)"
  if [[ -n "${d}" && -e "${d}/libcudnn.so.9" ]]; then
    echo "${d}"
    exit 0
  fi
done

for root in /usr/local /opt /usr/lib /root; do
  [[ -d "${root}" ]] || continue
  f="$(find "${root}" -name 'libcudnn.so.9*' \( -type f -o -type l \) 2>/dev/null | head -n 1)"
  if [[ -n "${f}" ]]; then
    dirname "${f}"
    exit 0
  fi
done
exit 1
