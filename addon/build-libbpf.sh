#!/usr/bin/env bash
# Builds a position-independent static libbpf into build/libbpf, from Debian's source package of the
# libbpf the system has. Debian ships libbpf.a without -fPIC, which cannot be linked into the addon
# (a shared object). Idempotent: does nothing when build/libbpf/libbpf.a exists.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../build/libbpf"
[ -f "$out/lib/libbpf.a" ] && exit 0

version="$(dpkg-query -W -f='${source:Version}' libbpf-dev 2>/dev/null || true)"
[ -n "$version" ] || { echo "build-libbpf: libbpf-dev is not installed (run deploy/bootstrap.sh)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/parts"
cat > "$work/parts/source.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $(. /etc/os-release && echo "$VERSION_CODENAME")
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/parts" -o Dir::State::Lists="$work/lists")
(cd "$work" && apt-get "${apt_opts[@]}" -qq update && apt-get "${apt_opts[@]}" -qq source --download-only "libbpf=$version") >/dev/null 2>&1 ||
  (cd "$work" && apt-get "${apt_opts[@]}" -qq source --download-only libbpf) >/dev/null
tar -xzf "$work"/libbpf_*.orig.tar.gz -C "$work"
src="$(find "$work" -maxdepth 2 -type d -name src -path '*libbpf*' | head -1)"
make -s -C "$src" BUILD_STATIC_ONLY=1 OBJDIR="$work/obj" DESTDIR="$out" PREFIX= LIBDIR=/lib \
  CFLAGS="-O2 -fPIC" install >/dev/null
echo "build-libbpf: built $(ls "$out/lib/libbpf.a")"
