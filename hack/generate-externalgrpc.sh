#!/usr/bin/env bash
# Regenerates the Go code of the cluster-autoscaler externalgrpc protocol
# (internal/casgrpc/externalgrpcpb) from externalgrpc.proto.
#
# Needs protoc (Debian/Ubuntu: apt-get install protobuf-compiler, which
# also ships google/protobuf/*.proto). Installs pinned protoc-gen-go and
# protoc-gen-go-grpc into the Bosun tool cache. The Kubernetes .proto files
# the protocol imports come from the k8s.io/api and k8s.io/apimachinery
# modules in go.mod. The generated code is committed: builds and CI never
# need protoc.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.6
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
cache=${BOSUN_CACHE:-${BOSUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bosun}}
bin="$cache/tools/protoc-gen-$PROTOC_GEN_GO_VERSION-grpc-$PROTOC_GEN_GO_GRPC_VERSION"

if ! command -v protoc >/dev/null; then
	echo "protoc not found; install it (Debian/Ubuntu: apt-get install protobuf-compiler)" >&2
	exit 1
fi

if [[ ! -x "$bin/protoc-gen-go" || ! -x "$bin/protoc-gen-go-grpc" ]]; then
	mkdir -p "$bin"
	GOBIN="$bin" "$GO" install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
	GOBIN="$bin" "$GO" install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi

# protoc resolves imports such as "k8s.io/api/core/v1/generated.proto" under
# an include directory; the module cache names directories module@version,
# so link the modules under their import paths.
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT
mkdir -p "$inc/k8s.io"
for mod in k8s.io/api k8s.io/apimachinery; do
	dir=$("$GO" list -m -f '{{.Dir}}' "$mod")
	if [[ -z "$dir" ]]; then
		"$GO" mod download "$mod"
		dir=$("$GO" list -m -f '{{.Dir}}' "$mod")
	fi
	ln -s "$dir" "$inc/$mod"
done

pkg=internal/casgrpc/externalgrpcpb
# Map every Kubernetes proto to its existing Go package, so that no
# Kubernetes type is generated again.
maps=()
for p in \
	k8s.io/api/core/v1=k8s.io/api/core/v1 \
	k8s.io/apimachinery/pkg/apis/meta/v1=k8s.io/apimachinery/pkg/apis/meta/v1 \
	k8s.io/apimachinery/pkg/api/resource=k8s.io/apimachinery/pkg/api/resource \
	k8s.io/apimachinery/pkg/runtime=k8s.io/apimachinery/pkg/runtime \
	k8s.io/apimachinery/pkg/runtime/schema=k8s.io/apimachinery/pkg/runtime/schema \
	k8s.io/apimachinery/pkg/util/intstr=k8s.io/apimachinery/pkg/util/intstr; do
	maps+=("M${p%%=*}/generated.proto=${p#*=}")
done
goopt=$(IFS=,; echo "${maps[*]}")

PATH="$bin:$PATH" protoc \
	-I "$pkg" -I "$inc" \
	--go_out="$pkg" --go_opt=paths=source_relative,"$goopt" \
	--go-grpc_out="$pkg" --go-grpc_opt=paths=source_relative,"$goopt" \
	"$pkg/externalgrpc.proto"
gofmt -l "$pkg" | (! grep .) || { echo "generated code is not gofmt-clean" >&2; exit 1; }
echo "generated $pkg"
