# bridge in a container: `docker compose up -d` (see compose.yaml and docs/deploy.md).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, in a layer of their own: read from pyproject.toml alone, so a code change
# reuses this layer and only the small install of the code itself below runs again.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY README.md ./
COPY bridge ./bridge
COPY platforms ./platforms
RUN pip install --no-deps .

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
