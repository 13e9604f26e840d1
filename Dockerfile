# diffprompt worker image: CPU torch, non-root, the scheduler worker as the default command.
# Build:  docker build -t diffprompt .
# Run:    docker run --rm -e DIFFPROMPT_DB_URL=postgresql+psycopg://... diffprompt
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DIFFPROMPT_HOME=/data

WORKDIR /app

# CPU-only torch first, from the CPU wheel index, so pip never pulls CUDA packages.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.3,<3"

COPY pyproject.toml README.md ./
COPY src ./src
COPY tau_envs ./tau_envs
RUN pip install .

RUN useradd --create-home --uid 10001 diffprompt \
    && mkdir -p /data \
    && chown 10001:10001 /data
USER 10001:10001
VOLUME ["/data"]

HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["diffprompt", "schedule", "health"]

CMD ["diffprompt", "schedule", "run"]
