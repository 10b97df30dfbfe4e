"""Redis emergency actions of seed 4.1 ("Clear Cache"), guarded.

The seed's ``redis-cli DEL "cache:emissions:*"`` does not do what it says (DEL takes key names, not
patterns), and the usual fix, ``KEYS pattern | xargs DEL``, blocks Redis for the whole keyspace
walk. :class:`ClearCachePattern` counts with ``SCAN`` in the plan and deletes with ``SCAN`` +
``UNLINK`` in batches, so Redis keeps serving while it runs. A clear whose match count reaches
the database's size (``DBSIZE``) is destructive, whatever the pattern looks like (``*``, but also
``[^]*``): it needs the incident ID typed, like :class:`FlushDB`.
"""

from __future__ import annotations

import time
from typing import Any

from vcci_nb.actions._connect import redis_connect, redis_url
from vcci_nb.actions._model import Action, Plan, Verification, whole_number
from vcci_nb.config import Profile
from vcci_nb.errors import ActionRefused
from vcci_nb.redact import redact_url


def matches_everything(pattern: str) -> bool:
    """Whether a glob pattern matches (nearly) every key: only wildcards, at least one ``*`` (``*``, ``?*``)."""
    return "*" in pattern and set(pattern) <= {"*", "?"}


class _RedisAction(Action):
    def __init__(self, *, url: str | None = None, profile: Profile | str | None = None) -> None:
        self._url_arg = url
        self._profile = profile
        self._client: Any = None
        self._url: str | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._url = redis_url(self._url_arg, self._profile)
            self._client = redis_connect(self._url)
        return self._client

    def db(self) -> int:
        return int(self.client.connection_pool.connection_kwargs.get("db", 0) or 0)

    def identity(self) -> str:
        try:
            who = self.client.execute_command("ACL", "WHOAMI")
        except Exception:  # a user without ACL WHOAMI: the name it logged in with
            who = self.client.connection_pool.connection_kwargs.get("username") or "default"
        return f"redis:{who}"

    def where(self) -> str:
        self.client  # noqa: B018 - resolve the URL
        kw = self.client.connection_pool.connection_kwargs
        return f"redis/{kw.get('host', '?')}:{kw.get('port', '?')}/db{self.db()}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __str__(self) -> str:
        return redact_url(self._url or "redis")


class ClearCachePattern(_RedisAction):
    """Delete the keys matching a pattern with SCAN + UNLINK in batches (never KEYS).

    Args:
        pattern: a Redis glob (``cache:emissions:*``); ``*`` alone is destructive.
        batch: keys per SCAN page and per UNLINK call.
        sample: how many matching key names to show in the plan.
    """

    name = "redis.clear_pattern"

    def __init__(
        self,
        pattern: str,
        *,
        batch: int = 500,
        sample: int = 10,
        url: str | None = None,
        profile: Profile | str | None = None,
    ) -> None:
        super().__init__(url=url, profile=profile)
        self.pattern = pattern
        self.batch: Any = batch  # converted by preflight
        self.sample: Any = sample

    @property
    def target(self) -> str:
        return f"{self.where()}/keys/{self.pattern}"

    def parameters(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "batch": self.batch}

    def preflight(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern.strip():
            raise ActionRefused("give a key pattern such as 'cache:emissions:*'; an empty pattern matches nothing")
        self.batch = whole_number(self.batch, "batch", minimum=1, maximum=10_000)
        self.sample = whole_number(self.sample, "sample", minimum=0, maximum=1000)

    def _count(self) -> tuple[int, list[str]]:
        n = 0
        sample: list[str] = []
        for key in self.client.scan_iter(match=self.pattern, count=self.batch):
            n += 1
            if len(sample) < self.sample:
                sample.append(key)
        return n, sample

    def plan(self) -> Plan:
        n, sample = self._count()
        total = int(self.client.dbsize())
        # Judged by effect, not by the pattern's characters: '[^]*' or '*[^x]*' match every key too.
        everything = matches_everything(self.pattern) or (n > 0 and n >= total)
        warnings = ["the application refills these keys on the next reads: expect a burst of cache misses"]
        if everything:
            warnings.insert(
                0,
                f"{self.pattern!r} matches every key in the database ({n} of {total} keys): sessions, locks and "
                "queues kept here go too; type the incident ID to confirm",
            )
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"UNLINK {n} key(s) matching {self.pattern!r} (of {total} in db{self.db()})",
            changes=[{"key": k} for k in sample],
            warnings=warnings,
            destructive=everything,
            noop=n == 0,
            details={"matched": n, "dbsize": total},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        deleted = 0
        batches = 0
        pending: list[str] = []
        for key in self.client.scan_iter(match=self.pattern, count=self.batch):
            pending.append(key)
            if len(pending) >= self.batch:
                deleted += int(self.client.unlink(*pending))
                batches += 1
                pending = []
        if pending:
            deleted += int(self.client.unlink(*pending))
            batches += 1
        return {"unlinked": deleted, "batches": batches}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        left, sample = self._count()
        planned = int(plan.details["matched"])
        return Verification().add(
            "keys gone",
            left == 0,
            f"{result['unlinked']} unlinked of {planned} planned; {left} match now"
            + (f" (e.g. {sample[:3]}; the application may be refilling them)" if left else ""),
        )


class FlushDB(_RedisAction):
    """``FLUSHDB ASYNC`` of the connected database: always destructive, always needs the typed ID."""

    name = "redis.flushdb"

    def __init__(self, *, url: str | None = None, profile: Profile | str | None = None) -> None:
        super().__init__(url=url, profile=profile)

    @property
    def target(self) -> str:
        return self.where()

    def parameters(self) -> dict[str, Any]:
        return {}

    def plan(self) -> Plan:
        total = int(self.client.dbsize())
        info = self.client.info("memory")
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"FLUSHDB db{self.db()}: delete all {total} keys",
            changes=[{"db": self.db(), "keys": total, "used_memory": info.get("used_memory_human")}],
            warnings=[
                "deletes every key in this database, not only the cache: sessions, locks and queues kept "
                "here go too. Prefer clearing a pattern (ClearCachePattern('cache:emissions:*'))."
            ],
            destructive=True,
            noop=total == 0,
            details={"dbsize": total},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        self.client.flushdb(asynchronous=True)
        return {"flushed_db": self.db(), "keys_before": plan.details["dbsize"]}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        size = int(self.client.dbsize())
        deadline = time.monotonic() + 2.0
        while size and time.monotonic() < deadline:
            time.sleep(0.1)
            size = int(self.client.dbsize())
        return Verification().add(
            "database empty",
            size == 0,
            f"DBSIZE is {size}" + (" (the application may be writing again)" if size else ""),
        )
