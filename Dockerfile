# syntax=docker/dockerfile:1
# Abyssal, embedded mode: one process, SQLite in the /var/lib/abyssal volume.
#   docker build -t abyssal:0.1.0 .
#   docker run -p 8080:8080 -v abyssal-data:/var/lib/abyssal abyssal:0.1.0
# Two stages: the build stage installs the package (pinned by pyproject.toml) into a venv; the
# runtime stage copies only that venv onto the same slim glibc base and runs as a non-root user.
# The base is pinned to an exact Python and Debian release; pin its digest too in your registry
# mirror (python:3.11.7-slim-bookworm@sha256:...) and bump both together.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The "otel" extra brings the OpenTelemetry SDK and OTLP exporter: tracing stays off until
# OTEL_* variables switch it on.
RUN python -m venv /opt/abyssal \
 && /opt/abyssal/bin/pip install --no-compile "pip==26.3" \
 && /opt/abyssal/bin/pip install --no-compile ".[otel]" \
 && /opt/abyssal/bin/abyssal --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
RUN groupadd --system --gid "${UID}" abyssal \
 && useradd --system --uid "${UID}" --gid abyssal --home-dir /var/lib/abyssal --shell /usr/sbin/nologin abyssal \
 && install -d -o abyssal -g abyssal -m 0700 /var/lib/abyssal
COPY --from=build /opt/abyssal /opt/abyssal
ENV PATH=/opt/abyssal/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ABYSSAL_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/abyssal
VOLUME ["/var/lib/abyssal"]
EXPOSE 8080
# Liveness only: readiness (/health/ready) is for the load balancer or Kubernetes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=2)"]
# SIGTERM: stop intake, finish the batch in flight, write a snapshot, exit (docker stop -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["abyssal"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/var/lib/abyssal"]
