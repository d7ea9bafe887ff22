# Croupier — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# hack/bootstrap.sh installs uv with `pip install --user`, into ~/.local/bin, which is often not on PATH: use it there.
UV := $(shell command -v uv 2>/dev/null || { test -x "$(HOME)/.local/bin/uv" && echo "$(HOME)/.local/bin/uv"; } || echo "python3 -m uv")
RUN := $(UV) run --frozen
PYTEST_ARGS ?=
MODELSERVER_ARGS ?=
KIND_CLUSTER ?= croupier
IMAGE_TAG ?= dev
OPERATOR_IMAGE ?= croupier-operator:$(IMAGE_TAG)
RUNTIME_IMAGE ?= croupier-runtime:$(IMAGE_TAG)
DEMO_DIR ?= .demo

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: bootstrap
bootstrap: ## Install missing system tools (uv, redis-server; checks Go)
	@hack/bootstrap.sh

.PHONY: sync
sync: bootstrap ## Install the locked Python dependencies into .venv
	@$(UV) sync --frozen --quiet

.PHONY: controlplane
controlplane: ## Build (once, cached under ~/.cache/croupier) etcd, kube-apiserver, controllers, kubectl and kwok
	@hack/controlplane/build.sh

.PHONY: prometheus
prometheus: ## Unpack Debian's prometheus/promtool 2.42.0 (once, cached under ~/.cache/croupier), print the bin folder
	@hack/prometheus/install.sh

.PHONY: tools
tools: ## Build or fetch, once and cached under ~/.cache/croupier, the tools the integration tests run (Helm, Traefik, Prometheus, Gateway API CRDs, the compiled model router, Go test modules)
	@hack/helm/build.sh >/dev/null
	@hack/prometheus/install.sh >/dev/null
	@hack/gatewayapi/crds.sh >/dev/null
	@hack/traefik/build.sh >/dev/null
	@runtime/gorouter/build.sh >/dev/null
	@cd hack/healthchecks && GOMODCACHE="$${CROUPIER_CACHE:-$$HOME/.cache/croupier}/go/mod" GOFLAGS=-mod=readonly \
		go test -count=1 -run '^$$' ./... >/dev/null

.PHONY: test
test: sync controlplane tools ## Run every test that needs no Docker: unit + integration (real apiserver, etcd, Redis) + Java SDK
	$(RUN) pytest -m "not e2e" $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-java

.PHONY: test-java
test-java: sync ## Run the Java SDK's tests (clients/java: JUnit via Maven, against real runtime processes)
	cd clients/java && mvn -B -q -Dmaven.repo.local="$${CROUPIER_CACHE:-$$HOME/.cache/croupier}/m2" \
		-Dcroupier.runtime="$(CURDIR)/.venv/bin/croupier-runtime" test

.PHONY: test-unit
test-unit: sync ## Run the unit tests only (no processes started)
	$(RUN) pytest -m unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: sync controlplane tools ## Run the integration tests (local control plane, Redis, runtime processes)
	$(RUN) pytest -m integration $(PYTEST_ARGS)

.PHONY: lint
lint: sync ## Lint and check formatting (ruff) and types (mypy --strict on contracts, operator, runtime)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	@mkdir -p .typecheck/croupier && for d in api operator runtime stats templates ope clients/cli devtools/devcluster devtools/generators devtools/modelserver; do \
		ln -sfn ../../$$d .typecheck/croupier/$${d##*/}; done; ln -sfn ../../clients/python .typecheck/croupier/client
	MYPYPATH=.typecheck $(RUN) mypy --namespace-packages -p croupier.api -p croupier.operator -p croupier.runtime \
		-p croupier.stats -p croupier.templates -p croupier.ope -p croupier.cli -p croupier.client \
		-p croupier.devcluster -p croupier.generators -p croupier.modelserver

.PHONY: crds
crds: sync ## Regenerate crds/ (CRDs and their kustomization) and docs/api/ from the typed models in api/
	$(RUN) python -m croupier.generators.crdgen

.PHONY: crds-check
crds-check: sync ## Fail if crds/ or docs/api/ drifted from the models
	$(RUN) python -m croupier.generators.crdgen --check

.PHONY: protos
protos: sync ## Regenerate the TF Serving protobuf modules (runtime/tfserving/*_pb2.py, .pyi) from their .proto
	cd runtime && $(RUN) python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. tfserving/model_service.proto scoring/prediction_service.proto

.PHONY: helm
helm: ## Build Helm (once, from the Go module proxy, cached under ~/.cache/croupier/helm) and print its bin folder
	@hack/helm/build.sh

.PHONY: traefik
traefik: ## Build Traefik (once, from the Go module proxy, cached under ~/.cache/croupier/traefik) and print its path
	@hack/traefik/build.sh

.PHONY: chart-lint
chart-lint: ## helm lint --strict and helm template of charts/croupier (tests/integration/ops/test_chart.py does more)
	@helm="$$(hack/helm/build.sh)/helm" && "$$helm" lint --strict charts/croupier --kube-version 1.35.4 \
		&& "$$helm" template croupier charts/croupier -n croupier-system --kube-version 1.35.4 >/dev/null

.PHONY: gorouter
gorouter: ## Build the compiled model router (runtime/gorouter, cached under ~/.cache/croupier/gorouter), print its path
	@runtime/gorouter/build.sh

.PHONY: healthchecks
healthchecks: ## Run the Argo CD (gopher-lua) and kstatus tests of config/argocd (Go modules cached under ~/.cache/croupier/go)
	cd hack/healthchecks && GOMODCACHE="$${CROUPIER_CACHE:-$$HOME/.cache/croupier}/go/mod" GOFLAGS=-mod=readonly go test -count=1 ./...

.PHONY: demo
demo: sync controlplane ## Run the embedded demo: local control plane, operator, runtimes, examples, simulated traffic
	$(RUN) python hack/demo.py --dir $(DEMO_DIR)

.PHONY: demo-down
demo-down: ## Stop whatever a `make demo KEEP=1` left running
	-$(RUN) python hack/demo.py --dir $(DEMO_DIR) --down

.PHONY: cluster-up
cluster-up: sync controlplane ## Start the local control plane in the background, install the CRDs, print the lines to paste
	@$(RUN) croupier-devcluster up --dir $(DEMO_DIR)/cluster --detach >/dev/null
	@kubectl="$$($(RUN) croupier-devcluster build)/kubectl" \
		&& "$$kubectl" --kubeconfig "$(DEMO_DIR)/cluster/kubeconfig" apply --server-side -k crds >/dev/null \
		&& "$$kubectl" --kubeconfig "$(DEMO_DIR)/cluster/kubeconfig" wait --for=condition=Established crd --all \
			--timeout=60s >/dev/null
	@echo "Local control plane ready in $(DEMO_DIR)/cluster, Croupier's CRDs installed. Paste into your shell:"
	@echo
	@$(RUN) croupier-devcluster env --dir $(DEMO_DIR)/cluster
	@echo
	@echo "(the second line puts first on PATH the kubectl built with the server, so its version matches)"

.PHONY: kubectl-path
kubectl-path: sync ## Print the path of the kubectl built with the local control plane (same version)
	@echo "$$($(RUN) croupier-devcluster build)/kubectl"

.PHONY: cluster-status
cluster-status: ## Exit 0 when the local control plane is ready (1 starting, 3 not running)
	@$(RUN) croupier-devcluster status --dir $(DEMO_DIR)/cluster

.PHONY: cluster-down
cluster-down: ## Stop the local control plane
	-$(RUN) croupier-devcluster down --dir $(DEMO_DIR)/cluster

.PHONY: modelserver
modelserver: sync ## Run the local TF Serving stand-in (TF Serving's flags in MODELSERVER_ARGS; docs/modelserver.md)
	$(RUN) croupier-modelserver $(MODELSERVER_ARGS)

.PHONY: bench
bench: ## Run every benchmark (needs `make bench-deps`); tables go to stdout
	$(RUN) --group bench python benchmarks/policies_inprocess.py
	$(RUN) --group bench python benchmarks/regret.py
	$(RUN) --group bench python benchmarks/http_decide.py
	$(RUN) --group bench python benchmarks/runtime_memory.py
	$(RUN) --group bench python benchmarks/operator_scale.py
	$(RUN) python benchmarks/experiment_stats.py
	$(RUN) --group bench python benchmarks/modelserver_predict.py
	$(RUN) python benchmarks/soak.py

.PHONY: bench-deps
bench-deps: ## Install benchmark tools (wrk, Vowpal Wabbit, MABWiser)
	@CROUPIER_BENCH=1 hack/bootstrap.sh
	@$(UV) sync --frozen --all-groups --quiet

# --- kind (needs Docker; for users' machines) ---------------------------------------------------------------------
.PHONY: kind-up
kind-up: ## Create a kind cluster from kind-config.yaml
	kind create cluster --name $(KIND_CLUSTER) --config kind-config.yaml

.PHONY: images
images: ## Build the operator and runtime images
	docker build -f images/operator.Dockerfile -t $(OPERATOR_IMAGE) .
	docker build -f images/runtime.Dockerfile -t $(RUNTIME_IMAGE) .

.PHONY: kind-load
kind-load: images ## Load the images into the kind cluster
	kind load docker-image --name $(KIND_CLUSTER) $(OPERATOR_IMAGE) $(RUNTIME_IMAGE)

.PHONY: deploy
deploy: ## Install CRDs, RBAC and the operator into the current kube context (kustomize)
	hack/kind.sh deploy $(OPERATOR_IMAGE) $(RUNTIME_IMAGE)

.PHONY: undeploy
undeploy: ## Remove the operator, RBAC and CRDs (deletes every Croupier resource!)
	hack/kind.sh undeploy

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

.PHONY: e2e
e2e: sync ## e2e on kind: kind-up (unless it exists), kind-load, deploy, then a policy end to end; skips without Docker/kind
	$(RUN) pytest -m e2e $(PYTEST_ARGS)

.PHONY: clean
clean: ## Remove local build and demo state (keeps the control-plane cache)
	rm -rf .demo .typecheck .pytest_cache .mypy_cache .ruff_cache build dist
