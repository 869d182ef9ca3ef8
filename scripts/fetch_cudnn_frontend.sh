#!/usr/bin/env bash
# Places the cudnn-frontend C++ headers (header-only, Apache-2.0, NVIDIA) into
# .cache/cudnn-frontend/include, where CMake's FTP_WITH_CUDNN looks for them. They come from the
# PyPI wheel nvidia-cudnn-frontend (a zip whose include/ folder holds the headers); nothing is
# committed. Needs pip and unzip (or python3's zipfile) and network access; run it on a machine
# that has both, then carry .cache/cudnn-frontend to a machine that has not.
#
#   scripts/fetch_cudnn_frontend.sh            # the pinned version below
#   CUDNN_FRONTEND_VERSION=1.32.0 scripts/fetch_cudnn_frontend.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${CUDNN_FRONTEND_VERSION:-1.32.0}"
dest="${root}/.cache/cudnn-frontend"
pip="${PIP:-python3 -m pip}"

if [[ -f "${dest}/include/cudnn_frontend.h" && -f "${dest}/VERSION" && "$(cat "${dest}/VERSION")" == "${version}" ]]; then
  echo "cudnn-frontend ${version} already in ${dest}/include"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
echo "fetching nvidia-cudnn-frontend==${version} (wheel, no dependencies) ..."
${pip} download --quiet --no-deps --dest "${tmp}" "nvidia-cudnn-frontend==${version}"
wheel="$(ls "${tmp}"/nvidia_cudnn_frontend-*.whl | head -n 1)"
[[ -n "${wheel}" ]] || { echo "error: no wheel downloaded" >&2; exit 1; }

rm -rf "${dest}"
mkdir -p "${dest}"
python3 - "${wheel}" "${dest}" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("include/") and not n.endswith("/")]
    if not any(n == "include/cudnn_frontend.h" for n in names):
        sys.exit("error: the wheel has no include/cudnn_frontend.h")
    for n in names:
        z.extract(n, dest)
print(f"{len(names)} header files -> {dest}/include")
PY
echo "${version}" > "${dest}/VERSION"
echo "done: configure with cmake (FTP_WITH_CUDNN=AUTO finds ${dest}/include)"
