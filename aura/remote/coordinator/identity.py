"""Worker identity: the first hello of a name (with the shared token) enrolls it and is
given a per-worker key; every later hello of that name must prove the key. The store keeps
only the key's SHA-256; a short prefix of it is the worker's fingerprint.

A revoked name is refused for good, unless the admin revoked it ``--re-enroll`` (a
reinstalled host): then the next hello of that name enrolls afresh with a new key, and the
old key is refused from then on.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

from aura.errors import RpcError
from aura.recorder import utc_now
from aura.rpc_codec import IDENTITY_REFUSED, NOT_FOUND
from aura.store import Store

log = logging.getLogger("aura.coordinator")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def fingerprint(hashed: str | None) -> str | None:
    return f"sha256:{hashed[:16]}" if hashed else None


class Identities:
    def __init__(self, store: Store) -> None:
        self.store = store

    def prove(self, name: str, key: Any, remote: str) -> tuple[str, str | None]:
        """The fingerprint of the worker saying hello as ``name`` with ``key``, and a new
        key when this hello enrolled it; IDENTITY_REFUSED (logged) when it is not that
        worker."""
        record = self.store.worker_identity(name)
        if record is None or record["re_enroll"]:
            return self._enroll(name, remote)
        if record["revoked_at"]:
            raise self._refuse(name, remote, f"worker {name} was revoked at "
                               f"{record['revoked_at']}; an admin can let a reinstalled "
                               f"host enroll again with `aura workers revoke {name} "
                               "--re-enroll`")
        if not isinstance(key, str) or not key:
            raise self._refuse(name, remote, f"worker {name} is enrolled with another key "
                               "and this hello proves none (a second host with the same "
                               "name, or a reinstalled one: see `aura workers revoke "
                               "--re-enroll`)")
        if not hmac.compare_digest(key_hash(key), str(record["key_hash"])):
            raise self._refuse(name, remote, f"worker {name}'s key does not match the one "
                               "it enrolled with")
        return str(fingerprint(record["key_hash"])), None

    def _enroll(self, name: str, remote: str) -> tuple[str, str]:
        key = secrets.token_urlsafe(32)
        hashed = key_hash(key)
        self.store.put_worker_identity({"name": name, "key_hash": hashed,
                                        "enrolled_at": utc_now(), "revoked_at": None,
                                        "re_enroll": False})
        log.info("worker %s enrolled from %s (identity %s)", name, remote,
                 fingerprint(hashed))
        return str(fingerprint(hashed)), key

    @staticmethod
    def _refuse(name: str, remote: str, why: str) -> RpcError:
        log.warning("refused worker.hello as %s from %s: %s", name, remote, why)
        return RpcError(IDENTITY_REFUSED, why)

    def revoke(self, name: str, *, re_enroll: bool) -> dict[str, Any]:
        record = self.store.worker_identity(name)
        if record is None:
            raise RpcError(NOT_FOUND, f"no enrolled worker named {name!r}")
        record.update(revoked_at=record["revoked_at"] or utc_now(), re_enroll=re_enroll,
                      key_hash=None if re_enroll else record["key_hash"])
        self.store.put_worker_identity(record)
        log.warning("worker %s revoked%s", name,
                    "; its next hello enrolls it afresh" if re_enroll else " for good")
        return record

    def fingerprints(self) -> dict[str, tuple[str | None, bool]]:
        """Each enrolled name: its fingerprint, and whether it is revoked."""
        return {r["name"]: (fingerprint(r["key_hash"]), bool(r["revoked_at"]) and
                            not r["re_enroll"])
                for r in self.store.worker_identities()}
