"""A loopback, Hub-compatible HTTP server, so push/pull tests run the REAL huggingface_hub client offline.

No maintained package serves the write side of the Hub API on loopback, so this module implements
the part of it that ``huggingface_hub`` 2.x (with ``HF_HUB_DISABLE_XET=1``) and ``transformers``
``from_pretrained`` use.  Repositories live in memory (commits, branches) with file contents stored
by sha256 in a temporary directory.

Endpoints (``{type}`` is ``models`` / ``datasets`` / ``spaces``; repo ids are ``ns/name`` or ``name``):

    POST   /api/repos/create                          create a repo (409 if it exists)
    DELETE /api/repos/delete                          delete a repo
    GET    /api/whoami-v2                             the token's user
    POST   /api/validate-yaml                         README front matter must be a YAML mapping
    POST   /api/{type}/{repo}/preupload/{rev}         upload mode per file: "lfs" or "regular"
    POST   /{repo}.git/info/lfs/objects/batch         LFS batch API (basic transfer)
    PUT    /_lfs/{sha256}                             LFS object upload (checks sha256 and size)
    POST   /api/{type}/{repo}/commit/{rev}            ndjson commit: file / lfsFile / deletedFile / deletedFolder
    GET    /api/{type}/{repo}[/revision/{rev}]        repo info (sha, siblings, cardData from README.md)
    GET    /api/{type}/{repo}/tree/{rev}[/{path}]     tree listing (recursive=true/false)
    POST   /api/{type}/{repo}/paths-info/{rev}        info for the given paths (form-encoded)
    GET    /api/{type}/{repo}/refs                    branches
    HEAD / GET  /{repo}/resolve/{rev}/{path}          file download with ETag, X-Repo-Commit,
                                                      Content-Length (and X-Linked-* for LFS files);
                                                      Range requests answered with 206

Errors carry the Hub's ``X-Error-Code`` header (RepoNotFound, RevisionNotFound, EntryNotFound), and a
404 on a file names the commit in ``X-Repo-Commit``, so the client raises the right exception and
transformers treats optional files (``adapter_config.json``, ...) as absent.  Writes need
``Authorization: Bearer <token>``; private repos are visible only with that token.

Run standalone for manual experiments: ``python tests/hub_server.py`` prints its URL.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

DEFAULT_TOKEN = "hf_loopback_test_token"
DEFAULT_USER = "tester"
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files above 10 MB in LFS whatever their type
GITATTRIBUTES = """*.7z filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
"""
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
REPO_ACTIONS = {"preupload", "commit", "tree", "paths-info", "revision", "refs"}
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


# ---------------------------------------------------------------------------------------------- storage
@dataclass(frozen=True)
class FileEntry:
    """One file of a commit: its content hash, size and whether it is stored in LFS."""

    sha256: str
    size: int
    git_oid: str  # sha1 of the git blob (of the LFS pointer for LFS files)
    lfs: bool
    pointer_size: int = 0


@dataclass
class Commit:
    oid: str
    title: str
    date: str
    files: dict[str, FileEntry]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        return self.commits.get(revision) if COMMIT_RE.match(revision) else None


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class HubError(Exception):
    """An HTTP error answer, with the Hub's error headers."""

    def __init__(self, status: int, message: str, code: str | None = None, repo_commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.repo_commit = status, message, code, repo_commit


class HubStore:
    """Thread-safe in-memory repos; contents on disk under ``root/blobs/<sha256>``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blob_dir = self.root / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.RLock()

    # -- blobs
    def put_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.blob_dir / sha
        if not path.exists():
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return sha

    def has_blob(self, sha256: str) -> bool:
        return (self.blob_dir / sha256).exists()

    def blob_path(self, sha256: str) -> Path:
        return self.blob_dir / sha256

    # -- repos
    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def create(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo", None)
            repo = Repo(repo_type, repo_id, private, _now())
            self.repos[(repo_type, repo_id)] = repo
            self._commit(repo, "main", "initial commit", {".gitattributes": self._entry(GITATTRIBUTES.encode(), "regular")}, base={})
            return repo

    def _entry(self, data: bytes, mode: str) -> FileEntry:
        sha = self.put_blob(data)
        if mode == "lfs":
            pointer = _lfs_pointer(sha, len(data))
            return FileEntry(sha, len(data), _git_blob_oid(pointer), True, len(pointer))
        return FileEntry(sha, len(data), _git_blob_oid(data), False)

    def lfs_entry(self, sha256: str, size: int) -> FileEntry:
        pointer = _lfs_pointer(sha256, size)
        return FileEntry(sha256, size, _git_blob_oid(pointer), True, len(pointer))

    def _commit(self, repo: Repo, branch: str, title: str, changes: dict[str, FileEntry | None], base: dict) -> Commit:
        files = dict(base)
        for path, entry in changes.items():
            if entry is None:
                files.pop(path, None)
            else:
                files[path] = entry
        parent = repo.branches.get(branch, "")
        oid = hashlib.sha1(f"{repo.repo_id}\n{parent}\n{title}\n{time.time_ns()}\n{sorted(files.items())}".encode()).hexdigest()
        commit = Commit(oid, title, _now(), files)
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit

    def commit(self, repo: Repo, branch: str, title: str, changes: dict[str, FileEntry | None], deleted_folders: list[str], parent: str | None) -> Commit:
        with self.lock:
            head = repo.resolve(branch)
            if head is None:
                raise HubError(404, f"Revision Not Found: {branch}", "RevisionNotFound")
            if parent is not None and parent != head.oid:
                raise HubError(412, f"A commit has happened since. Please refresh and try again (parent {parent}).")
            files = dict(head.files)
            for folder in deleted_folders:
                prefix = folder.rstrip("/") + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    del files[path]
            return self._commit(repo, branch, title, changes, base=files)

    def upload_mode(self, repo: Repo, path: str, size: int, sample: bytes) -> str:
        """LFS when .gitattributes says so, when the sample looks binary, or above 10 MB (as the Hub does)."""
        head = repo.resolve("main")
        patterns = []
        if head is not None and ".gitattributes" in head.files:
            text = self.blob_path(head.files[".gitattributes"].sha256).read_text(encoding="utf-8", errors="replace")
            patterns = [line.split()[0] for line in text.splitlines() if "filter=lfs" in line and line.split()]
        name = path.rsplit("/", 1)[-1]
        if any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in patterns):
            return "lfs"
        if size >= LFS_THRESHOLD or b"\0" in sample:
            return "lfs"
        return "regular"


# ---------------------------------------------------------------------------------------------- HTTP
class HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: httpx pools connections
    server: "LoopbackHubServer"

    # -- plumbing
    def log_message(self, format: str, *args) -> None:  # quiet; requests are recorded instead
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str = "application/json", head: bool = False) -> None:
        headers = dict(headers or {})
        length = headers.pop("Content-Length", len(body))  # HEAD announces the size it does not send
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)
        self._status = status

    def _json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, err: HubError, head: bool = False) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        if err.repo_commit:
            headers["X-Repo-Commit"] = err.repo_commit
        self._send(err.status, json.dumps({"error": err.message}).encode(), headers, head=head)

    def _token_ok(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth == f"Bearer {self.server.token}"

    def _require_write(self) -> None:
        if not self._token_ok():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.server.store.get(repo_type, repo_id)
        if repo is None or (repo.private and not self._token_ok()):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _revision(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _dispatch(self, method: str) -> None:
        self._status = 0
        split = urlsplit(self.path)
        parts = [unquote(p) for p in split.path.split("/")[1:]]
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        head = method == "HEAD"
        try:
            self._route(method, parts, query, head)
        except HubError as err:
            self._error(err, head=head)
        except Exception as exc:  # a bug in this server: answer 500 and keep serving
            self.server.errors.append(f"{method} {self.path}: {exc!r}")
            self._error(HubError(500, f"loopback hub internal error: {exc!r}"), head=head)
        finally:
            self.server.requests.append((method, split.path, self._status))

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- routing
    @staticmethod
    def _split_repo(parts: list[str]) -> tuple[str, list[str]]:
        """``ns/name/rest...`` or ``name/rest...`` (legacy ids without namespace)."""
        actions = REPO_ACTIONS | {"resolve"}
        two_segments = len(parts) == 2 or (len(parts) >= 3 and parts[2] in actions)
        if not two_segments and len(parts) >= 2 and parts[1] in actions:
            return parts[0], parts[1:]
        return "/".join(parts[:2]), parts[2:]

    def _route(self, method: str, parts: list[str], query: dict, head: bool) -> None:
        if parts[:1] == ["api"]:
            self._route_api(method, parts[1:], query)
            return
        if parts[:1] == ["_lfs"] and method == "PUT" and len(parts) == 2:
            self._lfs_put(parts[1])
            return
        repo_type = "model"
        if parts and parts[0] in ("datasets", "spaces"):
            repo_type, parts = REPO_TYPES[parts[0]], parts[1:]
        if len(parts) >= 2 and parts[-4:-1] == ["info", "lfs", "objects"] and parts[-1] == "batch" and method == "POST":
            repo_id = "/".join(parts[:-4])
            if repo_id.endswith(".git"):
                self._lfs_batch(repo_type, repo_id[: -len(".git")])
                return
        repo_id, rest = self._split_repo(parts)
        if rest[:1] == ["resolve"] and len(rest) >= 3 and method in ("GET", "HEAD"):
            self._resolve(repo_type, repo_id, rest[1], "/".join(rest[2:]), head)
            return
        raise HubError(404, f"loopback hub: no route for {method} /{'/'.join(parts)}")

    def _route_api(self, method: str, parts: list[str], query: dict) -> None:
        if parts == ["repos", "create"] and method == "POST":
            return self._create_repo()
        if parts == ["repos", "delete"] and method == "DELETE":
            return self._delete_repo()
        if parts == ["whoami-v2"] and method == "GET":
            if not self._token_ok():
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._json({"type": "user", "name": self.server.user, "orgs": [], "auth": {"accessToken": {"role": "write"}}})
        if parts == ["validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if parts and parts[0] in REPO_TYPES:
            repo_type = REPO_TYPES[parts[0]]
            repo_id, rest = self._split_repo(parts[1:])
            action = rest[0] if rest else None
            if action is None and method == "GET":
                return self._repo_info(repo_type, repo_id, "main", query)
            if action == "revision" and len(rest) == 2 and method == "GET":
                return self._repo_info(repo_type, repo_id, rest[1], query)
            if action == "preupload" and len(rest) == 2 and method == "POST":
                return self._preupload(repo_type, repo_id, rest[1])
            if action == "commit" and len(rest) == 2 and method == "POST":
                return self._commit(repo_type, repo_id, rest[1])
            if action == "tree" and len(rest) >= 2 and method == "GET":
                return self._tree(repo_type, repo_id, rest[1], "/".join(rest[2:]), query)
            if action == "paths-info" and len(rest) == 2 and method == "POST":
                return self._paths_info(repo_type, repo_id, rest[1])
            if action == "refs" and len(rest) == 1 and method == "GET":
                repo = self._repo(repo_type, repo_id)
                return self._json({"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in repo.branches.items()], "converts": [], "tags": []})
        raise HubError(404, f"loopback hub: no route for {method} /api/{'/'.join(parts)}")

    # -- repos
    def _create_repo(self) -> None:
        self._require_write()
        payload = json.loads(self._body() or b"{}")
        name, org = payload.get("name"), payload.get("organization")
        if not name:
            raise HubError(400, "repo name is required")
        repo_type = payload.get("type") or "model"
        repo_id = f"{org}/{name}" if org else f"{self.server.user}/{name}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        url = f"{self.server.url}/{URL_PREFIX[repo_type]}{repo_id}"
        try:
            self.server.store.create(repo_type, repo_id, private)
        except HubError as err:
            self._json({"error": err.message, "url": url}, status=409)
            return
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        self._require_write()
        payload = json.loads(self._body() or b"{}")
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        with self.server.store.lock:
            if self.server.store.repos.pop((repo_type, repo_id), None) is None:
                raise HubError(404, "Repository not found", "RepoNotFound")
        self._json({})

    def _validate_yaml(self) -> None:
        payload = json.loads(self._body() or b"{}")
        content = payload.get("content", "")
        errors, warnings = [], []
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
        if match is None:
            warnings.append({"message": "Empty or missing yaml metadata in repo card"})
        else:
            try:
                meta = yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                meta, errors = None, [{"message": f"Invalid YAML: {exc}"}]
            if not errors and not isinstance(meta, dict):
                errors.append({"message": "YAML metadata must be a mapping"})
            elif not errors and "model-index" in meta and not isinstance(meta["model-index"], list):
                errors.append({"message": '"model-index" must be an array'})
        self._json({"errors": errors, "warnings": warnings}, status=400 if errors else 200)

    def _card_data(self, repo: Repo, commit: Commit) -> dict | None:
        entry = commit.files.get("README.md")
        if entry is None:
            return None
        text = self.server.store.blob_path(entry.sha256).read_text(encoding="utf-8", errors="replace")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
        if match is None:
            return None
        try:
            meta = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            return None
        return meta if isinstance(meta, dict) else None

    def _repo_info(self, repo_type: str, repo_id: str, revision: str, query: dict) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self._revision(repo, revision)
        with_blobs = query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling: dict = {"rfilename": path}
            if with_blobs:
                sibling.update(size=entry.size, blobId=entry.git_oid)
                if entry.lfs:
                    sibling["lfs"] = {"size": entry.size, "sha256": entry.sha256, "pointerSize": entry.pointer_size}
            siblings.append(sibling)
        card = self._card_data(repo, commit)
        info = {
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": list((card or {}).get("tags") or []),
            "siblings": siblings,
        }
        if repo_type == "model":
            info["modelId"] = repo_id
            if card is not None:
                info["cardData"] = card
                if card.get("library_name"):
                    info["library_name"] = card["library_name"]
                if card.get("model-index"):
                    info["model-index"] = card["model-index"]
            config = commit.files.get("config.json")
            if config is not None:
                try:
                    cfg = json.loads(self.server.store.blob_path(config.sha256).read_text(encoding="utf-8"))
                    info["config"] = {k: cfg[k] for k in ("architectures", "model_type") if k in cfg}
                except (ValueError, OSError):
                    pass
        elif card is not None:
            info["cardData"] = card
        self._json(info)

    # -- listing
    def _path_info(self, path: str, entry: FileEntry | None, commit: Commit) -> dict:
        if entry is None:  # a folder
            return {"type": "directory", "oid": hashlib.sha1(f"{commit.oid}:{path}".encode()).hexdigest(), "size": 0, "path": path}
        info = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": path}
        if entry.lfs:
            info["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
        return info

    @staticmethod
    def _folders(files: dict[str, FileEntry]) -> set[str]:
        folders = set()
        for path in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folders.add("/".join(parts[:i]))
        return folders

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str, query: dict) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self._revision(repo, revision)
        recursive = query.get("recursive", "").lower() in ("1", "true")
        folders = self._folders(commit.files)
        path = path.strip("/")
        if path and path not in folders:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", repo_commit=commit.oid)
        prefix = path + "/" if path else ""
        entries = []
        for folder in sorted(folders):
            if folder.startswith(prefix) and (recursive or "/" not in folder[len(prefix):]):
                entries.append(self._path_info(folder, None, commit))
        for file_path, entry in sorted(commit.files.items()):
            if file_path.startswith(prefix) and (recursive or "/" not in file_path[len(prefix):]):
                entries.append(self._path_info(file_path, entry, commit))
        self._json(entries, headers={"X-Repo-Commit": commit.oid})

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self._revision(repo, revision)
        body = self._body().decode()
        if "json" in (self.headers.get("Content-Type") or ""):
            paths = json.loads(body or "{}").get("paths", [])
        else:
            paths = parse_qs(body).get("paths", [])
        folders = self._folders(commit.files)
        out = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                out.append(self._path_info(path, commit.files[path], commit))
            elif path in folders:
                out.append(self._path_info(path, None, commit))
        self._json(out)

    # -- upload
    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._require_write()
        repo = self._repo(repo_type, repo_id)
        commit = self._revision(repo, revision)
        payload = json.loads(self._body() or b"{}")
        files = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item["size"])
            mode = self.server.store.upload_mode(repo, path, size, base64.b64decode(item.get("sample", "")))
            existing = commit.files.get(path)
            oid = None
            if existing is not None:
                oid = existing.sha256 if existing.lfs else existing.git_oid
            files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": files, "commitOid": commit.oid})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        self._require_write()
        self._repo(repo_type, repo_id)
        payload = json.loads(self._body() or b"{}")
        if payload.get("operation") != "upload":
            raise HubError(400, "only the LFS upload operation is supported")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer = {"oid": oid, "size": size, "authenticated": True}
            if not self.server.store.has_blob(oid):
                answer["actions"] = {"upload": {"href": f"{self.server.url}/_lfs/{oid}?size={size}", "header": {}}}
            objects.append(answer)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, oid: str) -> None:
        data = self._body()
        expected = parse_qs(urlsplit(self.path).query).get("size", [None])[-1]
        if hashlib.sha256(data).hexdigest() != oid or (expected is not None and int(expected) != len(data)):
            raise HubError(400, f"LFS object {oid}: content does not match its sha256/size")
        self.server.store.put_blob(data)
        self._send(200, b"", headers={"ETag": f'"{oid}"'})

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._require_write()
        repo = self._repo(repo_type, repo_id)
        if revision not in repo.branches:
            raise HubError(404, f"Invalid rev id: {revision} (commits go to a branch)", "RevisionNotFound")
        store = self.server.store
        header: dict = {}
        changes: dict[str, FileEntry | None] = {}
        deleted_folders: list[str] = []
        head = repo.resolve(revision)
        for line in self._body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"unsupported encoding {value.get('encoding')!r}")
                data = base64.b64decode(value["content"])
                changes[value["path"]] = store._entry(data, "regular")
            elif key == "lfsFile":
                if not store.has_blob(value["oid"]):
                    raise HubError(422, f"LFS object {value['oid']} for {value['path']} was not uploaded")
                size = value.get("size")
                if size is None:
                    size = store.blob_path(value["oid"]).stat().st_size
                changes[value["path"]] = store.lfs_entry(value["oid"], int(size))
            elif key == "deletedFile":
                if value["path"] not in head.files and value["path"] not in changes:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                changes[value["path"]] = None
            elif key == "deletedFolder":
                deleted_folders.append(value["path"])
            else:
                raise HubError(400, f"unsupported commit operation {key!r}")
        if not header.get("summary"):
            raise HubError(400, "commit summary is required")
        commit = store.commit(repo, revision, header["summary"], changes, deleted_folders, header.get("parentCommit"))
        url = f"{self.server.url}/{URL_PREFIX[repo_type]}{repo_id}/commit/{commit.oid}"
        self._json({"success": True, "commitOid": commit.oid, "commitUrl": url, "commitMessage": header["summary"], "pullRequestUrl": None})

    # -- download
    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str, head: bool) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self._revision(repo, revision)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, "Entry not found", "EntryNotFound", repo_commit=commit.oid)
        etag = entry.sha256 if entry.lfs else entry.git_oid
        headers = {
            "ETag": f'"{etag}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"',
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        data = b"" if head else self.server.store.blob_path(entry.sha256).read_bytes()
        status, length = 200, entry.size
        range_header = self.headers.get("Range")
        if range_header and not head:
            match = re.match(r"bytes=(\d+)-(\d*)$", range_header.strip())
            if match:
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else entry.size - 1
                data = data[start : end + 1]
                status, length = 206, len(data)
                headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{entry.size}"
        headers["Content-Length"] = length
        self._send(status, data, headers, content_type="application/octet-stream", head=head)


class LoopbackHubServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` on 127.0.0.1 (free port) holding a :class:`HubStore`; use as a context manager."""

    daemon_threads = True

    def __init__(self, root: str | Path | None = None, token: str = DEFAULT_TOKEN, user: str = DEFAULT_USER):
        super().__init__(("127.0.0.1", 0), HubRequestHandler)
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="loopback-hub-")) if root is None else Path(root)
        self.store = HubStore(self.root)
        self.token, self.user = token, user
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) of every request served
        self.errors: list[str] = []  # internal errors (bugs in this server)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LoopbackHubServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LoopbackHubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client_env(self, hf_home: str | Path, token: str | None = None) -> dict[str, str]:
        """Environment for a process that talks to this server with the real huggingface_hub client.

        ``huggingface_hub.constants`` reads these at import time, hence a fresh process per client.
        """
        return {
            "HF_ENDPOINT": self.url,
            "HF_TOKEN": token if token is not None else self.token,
            "HF_HOME": str(hf_home),
            "HF_HUB_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }


if __name__ == "__main__":
    with LoopbackHubServer() as server:
        print(f"loopback hub at {server.url} (token {server.token}); Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
