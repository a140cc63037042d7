"""Chapter 9: a Compose file rewritten as a swarm stack file, with a note for each change and why a cluster
needs it.

    stack, notes = stack_from_compose(compose, lab_dir, images={"api": "workbook/ch09-api:1"}, overrides=...)
    Path("stack.yaml").write_text(to_yaml(stack))   # workbook.plain_yaml; then `docker stack deploy -c`
"""

from __future__ import annotations

import copy
from pathlib import Path


def deep_merge(base: dict, extra: dict) -> dict:
    """A copy of `base` with `extra` merged in (nested dicts merged, everything else replaced)."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def stack_from_compose(
    compose: dict,
    base_dir: Path,
    *,
    images: dict[str, str],
    overrides: dict[str, dict],
    attachable: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
) -> tuple[dict, list[str]]:
    """A swarm stack file made from a Compose file, and a note for each change and why it was needed.

    - `build:` is replaced by `images[service]`: swarm never builds, every node must be able to get the image;
    - `depends_on`, `container_name`, `restart` are dropped (swarm ignores them: services start in any order
      and restart by `deploy.restart_policy`);
    - `ports` are dropped: nothing is published here (the client runs on the stack's network);
    - a bind-mounted file becomes a swarm *config* (stored in the cluster, delivered to whichever node runs
      the task: a bind mount would need the file on every node);
    - relative `env_file` paths become absolute (the stack file is written elsewhere);
    - networks become `overlay` (spanning nodes), `attachable` where a plain container must join them;
    - `overrides[service]` is merged into each service (deploy settings, shorter healthcheck intervals).
    """
    notes: list[str] = []
    stack: dict = {"services": {}, "networks": {}, "volumes": copy.deepcopy(compose.get("volumes") or {})}
    configs: dict = {}
    for name, service in compose["services"].items():
        svc = copy.deepcopy(service)
        if "build" in svc:
            svc.pop("build")
            svc["image"] = images[name]
            notes.append(f"{name}: build: dropped, image {images[name]} instead (swarm runs images, it never builds)")
        for key, why in (
            ("depends_on", "no start order in swarm: services must retry until what they need answers"),
            ("container_name", "a service has many containers; swarm names them"),
            ("restart", "swarm restarts tasks by deploy.restart_policy"),
        ):
            if key in svc:
                svc.pop(key)
                notes.append(f"{name}: {key}: dropped ({why})")
        if "ports" in svc:
            notes.append(
                f"{name}: ports {svc.pop('ports')} dropped (nothing is published: "
                "requests come from a container on the stack's network)"
            )
        volumes = []
        for volume in svc.get("volumes", []):
            source, _, rest = volume.partition(":") if isinstance(volume, str) else ("", "", "")
            target = rest.split(":")[0]
            if source.startswith((".", "/")) and (base_dir / source).is_file():
                config = f"{name}-{Path(source).stem}"
                configs[config] = {"file": str((base_dir / source).resolve())}
                svc.setdefault("configs", []).append({"source": config, "target": target})
                notes.append(f"{name}: bind mount {source} -> config {config!r} (the cluster delivers it to any node)")
            else:
                volumes.append(volume)
        if volumes:
            svc["volumes"] = volumes
        else:
            svc.pop("volumes", None)
        if "env_file" in svc:
            files = svc["env_file"] if isinstance(svc["env_file"], list) else [svc["env_file"]]
            svc["env_file"] = [str((base_dir / f).resolve()) for f in files]
        if labels:
            svc["labels"] = {**svc.get("labels", {}), **labels}
        stack["services"][name] = deep_merge(svc, overrides.get(name, {}))
    for net, spec in (compose.get("networks") or {}).items():
        spec = dict(spec or {})
        spec["driver"] = "overlay"
        if net in attachable:
            spec["attachable"] = True
        if labels:
            spec["labels"] = dict(labels)
        stack["networks"][net] = spec
    notes.append(f"networks {sorted(stack['networks'])}: driver overlay (one network across every node of the swarm)")
    if labels:
        stack["volumes"] = {v: {**(spec or {}), "labels": dict(labels)} for v, spec in stack["volumes"].items()}
    if configs:
        stack["configs"] = configs
    return stack, notes
