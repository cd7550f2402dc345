"""The study server resists forgery and holds up in a classroom: votes need the annotator's invite
token, a same-origin JSON request and a whole id; 20 annotators voting at once all get stored; a
stalled client cannot hold a worker; clients that vanish leave no traceback."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from harness_ext.core.errors import InputError
from harness_ext.study import server as study_server
from harness_ext.study.store import open_study
from tests.conftest import cli_env
from tests.study_helpers import running_server, write_pairs


def _post(srv, body, headers):
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", "/api/vote", body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_votes_without_token_from_other_sites_or_not_json_are_refused_and_not_stored(tmp_path):
    with running_server(tmp_path / "s.sqlite", write_pairs(tmp_path / "p.jsonl")) as srv:
        alice, bob = srv.store.invite("alice"), srv.store.invite("bob")
        host = "{}:{}".format(*srv.server_address[:2])
        vote = {"annotator": "alice", "pair_id": "p0", "choice": "left"}
        js = {"Content-Type": "application/json"}
        refused = [
            (vote, js, 403),  # no token
            (vote, {**js, "X-Study-Token": "guess"}, 403),  # wrong token
            (vote, {**js, "X-Study-Token": bob}, 403),  # bob's token for alice
            (vote, {**js, "X-Study-Token": alice, "Origin": "http://evil.example"}, 403),
            (vote, {**js, "X-Study-Token": alice, "Sec-Fetch-Site": "cross-site"}, 403),
            # what a cross-site <form> or fetch without preflight can send
            (vote, {"Content-Type": "text/plain", "X-Study-Token": alice}, 415),
            (vote, {"Content-Type": "application/x-www-form-urlencoded", "X-Study-Token": alice}, 415),
            ({**vote, "annotator": "alice\n"}, {**js, "X-Study-Token": alice}, 400),  # ids are matched whole
            ({**vote, "annotator": "alice "}, {**js, "X-Study-Token": alice}, 400),
        ]
        for body, headers, status in refused:
            got, text = _post(srv, body, headers)
            assert got == status, (headers, body, text)
        assert srv.store.votes() == []
        req = urllib.request.Request(srv.url + "api/next?annotator=alice%0A", headers={"X-Study-Token": alice})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        assert exc.value.code == 400
        # the real page's request: same origin, JSON, token
        got, _ = _post(srv, vote, {**js, "X-Study-Token": alice, "Origin": f"http://{host}",
                                   "Sec-Fetch-Site": "same-origin"})
        assert got == 200 and [(v.annotator, v.pair_id) for v in srv.store.votes()] == [("alice", "p0")]
        old = alice
        alice = srv.store.invite("alice")  # a new invite revokes the old link
        assert _post(srv, {**vote, "pair_id": "p1"}, {**js, "X-Study-Token": old})[0] == 403
        assert _post(srv, {**vote, "pair_id": "p1"}, {**js, "X-Study-Token": alice})[0] == 200
    with pytest.raises(InputError, match="not 1-64 letters"):
        open_study(tmp_path / "s.sqlite").invite("alice\n")


def test_a_classroom_of_20_casts_240_votes_at_once(tmp_path):
    with running_server(tmp_path / "s.sqlite", write_pairs(tmp_path / "p.jsonl", n=12)) as srv:
        tokens = {f"student{i}": srv.store.invite(f"student{i}") for i in range(20)}
        start, errors = threading.Barrier(20), []

        def student(name: str) -> None:
            start.wait()
            for j in range(12):
                try:  # a new connection per vote, as browsers on a flaky network do
                    status, text = _post(srv, {"annotator": name, "pair_id": f"p{j}", "choice": "tie"},
                                         {"Content-Type": "application/json", "X-Study-Token": tokens[name]})
                    if status != 200:
                        errors.append((name, j, status, text))
                except OSError as exc:
                    errors.append((name, j, repr(exc)))

        threads = [threading.Thread(target=student, args=(n,)) for n in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        assert len(srv.store.votes()) == 240


def test_a_stalled_client_is_dropped_and_does_not_hold_the_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(study_server._Handler, "timeout", 0.5)
    with running_server(tmp_path / "s.sqlite", write_pairs(tmp_path / "p.jsonl")) as srv:
        token = srv.store.invite("alice")
        stalled = []
        for _ in range(study_server.WORKERS + 8):  # more stalled clients than workers
            s = socket.create_connection(srv.server_address[:2], timeout=10)
            s.sendall(b"POST /api/vote HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"X-Study-Token: " + token.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"annot")
            stalled.append(s)
        started = time.monotonic()
        status, _ = _post(srv, {"annotator": "alice", "pair_id": "p0", "choice": "tie"},
                          {"Content-Type": "application/json", "X-Study-Token": token})
        assert status == 200 and time.monotonic() - started < 8
        for s in stalled:  # each was closed by the server, without an answer
            assert s.recv(100) == b""
            s.close()
        assert len(srv.store.votes()) == 1


def test_clients_that_disconnect_leave_no_traceback(tmp_path):
    pairs, db = write_pairs(tmp_path / "p.jsonl"), tmp_path / "s.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "harness_ext", "study", "serve", "--pairs", str(pairs),
                             "--db", str(db), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env())
    try:
        proc.stdout.readline()
        url = proc.stdout.readline().split()[1]
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        for request in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                        b"POST /api/vote HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 50\r\n\r\n{\"a\""):
            for _ in range(5):
                s = socket.create_connection((host, int(port)), timeout=10)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
                s.sendall(request)
                s.close()
        time.sleep(1.0)
        with urllib.request.urlopen(url, timeout=10) as r:  # still serving
            assert r.status == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err, err
