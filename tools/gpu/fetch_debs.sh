#!/usr/bin/env bash
# tools/gpu/fetch_debs.sh: downloads (here, where apt works) the Debian packages
# that tools/gpu/run.sh unpacks on a bare GPU machine: the OpenCL ICD loader
# and headers, CLBlast, cJSON, Criterion and the runtime libraries they need.
# They land in .gpu/debs (ignored by git; name `.gpu` in the device tool's
# carry list). Nothing is installed here.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=$root/.gpu/debs
mkdir -p "$dest"
grep -qx '/.gpu/' "$root/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >> "$root/.git/info/exclude"

# Build-time: headers and development links. Runtime: the libraries and every
# non-base library they pull in (the machine may lack them; run.sh only links
# the ones the machine does not already have).
packages=(opencl-c-headers opencl-clhpp-headers ocl-icd-opencl-dev ocl-icd-libopencl1
  libclblast-dev libclblast1 libcjson-dev libcjson1 libcriterion-dev libcriterion3
  libgit2-1.5 libnanomsg5 libmbedtls14 libmbedx509-1 libmbedcrypto7 libhttp-parser2.9
  libssh2-1 libpcre2-8-0 libffi8 libopenblas0-pthread libopenblas-dev libopenblas-pthread-dev
  libgfortran5 libquadmath0 clinfo)
cd "$dest"
for p in "${packages[@]}"; do
  ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -qq "$p"
done
ls -1 "$dest" | wc -l | xargs echo "packages in $dest:"
du -sh "$dest"
