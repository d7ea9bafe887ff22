# The Croupier runtime (decision API) as uid 65532; the operator's Deployment runs
# `croupier-runtime --policy /etc/croupier/policy.yaml --port 8080 --state-dir /var/lib/croupier`, and a
# ModelDeployment's router Deployment (routing mode VersionLabels) `croupier-modelrouter`.
# Build from the repository root: docker build -f images/runtime.Dockerfile -t croupier-runtime:dev .
FROM ghcr.io/astral-sh/uv:0.8 AS uv

# The compiled model router (runtime/gorouter): what the operator's router Deployment runs (`croupier-modelrouter`).
FROM golang:1.26 AS gorouter
WORKDIR /src
COPY runtime/gorouter/go.mod runtime/gorouter/go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY runtime/gorouter/ ./
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/croupier-modelrouter . \
    && /out/croupier-modelrouter --help >/dev/null

FROM python:3.11-slim
COPY --from=uv /uv /usr/local/bin/uv
COPY --from=gorouter /out/croupier-modelrouter /usr/local/bin/croupier-modelrouter
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH
WORKDIR /app

COPY pyproject.toml uv.lock README.md LICENSE ./
# The workspace's development-tools member is never installed (--no-dev); uv reads its pyproject.toml only.
COPY devtools/pyproject.toml devtools/
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-workspace

COPY api/ api/
COPY operator/ operator/
COPY runtime/ runtime/
COPY templates/ templates/
# --no-editable: the image runs the built wheel (templates from its package data), as tests/integration/test_wheel.py does.
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable \
    && croupier-runtime --help >/dev/null \
    && mkdir -p /var/lib/croupier && chown 65532:65532 /var/lib/croupier

ENV CROUPIER_RUNTIME_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
VOLUME ["/var/lib/croupier"]
ENTRYPOINT ["croupier-runtime"]
CMD ["--policy", "/etc/croupier/policy.yaml", "--port", "8080", "--state-dir", "/var/lib/croupier"]
