#!/usr/bin/env bash
# Fetches Debian 13 (trixie) tools that Debian 12 lacks for the cooperative-matrix shaders
# (shaders/*_cm.comp): glslc 2025.2 + spirv-val 2025.1, which know GL_KHR_cooperative_matrix,
# and the Vulkan loader, validation layer, vulkaninfo and Mesa's lavapipe from trixie-backports,
# which exposes VK_KHR_cooperative_matrix. Nothing is installed into the system: the .debs are
# unpacked into DEST/root and run under trixie's own dynamic loader (they need glibc >= 2.38)
# through wrappers in DEST/bin:
#   glslc, spirv-val, vulkaninfo   trixie's tools, all arguments passed on
#   run PROGRAM ARGS               any program (our tests, the CLI) with trixie's libraries, only
#                                  trixie's lavapipe as Vulkan driver and only trixie's
#                                  validation layer on the layer path
# Usage: scripts/fetch-debian13-tools.sh [DEST]     (DEST default: .deps/debian13 in the repo)
# Quick and quiet when DEST is complete (DEST/stamp records what was fetched); delete DEST to
# fetch again. The archive signature (gpgv, Debian 12's debian-archive-keyring) and every
# checksum are checked; any failure stops with a message and exit status 1.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
helper=$repo/scripts/debian_packages.py
DEST=${1:-$repo/.deps/debian13}
MIRROR=${DRDIFF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
SUITES=(trixie trixie-backports)  # the default suite first; backports only where asked or needed
WANT=(glslc spirv-tools libvulkan1 vulkan-validationlayers vulkan-tools mesa-vulkan-drivers)
FROM_BACKPORTS=(mesa-vulkan-drivers)  # lavapipe with VK_KHR_cooperative_matrix (trixie's Mesa 25.0 lacks it)
# only dpkg's maintainer scripts use these (Essential: yes packages are skipped as well)
SKIP=debconf,debconf-2.0,cdebconf,install-info,tzdata,sensible-utils,adduser,ucf,init-system-helpers
PYTHON=python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3  # Debian's, with the lzma module

die() {
  echo "fetch-debian13-tools: error: $*" >&2
  exit 1
}
log() { echo "fetch-debian13-tools: $*" >&2; }

mkdir -p "$DEST" || die "cannot create $DEST"
DEST=$(cd "$DEST" && pwd)
R=$DEST/root
L=$R/usr/lib/x86_64-linux-gnu
request="format 1; suites ${SUITES[*]}; want ${WANT[*]}; backports ${FROM_BACKPORTS[*]}; dest $DEST"
stamp=$DEST/stamp
if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$request" ]; then
  complete=1
  for f in glslc spirv-val vulkaninfo run; do [ -x "$DEST/bin/$f" ] || complete=0; done
  if [ "$complete" = 1 ]; then
    log "up to date in $DEST"
    exit 0
  fi
fi

[ "$(uname -m)" = x86_64 ] || die "only x86_64 (amd64) is supported, this is $(uname -m)"
for tool in gpgv dpkg-deb "$PYTHON"; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done
[ -f "$KEYRING" ] || die "$KEYRING missing (Debian package debian-archive-keyring)"

start=$(date +%s)
cache=$DEST/cache
mkdir -p "$cache"
rm -f "$stamp"

# 1. the signed indexes: InRelease checked by gpgv, Packages.xz by the SHA256 it signs
indexes=()
for suite in "${SUITES[@]}"; do
  "$PYTHON" "$helper" download "$MIRROR/dists/$suite/InRelease" "$cache/$suite.InRelease" ||
    die "could not download $MIRROR/dists/$suite/InRelease"
  # like apt: good when at least one signature is good and none is bad; a signature by a key
  # the keyring lacks (Debian 12's first keyring has no trixie keys) is ignored
  rm -f "$cache/$suite.Release"
  gpgv --status-fd 3 --keyring "$KEYRING" --output "$cache/$suite.Release" "$cache/$suite.InRelease" \
    3>"$cache/$suite.gpgv-status" 2>"$cache/$suite.gpgv" || true
  status=$(cat "$cache/$suite.gpgv-status")
  if ! grep -q '^\[GNUPG:\] GOODSIG ' <<<"$status" || grep -q '^\[GNUPG:\] BADSIG ' <<<"$status" ||
    [ "$(grep -c '^\[GNUPG:\] ERRSIG ' <<<"$status")" != "$(grep -c '^\[GNUPG:\] NO_PUBKEY ' <<<"$status")" ]; then
    cat "$cache/$suite.gpgv" >&2
    die "signature check of $suite's InRelease failed with $KEYRING (Debian package" \
      "debian-archive-keyring; 2023.3+deb12u2 holds the trixie keys)"
  fi
  entry=$("$PYTHON" "$helper" release-entry "$cache/$suite.Release" "$suite" main/binary-amd64/Packages.xz) ||
    die "$suite: no usable Packages.xz entry in the signed Release"
  read -r path sha size <<<"$entry"
  "$PYTHON" "$helper" download "$MIRROR/dists/$suite/$path" "$cache/$suite.Packages.xz" "$sha" "$size" ||
    die "$suite: Packages.xz download or checksum failed"
  indexes+=("$cache/$suite.Packages.xz")
done

# 2. the dependency closure and its .debs, each checked against its signed Packages stanza
"$PYTHON" "$helper" resolve --want "$(IFS=,; echo "${WANT[*]}")" --newest "${FROM_BACKPORTS[@]}" \
  --skip "$SKIP" "${indexes[@]}" >"$cache/closure" || die "dependency resolution failed"
log "downloading $(wc -l <"$cache/closure") packages from $MIRROR"
"$PYTHON" "$helper" fetch-debs "$cache/closure" "$MIRROR" "$cache/debs" || die "package download failed"

# 3. unpack (no maintainer scripts run: nothing of this touches the system)
rm -rf "$R" "$R.new"
mkdir -p "$R.new"
while read -r _ _ _ _ _ filename; do
  dpkg-deb -x "$cache/debs/$(basename "$filename")" "$R.new" || die "dpkg-deb -x failed on $filename"
done <"$cache/closure"
mv "$R.new" "$R"
[ -x "$L/ld-linux-x86-64.so.2" ] || die "trixie's dynamic loader is missing from $L"

# 4. Vulkan manifests with absolute library paths; an empty implicit-layer folder so that the
#    system's implicit layers (e.g. Debian 12's Mesa device_select) stay out
rm -rf "$DEST/explicit_layer.d" "$DEST/implicit_layer.d"
mkdir -p "$DEST/explicit_layer.d" "$DEST/implicit_layer.d"
icds=("$R"/usr/share/vulkan/icd.d/lvp_icd*.json)  # lvp_icd.json in trixie, .x86_64.json elsewhere
"$PYTHON" "$helper" manifest "${icds[0]}" "$DEST/lvp_icd.json" "$L" ||
  die "lavapipe's ICD manifest is missing or unusable"
"$PYTHON" "$helper" manifest "$R/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json" \
  "$DEST/explicit_layer.d/VkLayer_khronos_validation.json" "$L" ||
  die "the validation layer's manifest is missing or unusable"

# 5. wrappers (ld.so --library-path is not inherited: only the named program runs on trixie's libc)
mkdir -p "$DEST/bin"
q() { printf '%q' "$1"; }
for tool in glslc spirv-val; do
  cat >"$DEST/bin/$tool" <<EOF
#!/bin/sh
# Debian 13's $tool under Debian 13's dynamic loader (written by scripts/fetch-debian13-tools.sh)
exec $(q "$L/ld-linux-x86-64.so.2") --library-path $(q "$L") --argv0 $tool $(q "$R/usr/bin/$tool") "\$@"
EOF
done
cat >"$DEST/bin/vulkaninfo" <<EOF
#!/bin/sh
# Debian 13's vulkaninfo on Debian 13's lavapipe (written by scripts/fetch-debian13-tools.sh)
exec $(q "$DEST/bin/run") vulkaninfo "\$@"
EOF
cat >"$DEST/bin/run" <<EOF
#!/bin/sh
# run PROGRAM [ARGS]: PROGRAM under Debian 13's dynamic loader and libraries, with Debian 13's
# lavapipe as the only Vulkan driver and Debian 13's validation layer as the only layer (the
# system's /usr/share/vulkan and /etc/vulkan manifests are not read). PROGRAM without a slash is
# looked up in Debian 13's /usr/bin, then in PATH. Written by scripts/fetch-debian13-tools.sh.
if [ \$# -eq 0 ]; then echo "usage: \$0 PROGRAM [ARGS]" >&2; exit 2; fi
prog=\$1
shift
case \$prog in
  */*) ;;
  *) if [ -x $(q "$R/usr/bin")/"\$prog" ]; then prog=$(q "$R/usr/bin")/\$prog; else prog=\$(command -v "\$prog") || { echo "run: \$prog: not found" >&2; exit 127; }; fi ;;
esac
unset VK_ICD_FILENAMES VK_ADD_DRIVER_FILES VK_ADD_LAYER_PATH VK_ADD_IMPLICIT_LAYER_PATH
export VK_DRIVER_FILES=$(q "$DEST/lvp_icd.json")
export VK_LAYER_PATH=$(q "$DEST/explicit_layer.d")
export VK_IMPLICIT_LAYER_PATH=$(q "$DEST/implicit_layer.d")
exec $(q "$L/ld-linux-x86-64.so.2") --library-path $(q "$L") --argv0 "\$prog" "\$prog" "\$@"
EOF
chmod +x "$DEST/bin/"*

# 6. checks: every library of the tools resolves inside DEST/root (none falls back to Debian 12's),
#    the compiler knows cooperative matrices, and lavapipe exposes them
for obj in "$R/usr/bin/glslc" "$R/usr/bin/spirv-val" "$R/usr/bin/vulkaninfo" "$L/libvulkan.so.1" \
  "$L/libvulkan_lvp.so" "$L/libVkLayer_khronos_validation.so"; do
  deps=$("$L/ld-linux-x86-64.so.2" --library-path "$L" --list "$obj") || die "ld.so --list $obj failed"
  outside=$(echo "$deps" | awk '$2 == "=>" && index($3, "'"$R"'/") != 1 {print $1 " => " $3}')
  [ -z "$outside" ] || die "$obj needs libraries outside $R: $outside"
done
# (the output is captured first: grep -q closing the pipe early would fail it under pipefail)
version=$("$DEST/bin/glslc" --version) || die "$DEST/bin/glslc does not run"
[[ $version =~ glslang\ (1[5-9]|[2-9][0-9]) ]] || die "$DEST/bin/glslc is too old: $version"
"$DEST/bin/spirv-val" --version >/dev/null || die "$DEST/bin/spirv-val does not run"
info=$("$DEST/bin/run" vulkaninfo 2>/dev/null) || die "vulkaninfo fails on trixie-backports' lavapipe"
[[ $info == *VK_KHR_cooperative_matrix* ]] ||
  die "trixie-backports' lavapipe lacks VK_KHR_cooperative_matrix"

rm -rf "$cache/debs"  # unpacked and checked: the .debs are not needed any more
{
  echo "$request"
  awk '{print $1, $2, $3}' "$cache/closure"
} >"$stamp"
log "$(wc -l <"$cache/closure") packages in $R ($(du -sm "$R" | cut -f1) MiB, $(($(date +%s) - start)) s);" \
  "wrappers in $DEST/bin"
