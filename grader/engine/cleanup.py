"""Removing what grading sessions made, found by their label, and BuildKit's build cache records.

Never cancelled by a stopping batch: a cancelled grade still removes what it made.
"""

from __future__ import annotations

import docker.errors

from grader.engine.client import KEPT_LABEL, LABEL, Connection, quietly


class Cleanup(Connection):
    """What grading sessions left, found by their label and removed; the build cache's records."""

    def session_images(self) -> list[str]:
        return [img.id for img in self.client.images.list(all=True, filters={"label": f"{LABEL}={self.session}"})]

    def remove_session(self) -> dict[str, int]:
        """Remove what this session created; returns how many objects of each kind it found."""
        return self._remove(f"{LABEL}={self.session}")

    def remove_all(self) -> dict[str, int]:
        """Remove what any grading session created (after a crash, say)."""
        return self._remove(LABEL)

    def _remove(self, label_filter: str) -> dict[str, int]:
        removed = {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
        flt = {"label": label_filter}
        for c in self.client.containers.list(all=True, filters=flt):
            quietly(c.remove, force=True, v=True)
            removed["containers"] += 1
        for n in self.client.networks.list(filters=flt):
            quietly(n.remove)
            removed["networks"] += 1
        for v in self.client.volumes.list(filters=flt):
            quietly(v.remove, force=True)
            removed["volumes"] += 1
        for img in self.client.images.list(all=True, filters=flt):
            # BuildKit keeps its build cache apart from images: removing the image keeps the cache.
            quietly(self.client.images.remove, img.id, force=True)
            removed["images"] += 1
        return removed

    def kept_images(self, lab: str | None = None) -> list[dict]:
        """The images grades kept for the next grade (of `lab`, or of every lab), as `docker image inspect`s."""
        flt = {"label": f"{KEPT_LABEL}={lab}" if lab else KEPT_LABEL}
        return [img.attrs for img in self.client.images.list(all=True, filters=flt)]

    def untag(self, ref: str) -> None:
        """Remove the tag `ref`; the image goes with its last tag."""
        quietly(self.client.images.remove, ref)

    def remove_kept_images(self, lab: str | None = None, keep: str | None = None) -> int:
        """Remove the kept images (of `lab`, or all) but the one tagged `keep`, and that one's other tags.

        Returns how many images were removed."""
        removed = 0
        for image in self.kept_images(lab):
            tags = image.get("RepoTags") or []
            if keep in tags:
                for other in tags:
                    if other != keep:
                        self.untag(other)
                continue
            quietly(self.client.images.remove, image["Id"], force=True)
            removed += 1
        return removed

    def leftovers(self, all_sessions: bool = False) -> dict[str, int]:
        """How many objects of this session (or of any grading session) still exist."""
        flt = {"label": LABEL if all_sessions else f"{LABEL}={self.session}"}
        return {
            "containers": len(self.client.containers.list(all=True, filters=flt)),
            "networks": len(self.client.networks.list(filters=flt)),
            "volumes": len(self.client.volumes.list(filters=flt)),
            "images": len(self.client.images.list(all=True, filters=flt)),
        }

    def build_cache_records(self) -> list[dict]:
        """BuildKit's build cache records (`docker buildx du`): ID, Size, InUse, CreatedAt, LastUsedAt..."""
        # GET /system/df, asked for the build cache alone (the SDK's df() has no type and sizes every image).
        api = self.client.api
        answer = api._result(api._get(api._url("/system/df"), params={"type": "build-cache"}), True)
        return answer.get("BuildCache") or []

    def prune_build_cache_record(self, record_id: str) -> bool:
        """Remove one build cache record (the engine's prune takes one id a call); False if it stays."""
        try:
            answer = self.client.api.prune_builds(filters={"id": record_id})
        except docker.errors.APIError:
            return False
        return record_id in (answer.get("CachesDeleted") or [])
