# The Croupier operator: `kopf run -m croupier.operator.main --all-namespaces` as uid 65532.
# Build from the repository root: docker build -f images/operator.Dockerfile -t croupier-operator:dev .
FROM ghcr.io/astral-sh/uv:0.8 AS uv

FROM python:3.11-slim
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH
WORKDIR /app

# Dependencies first (a layer that changes only with uv.lock).
COPY pyproject.toml uv.lock README.md LICENSE ./
# The workspace's development-tools member is never installed (--no-dev); uv reads its pyproject.toml only.
COPY devtools/pyproject.toml devtools/
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-workspace

# The project: every folder the package mapping names (the child-manifest templates are package data).
COPY api/ api/
COPY operator/ operator/
COPY runtime/ runtime/
COPY templates/ templates/
# --no-editable: the image runs the built wheel (templates from its package data), as tests/integration/test_wheel.py does.
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable \
    && python -c "import croupier.operator.main" >/dev/null

ENV CROUPIER_OPERATOR_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["kopf"]
CMD ["run", "--module=croupier.operator.main", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
