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
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project

# The project: every folder the package mapping names, plus the child-manifest templates.
COPY api/ api/
COPY operator/ operator/
COPY runtime/ runtime/
COPY devcluster/ devcluster/
COPY templates/ templates/
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev \
    && python -c "import croupier.operator.main" >/dev/null

ENV CROUPIER_OPERATOR_TEMPLATES_DIR=/app/templates \
    CROUPIER_OPERATOR_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["kopf"]
CMD ["run", "--module=croupier.operator.main", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
