# Kuberth's image: `kuberth serve` as an unprivileged user, on a read-only root filesystem.
#
#   docker build -t ghcr.io/kuberth/kuberth:0.1.0 .
#
# Two stages: the build stage installs the locked dependencies and Kuberth itself into a virtual
# environment (bytecode compiled there, so nothing is written at run time); the runtime stage is
# the same Python base image with only that environment and a user added. Nothing in the image
# needs to be writable: Python temp files go to /tmp (an emptyDir in deploy/), settings come from
# the environment, state lives in PostgreSQL.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The same uv as the Makefile's, from PyPI.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/kuberth
WORKDIR /src
# Dependencies first: this layer changes only with the lock file.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY src ./src
# The Kubernetes client's asyncio twin (kubernetes.aio) is a third of the environment and never
# imported: Kuberth uses the synchronous client.
RUN uv sync --locked --no-dev --no-editable \
    && rm -rf /opt/kuberth/lib/python*/site-packages/kubernetes/aio

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 kuberth \
    && useradd --system --uid 10001 --gid kuberth --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin kuberth
COPY --from=build /opt/kuberth /opt/kuberth
ENV PATH=/opt/kuberth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    KUBERTH_HOST=0.0.0.0 \
    KUBERTH_PORT=8000
# Numeric, so Kubernetes can check runAsNonRoot without looking the name up.
USER 10001:10001
EXPOSE 8000
# For plain Docker; Kubernetes uses the probes in deploy/deployment.yaml (/healthz, /readyz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["kuberth"]
CMD ["serve"]
