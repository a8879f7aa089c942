# Bosun's developer entry points. `make help` lists them.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

GO            ?= go
K8S_VERSION   := $(shell awk '$$1 == "k8s.io/kubernetes" {print $$2; exit}' hack/tools/kube/go.mod)
BOSUN_CACHE   ?= $(or $(BOSUN_CACHE_DIR),$(XDG_CACHE_HOME:%=%/bosun),$(HOME)/.cache/bosun)
BIN_DIR       ?= $(BOSUN_CACHE)/bin/$(K8S_VERSION)
GOLANGCI_VERSION := $(shell awk '$$1 == "github.com/golangci/golangci-lint/v2" {print $$2; exit}' hack/tools/lint/go.mod)
GOLANGCI_LINT    := $(BOSUN_CACHE)/tools/golangci-lint-$(GOLANGCI_VERSION)
PROMTOOL_VERSION := $(shell awk '$$1 == "github.com/prometheus/prometheus" {print $$2; exit}' hack/tools/promtool/go.mod)
PROMTOOL         := $(BOSUN_CACHE)/tools/promtool-$(PROMTOOL_VERSION)
PROMETHEUS_VERSION := $(shell awk '$$1 == "github.com/prometheus/prometheus" {print $$2; exit}' hack/tools/prometheus/go.mod)
PROMETHEUS         := $(BOSUN_CACHE)/tools/prometheus-$(PROMETHEUS_VERSION)
COMMIT        := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -X github.com/bosun-platform/bosun/internal/version.Version=$(VERSION) \
                 -X github.com/bosun-platform/bosun/internal/version.Commit=$(COMMIT)
# Integration packages each start their own control plane; two at a time
# keeps a 2-core machine responsive.
INTEGRATION_P ?= 2
TEST_TIMEOUT  ?= 30m

export BOSUN_BIN_DIR ?= $(BIN_DIR)
# The alert-rule tests (internal/observability) run this promtool; set, a
# missing binary fails them instead of skipping.
export BOSUN_PROMTOOL ?= $(PROMTOOL)
# The live alert test (internal/observability) runs this Prometheus server.
export BOSUN_PROMETHEUS ?= $(PROMETHEUS)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/bosun
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/bosun ./cmd/bosun

# The agent image, built without a Docker daemon (hack/image, a module of
# its own with go-containerregistry): a static binary (CGO_ENABLED=0) on no
# base image, non-root, as an OCI tarball for docker/podman load or
# crane/skopeo push.
IMAGE_REF ?= ghcr.io/bosun-platform/bosun:$(VERSION)
IMAGE_TAR ?= bin/bosun-image.tar
SOURCE_URL ?= https://github.com/bosun-platform/bosun

.PHONY: image
image: ## Build the agent image without a Docker daemon into bin/bosun-image.tar (OCI layout; IMAGE_REF names it)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o bin/image/bosun ./cmd/bosun
	cd hack/image && $(GO) run . -binary ../../bin/image/bosun -out ../../$(IMAGE_TAR) -ref $(IMAGE_REF) \
		-version $(VERSION) -revision $$(git rev-parse HEAD 2>/dev/null || echo unknown) -source $(SOURCE_URL) -arch $$($(GO) env GOARCH)

.PHONY: tools
tools: $(PROMTOOL) $(PROMETHEUS) ## Build etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kubectl, kwok, metrics-server, promtool and prometheus into the cache (minutes, once)
	@bash hack/tools/build.sh

# promtool checks and unit-tests the alert rules; a Go tool pinned in
# hack/tools/promtool/go.mod, built once into the cache like the linter.
# Without Prometheus' service-discovery plugins (tag remove_all_sd): rules
# need none, and the cloud SDKs they pull in take most of the build.
$(PROMTOOL):
	@mkdir -p $(dir $@)
	cd hack/tools/promtool && $(GO) build -tags remove_all_sd -o $@.tmp github.com/prometheus/prometheus/cmd/promtool
	@mv $@.tmp $@

# The Prometheus server of the live alert test: the same pinned module as
# promtool (hack/tools/prometheus/go.mod must require the same version:
# TestPrometheusPinnedLikePromtool checks), same tag, static scrape
# configs only. About 5 minutes on 2 cores cold, 2 after promtool; once.
$(PROMETHEUS):
	@mkdir -p $(dir $@)
	cd hack/tools/prometheus && $(GO) build -tags remove_all_sd -o $@.tmp github.com/prometheus/prometheus/cmd/prometheus
	@mv $@.tmp $@

.PHONY: test
test: lint tools test-unit test-chart test-image test-integration ## Everything: lint, tools, unit, chart, image and integration tests

.PHONY: test-unit
test-unit: ## Unit tests: no binaries, no processes
	$(GO) test -count=1 ./...

# The chart's tests use Helm's Go SDK, whose dependencies stay out of
# Bosun's module: hack/charttest is a module of its own. With the
# integration tag they also install the chart into a local control plane.
.PHONY: test-chart
test-chart: tools ## Helm chart tests (Helm Go SDK: lint, template, install on a local control plane)
	cd hack/charttest && $(GO) test -count=1 -tags integration -timeout $(TEST_TIMEOUT) ./...

# Builds the static binary once (shared with `make image` through the
# build cache), packs it and reads the tarball back.
.PHONY: test-image
test-image: ## Image tests: build the OCI tarball, read its config and layer, run bosun version from it
	cd hack/image && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: chart
chart: ## Regenerate charts/bosun-agent/templates from deploy/agent (TestChartUpToDate fails when they differ)
	$(GO) run ./deploy/chartgen -out charts/bosun-agent/templates

.PHONY: test-integration
test-integration: tools chromium ## Integration tests against real control planes (builds tools if missing)
	$(GO) test -count=1 -tags integration -p $(INTEGRATION_P) -timeout $(TEST_TIMEOUT) ./...

# The console's browser test needs Debian's chromium; install it when apt is
# usable, otherwise the test skips and says why.
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed (no apt-get or not root): the console browser test will skip"

.PHONY: bench
bench: tools build ## Benchmarks (control-plane start-up, RSS, scale-up scenarios, ...); figures go to docs/benchmarks.md
	$(GO) test -tags integration -run '^$$' -bench . -benchtime 3x -timeout 30m ./...
	@for s in ice normal peak reaper scale; do ./bin/bosun bench scaleup --scenario $$s || exit 1; done

.PHONY: lint
lint: $(GOLANGCI_LINT) ## gofmt and golangci-lint (govet, staticcheck, errcheck, ineffassign, unused, revive, gosec; .golangci.yml), over every file, integration tests included
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GOLANGCI_LINT) run ./...
	@for m in hack/charttest hack/image; do (cd $$m && $(GOLANGCI_LINT) run --config ../../.golangci.yml --build-tags integration ./...) || exit 1; done

# The linter is a Go tool pinned in hack/tools/lint/go.mod, built once into
# the cache outside the checkout (a few minutes on 2 cores, cold).
$(GOLANGCI_LINT):
	@mkdir -p $(dir $@)
	cd hack/tools/lint && $(GO) build -o $@.tmp github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	@mv $@.tmp $@

.PHONY: generate-externalgrpc
generate-externalgrpc: ## Regenerate the cluster-autoscaler externalgrpc Go code (needs protoc; the output is committed)
	@GO=$(GO) BOSUN_CACHE=$(BOSUN_CACHE) bash hack/generate-externalgrpc.sh

.PHONY: up
up: tools build ## Start the local fleet in the foreground (Ctrl-C or `make down` stops it)
	./bin/bosun up

.PHONY: down
down: build ## Stop the local fleet started by `make up`
	./bin/bosun down

.PHONY: clean
clean: ## Remove bin/ (the tools cache outside the checkout is kept)
	rm -rf bin
