"""Lab 06's seeded defects in the reference stack, each graded by the one check meant for it: it fails, its
hint naming the fix. Each costs one stack."""

import re

from seeded import Defect

DEFECTS = (
    Defect(
        "fixed-container-name",
        "a fixed container_name on the API stops --scale",
        edits=[("compose.yaml", "    build: ./api\n", "    build: ./api\n    container_name: iris-api\n")],
        caught_by={"RequestsSpreadAcrossReplicas": ["--scale api=3", "container_name"]},
        graded_alone=True,
    ),
    Defect(
        "curl-healthcheck",
        "a curl healthcheck in an image without curl never gets healthy",
        edits=[
            (
                "compose.yaml",
                "      # The image's own check (python + urllib), polled more often so `up --wait` returns sooner.\n",
                '      test: ["CMD", "curl", "-f", "http://127.0.0.1:8000/health"]\n',
            )
        ],
        caught_by={"StackBecomesHealthy": ["failed while starting", "unhealthy", "healthcheck"]},
        graded_alone=True,
    ),
    Defect(
        "setting-in-image-env",
        "a setting baked into the image with ENV",
        edits=[("api/Dockerfile", "USER 10001:10001\n", "ENV CACHE_TTL_S=300\nUSER 10001:10001\n")],
        caught_by={"ConfigFromEnvFile": ["sets CACHE_TTL_S=300 itself", "Remove ENV CACHE_TTL_S"]},
        graded_alone=True,
    ),
    Defect(
        "setting-in-compose-file",
        "a setting written into the Compose file overrides the env file",
        edits=[
            ("compose.yaml", "    env_file: .env\n", "    env_file: .env\n    environment:\n      CACHE_TTL_S: '300'\n")
        ],
        caught_by={"ConfigFromEnvFile": ["service reports cache_ttl_s=300", "environment:"]},
        graded_alone=True,
    ),
    Defect(
        "redis-on-frontend",
        "Redis on the frontend network too",
        edits=[("compose.yaml", "    networks: [backend]\n", "    networks: [backend, frontend]\n")],
        caught_by={"InternalServiceIsolated": ["not internal", "internal: true"]},
        graded_alone=True,
    ),
    Defect(
        "cache-data-in-container",
        "the cache keeps its data in the container",
        edits=[("compose.yaml", "    volumes:\n      - cache-data:/data\n", "")],
        caught_by={"DataSurvivesRestart": ["after `docker compose down, then up` the cache was empty", "named volume"]},
        graded_alone=True,
    ),
    Defect(
        "starts-before-redis-healthy",
        "the API starts as soon as Redis' container starts",
        edits=[
            (
                "compose.yaml",
                re.compile(r"    depends_on:\n      cache:\n        condition: service_healthy\n"),
                "    depends_on: [cache]\n",
            )
        ],
        caught_by={"StartsAfterDependencyHealthy": ["BEFORE 'cache' was healthy", "condition: service_healthy"]},
        graded_alone=True,
    ),
)
