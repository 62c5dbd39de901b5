"""A STAND-IN for the Hugging Face hub: a real HTTP server on 127.0.0.1 answering the part
of the hub's API that huggingface_hub calls to pin and download a repo.

The hub cannot be reached from these machines, so `framecast catalog pin` and
`framecast node models pull` are tested against this server (HF_ENDPOINT points at it).
It answers as the hub documents and as huggingface_hub's client code reads it:

- ``GET /api/models/{repo}/revision/{rev}`` → ``{"id", "sha", "siblings": [{"rfilename",
  "size", "blobId", "lfs": {"sha256", "size", "pointerSize"}}]}`` (model_info);
- ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=`` → ``[{"type": "file", "path",
  "size", "oid", "lfs": {"oid", "size", "pointerSize"}}]`` (list_repo_tree, snapshot_download);
- ``POST /api/models/{repo}/paths-info/{rev}`` (form ``paths=…``) → the same items for the
  paths that exist (get_paths_info);
- ``HEAD|GET /{repo}/resolve/{rev}/{path}`` → the bytes with ``X-Repo-Commit``, ``ETag``
  (git blob id, or the sha256 for LFS files, which also get ``X-Linked-Etag`` and
  ``X-Linked-Size``) (hf_hub_download);
- unknown revisions → 404 with ``X-Error-Code: RevisionNotFound``, unknown repos → 401 with
  ``X-Error-Code: RepoNotFound``, unknown files → 404 ``EntryNotFound``.

Files ending in LFS_SUFFIXES are served as LFS files (the hub keeps weights there), the
others as git blobs, so both ways `pin` takes a sha256 are exercised.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin")


@dataclass
class StandinRepo:
    """One repo: its files at one commit, reachable by that commit and by branch names."""

    files: dict[str, bytes]
    commit: str
    branches: tuple[str, ...] = ("main",)
    #: Requests seen, "METHOD path" (what the client asked for).
    seen: list[str] = field(default_factory=list)

    @classmethod
    def from_dir(
        cls, root: Path, commit: str, extra: dict[str, bytes] | None = None
    ) -> StandinRepo:
        files = {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }
        return cls(files={**files, **(extra or {})}, commit=commit)

    def item(self, path: str) -> dict[str, object]:
        data = self.files[path]
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        entry: dict[str, object] = {"type": "file", "path": path, "size": len(data), "oid": blob}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": 134,
            }
        return entry


class _Handler(BaseHTTPRequestHandler):
    repos: dict[str, StandinRepo]

    def log_message(self, *_args: object) -> None:
        return None

    # -------------------------------------------------------------- helpers
    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, head: bool = False
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, value: object) -> None:
        self._send(200, json.dumps(value).encode(), {"Content-Type": "application/json"})

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(
            status,
            body,
            {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"},
        )

    def _repo(self, owner: str, name: str, rev: str) -> StandinRepo | None:
        repo = self.repos.get(f"{owner}/{name}")
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        repo.seen.append(f"{self.command} {self.path}")
        if rev != repo.commit and rev not in repo.branches:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return repo

    # -------------------------------------------------------------- routes
    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def _get(self, head: bool) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
            repo = self._repo(parts[2], parts[3], parts[5])
            if repo is None:
                return
            siblings = []
            for path in sorted(repo.files):
                item = repo.item(path)
                sibling: dict[str, object] = {
                    "rfilename": path,
                    "size": item["size"],
                    "blobId": item["oid"],
                }
                if "lfs" in item:
                    lfs = item["lfs"]
                    assert isinstance(lfs, dict)
                    sibling["lfs"] = {"sha256": lfs["oid"], "size": lfs["size"], "pointerSize": 134}
                siblings.append(sibling)
            self._json({"id": f"{parts[2]}/{parts[3]}", "sha": repo.commit, "siblings": siblings})
            return
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            repo = self._repo(parts[2], parts[3], parts[5])
            if repo is None:
                return
            prefix = "/".join(parts[6:])
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            items = []
            for path in sorted(repo.files):
                if prefix and not path.startswith(prefix + "/"):
                    continue
                rest = path[len(prefix) + 1 :] if prefix else path
                if not recursive and "/" in rest:
                    continue
                items.append(repo.item(path))
            self._json(items)
            return
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = self._repo(parts[0], parts[1], parts[3])
            if repo is None:
                return
            path = "/".join(parts[4:])
            if path not in repo.files:
                self._error(404, "EntryNotFound", f"{path} does not exist")
                return
            item = repo.item(path)
            headers = {"X-Repo-Commit": repo.commit, "Content-Type": "application/octet-stream"}
            if "lfs" in item:
                lfs = item["lfs"]
                assert isinstance(lfs, dict)
                headers["ETag"] = f'"{lfs["oid"]}"'
                headers["X-Linked-Etag"] = f'"{lfs["oid"]}"'
                headers["X-Linked-Size"] = str(item["size"])
            else:
                headers["ETag"] = f'"{item["oid"]}"'
            self._send(200, repo.files[path], headers, head=head)
            return
        self._error(404, "EntryNotFound", f"no route {url.path}")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "paths-info":
            repo = self._repo(parts[2], parts[3], parts[5])
            if repo is None:
                return
            self._json([repo.item(p) for p in form.get("paths", []) if p in repo.files])
            return
        self._error(404, "EntryNotFound", f"no route {url.path}")


@contextmanager
def serve_hub(repos: dict[str, StandinRepo]) -> Iterator[str]:
    """Serve `repos` on 127.0.0.1; yields the endpoint URL (for HF_ENDPOINT)."""
    handler = type("Handler", (_Handler,), {"repos": repos})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
