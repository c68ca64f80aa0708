# Glassbox for a classroom: the model and its built graph are baked in, so the container needs no internet.
#   docker build -t glassbox .                 (--build-arg MODEL=distilgpt2 for another model)
#   docker run -d -p 8000:8000 glassbox        (then open http://<this machine>:8000/)
# CI runs these steps without Docker (.ci/run, its last step): it copies exactly this build context
# (.dockerignore applied by docker's own rules), builds and installs the wheel in a fresh virtualenv, runs
# download + export (MODEL=demo there: no hub is reachable; tests/cli/test_commands.py runs them for gpt2
# against a stand-in hub), starts the CMD and passes the HEALTHCHECK command. apt-get and useradd are not run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# cairo draws the PNG exports; the fonts cover Latin and Chinese labels in them
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcairo2 fonts-dejavu-core fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 glassbox

COPY . /tmp/glassbox
RUN pip install /tmp/glassbox && rm -rf /tmp/glassbox

USER glassbox
WORKDIR /home/glassbox
ARG MODEL=gpt2
ENV GLASSBOX_MODEL=${MODEL}
# into ~/.cache/huggingface and ~/.cache/glassbox of the user that serves
RUN glassbox download "$MODEL" && glassbox export --model "$MODEL"

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GLASSBOX_PORT', '8000'), timeout=4)"]
CMD ["glassbox", "serve", "--host", "0.0.0.0"]
