"""The benchmarks' load generator: its HTTP/1.1 client reads every answer a server may give
(a length, chunks, a closed connection) and counts each request once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench.loadgen import ProtocolError, _Answer, _load, request_bytes


def _complete(raw: bytes) -> tuple[int, _Answer]:
    answer = _Answer()
    return answer.complete(bytearray(raw)), answer


def test_an_answer_with_a_length_is_complete_only_when_its_body_is():
    head = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    answer = _Answer()
    assert answer.complete(bytearray(head[:20])) == 0
    assert answer.complete(bytearray(head + b'{"id":')) == 0
    assert answer.complete(bytearray(head + b'{"id":1234}GET')) == len(head) + 11
    assert answer.status == 202 and not answer.close


def test_a_chunked_answer_ends_at_its_last_chunk():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n"
    assert _complete(raw[:-2])[0] == 0
    used, answer = _complete(raw + b"HTTP/1.1")
    assert used == len(raw) and answer.status == 200


def test_connection_close_and_http_1_0_answers_end_the_connection():
    assert _complete(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")[1].close
    assert _complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")[1].close


@pytest.mark.parametrize("raw", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nbody"])
def test_what_is_not_readable_http_is_an_error(raw):
    with pytest.raises(ProtocolError):
        _complete(raw)


def test_a_request_carries_its_length_and_headers():
    raw = request_bytes(host="127.0.0.1", port=8000, path="/api/v1/messages", body=b'{"a":1}',
                        headers={"Authorization": "Bearer k", "Content-Length": "99"})
    head, body = raw.split(b"\r\n\r\n")
    assert head.split(b"\r\n") == [b"POST /api/v1/messages HTTP/1.1", b"Host: 127.0.0.1:8000",
                                   b"Content-Length: 7", b"Authorization: Bearer k"]
    assert body == b'{"a":1}'


async def _serve(received: list[bytes]) -> asyncio.Server:
    """Answers request n by n % 3: a length, chunks, or a length and Connection: close."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            received.append(await reader.readexactly(length))
            kind = len(received) % 3
            if kind == 0:
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")
            elif kind == 1:
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno")
                await writer.drain()
                writer.close()
                return
            await writer.drain()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("rate", [0, 400.0])
def test_every_request_is_sent_once_and_every_answer_counted(tmp_path: Path, rate: float):
    bodies = tmp_path / "bodies.json"
    bodies.write_text(json.dumps([[json.dumps({"n": n}), {"Content-Type": "application/json"}] for n in range(5)]))
    received: list[bytes] = []

    async def run() -> dict:
        server = await _serve(received)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await _load({"url": f"http://127.0.0.1:{port}/hook/", "bodies": str(bodies), "requests": 60,
                                "concurrency": 4, "time_limit": 20, "rate": rate, "per_request_codes": True})

    result = asyncio.run(run())
    assert result["completed"] == 60 and not result["timed_out"]
    assert result["status_counts"] == {"200": 20, "202": 20, "409": 20}
    assert result["errors"] == {} and result["non_200"] == 40
    assert sorted(received) == sorted(json.dumps({"n": n % 5}).encode() for n in range(60))


def test_a_refused_connection_is_an_error_not_a_hang(tmp_path: Path):
    bodies = tmp_path / "bodies.json"
    bodies.write_text(json.dumps([["{}", {}]]))
    result = asyncio.run(_load({"url": "http://127.0.0.1:9/", "bodies": str(bodies), "requests": 3,
                                "concurrency": 1, "time_limit": 10}))
    assert result["status_counts"] == {"-1": 3}
    assert sum(result["errors"].values()) == 3
