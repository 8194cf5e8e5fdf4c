# bridge in a container: `docker compose up -d` (see compose.yaml and README → Deploy).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY platforms ./platforms
RUN pip install .

COPY bridge.yaml ./
COPY prompts ./prompts

RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin bridge \
    && mkdir -p /data && chown bridge:bridge /data
USER bridge

# The shipped bridge.yaml reads these: listen on every interface inside the container, keep the
# database on the /data volume.
ENV BRIDGE_CONFIG=/app/bridge.yaml BRIDGE_HOST=0.0.0.0 BRIDGE_PORT=8080 BRIDGE_DB=/data/bridge.db
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"

STOPSIGNAL SIGTERM
CMD ["bridge", "run"]
