"""A stand-in for MinIO's `mc`, for tests/deploy/test_minio_init.py.

No `mc` binary installs offline here, so the init script (deploy/k8s/minio/konspekt-init.sh) runs
against this: the bucket and lifecycle commands go to a real S3 server (the embedded SeaweedFS,
through the minio client, as FAKE_MC_ENDPOINT / FAKE_MC_ACCESS_KEY / FAKE_MC_SECRET_KEY say); the
admin commands, which only MinIO has, are checked and kept in a JSON file (FAKE_MC_STATE). It
accepts only the arguments the real `mc` (RELEASE.2025-08-13) takes for these commands, and fails
like it does where a re-run would (attaching a policy that is attached already). Any other
command fails, so the script cannot come to rely on one this fake does not know.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.lifecycleconfig import AbortIncompleteMultipartUpload, Expiration, LifecycleConfig, Rule

RULE_KEYS = {"ID", "Status", "Filter", "Expiration", "AbortIncompleteMultipartUpload"}


def fail(message: str, code: int = 1) -> None:
    print(f"mc: <ERROR> {message}", file=sys.stderr)
    raise SystemExit(code)


def load_state() -> dict[str, Any]:
    path = Path(os.environ["FAKE_MC_STATE"])
    if path.exists():
        state: dict[str, Any] = json.loads(path.read_text())
        return state
    return {"aliases": {}, "policies": {}, "users": {}, "calls": []}


def save_state(state: dict[str, Any]) -> None:
    Path(os.environ["FAKE_MC_STATE"]).write_text(json.dumps(state, indent=1))


def s3() -> Minio:
    return Minio(
        os.environ["FAKE_MC_ENDPOINT"],
        access_key=os.environ["FAKE_MC_ACCESS_KEY"],
        secret_key=os.environ["FAKE_MC_SECRET_KEY"],
        secure=False,
    )


def target(state: dict[str, Any], arg: str) -> tuple[str, str]:
    alias, _, bucket = arg.partition("/")
    if alias not in state["aliases"]:
        fail(f"no alias {alias!r} (run `mc alias set` first)")
    return alias, bucket


def lifecycle_from_json(text: str) -> LifecycleConfig:
    """mc ilm rule import's input: S3's lifecycle configuration as JSON (minio-go's field names)."""
    doc = json.loads(text)
    if set(doc) != {"Rules"} or not doc["Rules"]:
        fail(f"not a lifecycle configuration: {text}")
    rules = []
    for item in doc["Rules"]:
        unknown = set(item) - RULE_KEYS
        if unknown or item.get("Status") != "Enabled" or not item.get("ID"):
            fail(f"bad rule {item}")
        abort = item.get("AbortIncompleteMultipartUpload")
        rules.append(
            Rule(
                ENABLED,
                rule_filter=Filter(prefix=item["Filter"]["Prefix"]),
                rule_id=item["ID"],
                expiration=Expiration(days=int(item["Expiration"]["Days"])),
                abort_incomplete_multipart_upload=(
                    AbortIncompleteMultipartUpload(int(abort["DaysAfterInitiation"])) if abort else None
                ),
            )
        )
    return LifecycleConfig(rules)


def main(argv: list[str]) -> None:
    state = load_state()
    state["calls"].append(argv)
    save_state(state)
    match argv:
        case ["alias", "set", alias, url, user, password]:
            if not url.startswith(("http://", "https://")) or not user or not password:
                fail(f"alias set {alias}: bad URL or credentials")
            state["aliases"][alias] = {"url": url, "user": user}
        case ["mb", "--ignore-existing", where]:
            _, bucket = target(state, where)
            if not s3().bucket_exists(bucket):
                s3().make_bucket(bucket)
            print(f"Bucket created successfully `{where}`.")
        case ["ilm", "rule", "import", where]:
            _, bucket = target(state, where)
            s3().set_bucket_lifecycle(bucket, lifecycle_from_json(sys.stdin.read()))
            print(f"Lifecycle configuration imported successfully to `{where}`.")
        case ["ilm", "rule", "ls", where]:
            _, bucket = target(state, where)
            config = s3().get_bucket_lifecycle(bucket)
            for rule in config.rules if config else []:
                days = rule.expiration.days if rule.expiration else None
                prefix = rule.rule_filter.prefix if rule.rule_filter else ""
                print(f"{rule.rule_id}  {rule.status}  {prefix}  {days} day(s)")
        case ["admin", "policy", "create", where, name, path]:
            target(state, where)
            state["policies"][name] = json.loads(Path(path).read_text())
        case ["admin", "user", "add", where, access_key, secret_key]:
            target(state, where)
            if len(access_key) < 3 or len(secret_key) < 8:
                fail("access key needs 3+ and secret key 8+ characters")
            user = state["users"].setdefault(access_key, {"policies": []})
            user["secret"] = secret_key
        case ["admin", "policy", "attach", where, name, "--user", access_key]:
            target(state, where)
            if name not in state["policies"] or access_key not in state["users"]:
                fail(f"no policy {name} or no user {access_key}")
            policies = state["users"][access_key]["policies"]
            if name in policies:
                fail(
                    "Unable to make user/group policy association. "
                    "The specified policy change is already in effect."
                )
            policies.append(name)
        case ["admin", "user", "info", where, access_key]:
            target(state, where)
            if access_key not in state["users"]:
                fail(f"no user {access_key}")
            names = ",".join(state["users"][access_key]["policies"])
            print(f"AccessKey: {access_key}\nStatus: enabled\nPolicyName: {names}\nMemberOf: []")
        case _:
            fail(f"the fake mc does not know {argv}", 3)
    save_state(state)


if __name__ == "__main__":
    main(sys.argv[1:])
