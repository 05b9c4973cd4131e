"""The answer crosses the C boundary as pointer and length: a NUL byte is data, and the bytes
are parsed as JSON without a decode step."""

from __future__ import annotations

import http.server
import threading
from typing import Iterator

import pytest

from gemini_rotator import GeminiClient, GeminiError, KeyPool, fingerprint
from gr_emulator import unique

# A NUL byte inside a string and one between two values: what a C string would cut short.
NUL_ANSWER = b'{"candidates":[{"content":{"parts":[{"text":"a\x00b"}]}}]}\x00{"tail":true}'


class _Stub(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(NUL_ANSWER)))
        self.end_headers()
        self.wfile.write(NUL_ANSWER)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_url() -> Iterator[str]:
    """A loopback HTTP server that answers every POST with NUL_ANSWER."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_with_nul_bytes_arrives_whole(stub_url: str) -> None:
    key = unique("nul-secret")
    with KeyPool([key], base_url=stub_url, max_retries=0) as pool:
        answer, served_by = pool._generate(b'{"contents":[{"parts":[{"text":"hi"}]}]}', None, 0, 0)
        assert answer == NUL_ANSWER
        assert served_by == fingerprint(key)
        # Not JSON (a raw NUL is a control character): a clear error, not a truncated answer.
        with pytest.raises(GeminiError, match="not valid JSON"):
            GeminiClient(pool).generate_content("hi")


def test_an_unknown_keyword_is_a_type_error_naming_it(make_pool, emulator) -> None:
    key = emulator.add_key()
    client = GeminiClient(make_pool([key]))
    unexpected = r"generate_content\(\) got an unexpected keyword argument 'temprature'"
    with pytest.raises(TypeError, match=unexpected):
        client.generate_content("hi", temprature=0.5)  # type: ignore[call-arg]
    assert emulator.requests(key) == 0  # refused before anything was sent
    assert client.generate_content("hi", temperature=0.5).text == "echo: hi"
