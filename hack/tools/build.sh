#!/usr/bin/env bash
# Builds the pinned control-plane binaries Bosun's local provider runs:
# etcd, kube-apiserver, kube-scheduler, kube-controller-manager (from the
# Kubernetes version pinned in hack/tools/kube/go.mod), kubectl for
# convenience, kwok (KWOK_VERSION) and metrics-server (pinned in
# hack/tools/metrics-server/go.mod: the metrics API of the local fleet).
# They go to a cache outside the checkout, keyed by version:
#   ${BOSUN_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/bosun}/bin/<k8s-version>/
# What is already there is skipped. Each binary is built to a temporary name
# and renamed when complete, so an interrupted build never leaves a broken file.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kube_mod="$here/kube"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' <(sed -n '/^require/,$p' "$kube_mod/go.mod" | tr -d '\t' | sed 's/^require //'))
if [[ -z "$k8s_version" ]]; then
	echo "tools: cannot find the k8s.io/kubernetes version in $kube_mod/go.mod" >&2
	exit 1
fi
kwok_version=${KWOK_VERSION:-v0.8.0}
cache=${BOSUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bosun}
out="$cache/bin/$k8s_version"
mkdir -p "$out"

command -v go >/dev/null || { echo "tools: Go is required (https://go.dev/doc/install)" >&2; exit 1; }

# The Kubernetes binaries report their version (kubectl version, /version,
# node kubeletVersion checks) from these variables; without them they say
# v0.0.0-master. The stamp changes when the flags do, forcing a rebuild.
minor=$(echo "$k8s_version" | cut -d. -f2)
ldflags="-X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
stamp="$k8s_version $ldflags"

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# build NAME PACKAGE: go build PACKAGE inside the tools module into $out/NAME.
build() {
	local name=$1 pkg=$2
	if [[ -x "$out/$name" && "$(cat "$out/.$name.stamp" 2>/dev/null)" == "$stamp" ]]; then
		log "$name $k8s_version: already built"
		return
	fi
	log "$name $k8s_version: building (kube-apiserver takes about 5 minutes on 2 cores from a cold cache)"
	local start=$SECONDS
	if ! (cd "$kube_mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/.$name.tmp" "$pkg"); then
		rm -f "$out/.$name.tmp"
		echo "tools: building $name from $pkg failed (see the compiler output above)" >&2
		exit 1
	fi
	mv "$out/.$name.tmp" "$out/$name"
	echo "$stamp" >"$out/.$name.stamp"
	log "$name: done in $((SECONDS - start))s -> $out/$name"
}

log "Kubernetes $k8s_version, kwok $kwok_version -> $out"
build etcd ./etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubectl k8s.io/kubernetes/cmd/kubectl

if [[ -x "$out/kwok" && "$(cat "$out/.kwok-version" 2>/dev/null)" == "$kwok_version" ]]; then
	log "kwok $kwok_version: already built"
else
	log "kwok $kwok_version: building"
	start=$SECONDS
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	if ! GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"; then
		echo "tools: building kwok $kwok_version failed (see the compiler output above)" >&2
		exit 1
	fi
	mv "$tmp/kwok" "$out/kwok"
	echo "$kwok_version" >"$out/.kwok-version"
	log "kwok: done in $((SECONDS - start))s -> $out/kwok"
fi
ms_mod="$here/metrics-server"
ms_version=$(awk '$1 == "sigs.k8s.io/metrics-server" {print $2; exit}' "$ms_mod/go.mod")
if [[ -x "$out/metrics-server" && "$(cat "$out/.metrics-server-version" 2>/dev/null)" == "$ms_version" ]]; then
	log "metrics-server $ms_version: already built"
else
	log "metrics-server $ms_version: building"
	start=$SECONDS
	if ! (cd "$ms_mod" && CGO_ENABLED=0 go build -trimpath -o "$out/.metrics-server.tmp" sigs.k8s.io/metrics-server/cmd/metrics-server); then
		rm -f "$out/.metrics-server.tmp"
		echo "tools: building metrics-server $ms_version failed (see the compiler output above)" >&2
		exit 1
	fi
	mv "$out/.metrics-server.tmp" "$out/metrics-server"
	echo "$ms_version" >"$out/.metrics-server-version"
	log "metrics-server: done in $((SECONDS - start))s -> $out/metrics-server"
fi
log "all binaries ready in $out"
