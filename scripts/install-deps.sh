#!/usr/bin/env bash
# Installs frost's build and test dependencies from Debian's packages.
# Idempotent: packages already present are not touched, so a warm machine pays
# only for one dpkg query.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libxxhash-dev liblz4-dev libzstd-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  clang libclang-rt-dev   # libFuzzer + sanitizers for the store fuzz target
  python3 sqlite3 tmux    # real programs the freeze/melt acceptance tests run
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
