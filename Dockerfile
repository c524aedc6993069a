# One image runs any RustChain process: `rustchain serve planner`, `rustchain events relay --store
# executor`, `rustchain events auth-callout`, ... (k8s/ gives each its arguments).
# Not built on the development machine (it has no Docker daemon); see docs/kubernetes.md.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RUSTCHAIN_HOME=/var/lib/rustchain

# libpq: psycopg (the PostgreSQL event stores) is the pure-Python build, which loads it at run time.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libpq5 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 rustchain \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/rustchain --no-create-home \
        --shell /usr/sbin/nologin rustchain \
    && install --directory --owner rustchain --group rustchain /var/lib/rustchain

WORKDIR /src
# The pinned dependencies first, so that a change to the code reuses this layer.
COPY requirements.lock ./
RUN pip install --requirement requirements.lock
# setuptools is pinned in the lock: build with it rather than fetch another.
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-deps --no-build-isolation . && rm -rf /src/build

USER 10001:10001
WORKDIR /var/lib/rustchain
ENTRYPOINT ["rustchain"]
CMD ["--help"]
