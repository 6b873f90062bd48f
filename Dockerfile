# codepipeline-ssm-worker image: the job worker as a non-root process.
#   docker build -t codepipeline-ssm-worker .
#   docker run -v "$PWD/worker.yml:/etc/codepipeline-ssm-worker/config.yml:ro" codepipeline-ssm-worker
# cfn/worker-fargate.yml runs it with a read-only root file system and the configuration in
# the CODEPIPELINE_SSM_WORKER_CONFIG environment variable.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY worker ./worker
# A wheel of the project only; its dependencies are resolved in the final stage.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# STATE_DIRECTORY: the worker's state_dir unless its configuration names one (journal, heartbeat:
# `health` needs it).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATE_DIRECTORY=/var/lib/codepipeline-ssm-worker
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 worker \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin worker \
    && install -d -o worker -g worker -m 0750 /var/lib/codepipeline-ssm-worker /etc/codepipeline-ssm-worker
# Declared so Fargate's task-scoped volumes start with the image's ownership and modes (the
# worker's for state and config, 1777 for /tmp) instead of root's 0755.
VOLUME ["/var/lib/codepipeline-ssm-worker", "/etc/codepipeline-ssm-worker", "/tmp"]
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["codepipeline-ssm-worker", "health", "--config", "/etc/codepipeline-ssm-worker/config.yml"]
ENTRYPOINT ["codepipeline-ssm-worker"]
CMD ["run", "--config", "/etc/codepipeline-ssm-worker/config.yml"]
