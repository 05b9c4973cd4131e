"""google-genai's requests that are not a model call, through the pool (HttpxTransport on
gr_forward), against the emulator: a file uploaded with one project's key and a cached content
are used on that project's keys only (in this process and in another that shares the state),
files.get / files.delete, models.list / models.get, the SDK's API version kept, the service's
error details kept, and the pool's own refusal when the pinned project is full."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import textwrap
from typing import Any, Dict, Iterator, List, Set

import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

import gemini_rotator
from gemini_rotator import AllKeysRateLimitedError
from gr_emulator import Emulator, Key, unique
from test_sdk import cause_chain, sdk

MODEL = "gemini-2.5-flash"
TEXT = "one two three four five six seven eight"


class Projects:
    """Keys in two emulator projects, and the pool entries ("PROJECT:KEY") naming them."""

    def __init__(self, emulator: Emulator, per_project: int = 2) -> None:
        self.emulator = emulator
        self.names = [unique("alpha"), unique("beta")]
        self.keys: Dict[str, List[Key]] = {}
        for project in self.names:
            self.keys[project] = []
            for i in range(per_project):
                key = Key(secret=unique("secret"), label=unique(f"{project}-{i}"))
                emulator.post("keys", {"key": key.secret, "label": key.label, "project": project})
                self.keys[project].append(key)

    @property
    def entries(self) -> List[str]:
        return [f"{p}:{k.secret}" for p in self.names for k in self.keys[p]]

    @property
    def labels(self) -> Set[str]:
        return {k.label for keys in self.keys.values() for k in keys}

    def log(self) -> List[Dict[str, Any]]:
        """The emulator's log entries of these keys, in arrival order."""
        labels = self.labels
        return [e for e in self.emulator.log() if e["label"] in labels]

    def other(self, project: str) -> str:
        return next(p for p in self.names if p != project)


@pytest.fixture
def projects(emulator: Emulator) -> Projects:
    return Projects(emulator)


@pytest.fixture
def pool_on(emulator: Emulator, tmp_path) -> Iterator[Any]:
    """Pools on the emulator over a state file of the test's own (so another process can share
    it); closed after the test."""
    pools: List[gemini_rotator.KeyPool] = []

    def make(entries: List[str], **options: Any) -> gemini_rotator.KeyPool:
        options.setdefault("base_url", emulator.base_url)
        options.setdefault("retry_base_ms", 1)
        options.setdefault("retry_max_ms", 5)
        options.setdefault("model", MODEL)
        options.setdefault("state", f"shm:{tmp_path / 'state'}")
        pool = gemini_rotator.KeyPool(free_keys=entries, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def upload(client: genai.Client, text: str = TEXT) -> types.File:
    return client.files.upload(
        file=io.BytesIO(text.encode()), config=types.UploadFileConfig(mime_type="text/plain")
    )


def naming(file: types.File) -> List[Any]:
    return [types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type), "summarize"]


def projects_of(entries: List[Dict[str, Any]]) -> Set[str]:
    return {e["project"] for e in entries}


def test_a_file_is_used_on_the_keys_of_the_project_that_uploaded_it(emulator, projects, pool_on):
    client = sdk(pool_on(projects.entries), emulator)
    unknown_before = emulator.unknown_key_requests()
    file = upload(client)
    assert file.name.startswith("files/") and file.size_bytes == len(TEXT)
    made = projects.log()
    assert len(made) >= 2  # the upload's start and its bytes, both on one project's key
    (owner,) = projects_of(made)
    for _ in range(6):
        client.models.generate_content(model=MODEL, contents=naming(file))
    uses = projects.log()[len(made):]
    assert len(uses) == 6 and all(e["status"] == 200 for e in uses)
    assert projects_of(uses) == {owner}
    assert len({e["label"] for e in uses}) == 2  # rotation within the project goes on
    # Without the file the pool rotates over both projects as usual.
    for _ in range(4):
        client.models.generate_content(model=MODEL, contents="plain")
    assert projects_of(projects.log()[len(made) + 6:]) == set(projects.names)
    assert emulator.unknown_key_requests() == unknown_before  # the placeholder never sent


def test_a_cached_content_is_used_on_its_projects_keys(emulator, projects, pool_on):
    client = sdk(pool_on(projects.entries), emulator)
    cache = client.caches.create(
        model=MODEL,
        config=types.CreateCachedContentConfig(contents=[TEXT], ttl="600s"),
    )
    assert cache.name.startswith("cachedContents/")
    made = projects.log()
    (owner,) = projects_of(made)
    for _ in range(4):
        answer = client.models.generate_content(
            model=MODEL,
            contents="and then?",
            config=types.GenerateContentConfig(cached_content=cache.name),
        )
        assert answer.text
    uses = projects.log()[len(made):]
    assert len(uses) == 4 and projects_of(uses) == {owner}
    assert all(e["status"] == 200 for e in uses)
    assert client.caches.get(name=cache.name).name == cache.name
    updated = client.caches.update(
        name=cache.name, config=types.UpdateCachedContentConfig(ttl="1200s")
    )
    assert updated.expire_time > cache.expire_time
    client.caches.delete(name=cache.name)
    later = projects.log()[len(made) + 4:]
    assert [e["method"] for e in later] == ["cachedContents.get", "cachedContents.patch",
                                            "cachedContents.delete"]
    assert projects_of(later) == {owner}


def test_files_get_and_delete_and_the_models_list(emulator, projects, pool_on):
    client = sdk(pool_on(projects.entries), emulator)
    file = upload(client)
    got = client.files.get(name=file.name)
    assert got.name == file.name and got.mime_type == "text/plain"
    client.files.delete(name=file.name)
    pinned = projects.log()
    # create, upload, get, delete: all on the uploading project's keys
    assert [e["method"] for e in pinned] == [
        "files.create", "files.upload", "files.get", "files.delete"
    ]
    assert len(projects_of(pinned)) == 1
    # The delete removed the pin: the pool asks one key of each project before it answers.
    with pytest.raises(genai_errors.ClientError) as raised:
        client.files.get(name=file.name)
    assert raised.value.code in (403, 404)
    after = projects.log()[len(pinned):]
    assert len(after) == 2 and projects_of(after) == set(projects.names)
    names = [m.name for m in client.models.list()]
    assert "models/gemini-3.6-flash" in names  # the emulator's catalog
    model = client.models.get(model=MODEL)
    assert model.name == f"models/{MODEL}" and model.input_token_limit


def test_the_sdks_api_version_reaches_the_service(emulator, projects, pool_on):
    pool = pool_on(projects.entries)
    for version in ("v1", "v1beta"):
        before = len(projects.log())
        client = sdk(pool, emulator, api_version=version)
        client.models.generate_content(model=MODEL, contents=TEXT)
        client.models.get(model=MODEL)
        sent = projects.log()[before:]
        assert [e["version"] for e in sent] == [version, version], sent


def test_the_services_error_details_reach_the_sdk(emulator, projects, pool_on):
    client = sdk(pool_on(projects.entries), emulator)
    for key in (k for keys in projects.keys.values() for k in keys):
        emulator.fault(key.label, "bad_request", count=1)
    with pytest.raises(genai_errors.ClientError) as raised:
        client.models.generate_content(model=MODEL, contents=TEXT)
    error = raised.value
    assert error.code == 400 and error.status == "INVALID_ARGUMENT"
    (detail,) = error.details["error"]["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert detail["fieldViolations"][0]["field"] == "contents"
    assert len(projects.log()) == 1  # a 400 is the caller's: no other key tried


def test_the_pools_refusal_when_the_pinned_project_is_full(emulator, projects, pool_on):
    client = sdk(pool_on(projects.entries, free_rate_limit=2), emulator)
    file = upload(client)
    made = projects.log()
    (owner,) = projects_of(made)
    for _ in range(2):
        client.models.generate_content(model=MODEL, contents=naming(file))
    with pytest.raises(Exception) as raised:
        client.models.generate_content(model=MODEL, contents=naming(file))
    limited = [e for e in cause_chain(raised.value) if isinstance(e, AllKeysRateLimitedError)]
    assert limited and limited[0].retry_after > 0
    uses = projects.log()[len(made):]
    assert len(uses) == 2 and projects_of(uses) == {owner}  # the other project never tried
    # The other project still serves requests that name no resource.
    client.models.generate_content(model=MODEL, contents="plain")
    assert projects_of(projects.log()[len(made) + 2:]) == {projects.other(owner)}


UPLOADER = textwrap.dedent(
    """
    import io, json, sys
    import httpx
    from google import genai
    from google.genai import types
    import gemini_rotator

    base_url, state, entries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    pool = gemini_rotator.KeyPool(free_keys=entries, base_url=base_url, state=state,
                                  model="gemini-2.5-flash")
    transport = gemini_rotator.HttpxTransport(pool)
    client = genai.Client(api_key="unused", http_options=types.HttpOptions(
        base_url=base_url, httpx_client=httpx.Client(transport=transport)))
    file = client.files.upload(file=io.BytesIO(b"made in another process"),
                               config=types.UploadFileConfig(mime_type="text/plain"))
    print(json.dumps({"uri": file.uri, "mime_type": file.mime_type}))
    pool.close()
    """
)


def test_a_pin_made_in_another_process_is_used_here(emulator, projects, pool_on, tmp_path):
    state = f"shm:{tmp_path / 'state'}"
    child = subprocess.run(
        [sys.executable, "-c", UPLOADER, emulator.base_url, state, json.dumps(projects.entries)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    file = types.File(**json.loads(child.stdout))
    made = projects.log()
    (owner,) = projects_of(made)
    client = sdk(pool_on(projects.entries, state=state), emulator)
    for _ in range(4):
        client.models.generate_content(model=MODEL, contents=naming(file))
    uses = projects.log()[len(made):]
    assert len(uses) == 4 and projects_of(uses) == {owner}


def test_async_upload_and_generate_stay_on_the_project(emulator, projects, pool_on):
    client = sdk(pool_on(projects.entries), emulator)

    async def main() -> None:
        file = await client.aio.files.upload(
            file=io.BytesIO(TEXT.encode()), config=types.UploadFileConfig(mime_type="text/plain")
        )
        await asyncio.gather(
            *(client.aio.models.generate_content(model=MODEL, contents=naming(file))
              for _ in range(4))
        )

    asyncio.run(main())
    entries = projects.log()
    assert len(entries) >= 6 and len(projects_of(entries)) == 1
