"""Study store, HTTP API, export and results, without a browser."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from harness_ext.core.errors import InputError
from harness_ext.study.results import judge_agreement, read_judge_verdicts, win_rates
from harness_ext.study.store import a_shown_first, open_study, read_pairs
from tests.conftest import run_cli
from tests.study_helpers import running_server, write_pairs


def _get(url, token=""):
    req = urllib.request.Request(url, headers={"X-Study-Token": token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _post(url, body, token=""):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "X-Study-Token": token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def test_api_anonymizes_orders_by_seed_and_resumes(tmp_path):
    pairs, db = write_pairs(tmp_path / "pairs.jsonl"), tmp_path / "study.sqlite"
    with running_server(db, pairs) as srv:
        page = urllib.request.urlopen(srv.url, timeout=10).read().decode()
        assert "helpfulness and relevance" in page and "not length" in page and "<script" in page
        assert "http" not in page.split("<script>")[1]  # no CDN, no external fetches
        alice, bob = srv.store.invite("alice"), srv.store.invite("bob")
        state = _get(srv.url + "api/next?annotator=alice", alice)
        assert state["done"] == 0 and state["total"] == 4
        first = state["pair"]
        assert "long-1k" not in json.dumps(state) and "alpaca-52k" not in json.dumps(state)  # model names hidden
        long_left = first["left"].startswith("LONG")
        assert long_left == a_shown_first("p0", "alice")
        # Click whichever side shows the long answer: the stored vote is 'a' regardless of position.
        state = _post(srv.url + "api/vote", {"annotator": "alice", "pair_id": "p0",
                                            "choice": "left" if long_left else "right"}, alice)
        assert state["done"] == 1 and state["pair"]["id"] == "p1"
        _post(srv.url + "api/vote", {"annotator": "alice", "pair_id": "p1", "choice": "tie"}, alice)
        with pytest.raises(urllib.error.HTTPError) as exc:
            _post(srv.url + "api/vote", {"annotator": "alice", "pair_id": "nope", "choice": "left"}, alice)
        assert exc.value.code == 400
        with pytest.raises(urllib.error.HTTPError):
            _get(srv.url + "api/next?annotator=bad%20id", alice)
    orders = {a_shown_first(f"p{i}", f"ann{j}") for i in range(4) for j in range(5)}
    assert orders == {True, False}  # both orders occur across pairs and annotators

    # A restarted server (same db, same pairs) resumes alice at her third pair.
    with running_server(db, pairs) as srv:
        state = _get(srv.url + "api/next?annotator=alice", alice)
        assert state["done"] == 2 and state["pair"]["id"] == "p2"
        assert _get(srv.url + "api/next?annotator=bob", bob)["pair"]["id"] == "p0"

    rows = open_study(db).export_rows()
    assert [(r["pair_id"], r["choice"], r["winner"]) for r in rows] == [("p0", "a", "long-1k"), ("p1", "tie", "tie")]


def test_pairs_file_errors_and_changed_pairs(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "instruction": "i", "response_a": "a", "model_a": "m"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: .*response_b"):
        read_pairs(bad)
    pairs, db = write_pairs(tmp_path / "pairs.jsonl"), tmp_path / "s.sqlite"
    open_study(db, pairs).close()
    pairs.write_text(pairs.read_text().replace("short answer 1", "edited"))
    with pytest.raises(InputError, match=r"p1.*different content"):
        open_study(db, pairs)
    with pytest.raises(InputError, match="not found"):
        open_study(tmp_path / "missing.sqlite")


def test_bad_db_and_pairs_paths_are_clear_errors_and_create_nothing(tmp_path):
    import sqlite3

    pairs = write_pairs(tmp_path / "pairs.jsonl")
    tiny_json = tmp_path / "tiny.json"  # shorter than a page: SQLite would take it for an empty database
    tiny_json.write_text('[{"a": 1}]')
    big_json = tmp_path / "big.json"
    big_json.write_text(json.dumps([{"a": "x" * 100}] * 50))
    folder = tmp_path / "folder"
    folder.mkdir()
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    con.close()
    with pytest.raises(InputError, match="is a folder, expected the study's SQLite file"):
        open_study(folder)  # the Python API checks too (the CLI refuses a folder before it gets here)
    cases = [
        (["export", "--db", str(tiny_json), "-o", str(tmp_path / "v.jsonl")], f"{tiny_json}: is not a SQLite database"),
        (["export", "--db", str(big_json), "-o", str(tmp_path / "v.jsonl")], f"{big_json}: is not a SQLite database"),
        (["results", "--db", str(folder)], f"{folder}: --db names a folder, but a file is needed here."),
        (["export", "--db", str(empty), "-o", str(tmp_path / "v.jsonl")], f"{empty}: is not a study database (its tables: none)"),
        (["results", "--db", str(other)], f"{other}: is not a study database (its tables: t)"),
        (["serve", "--pairs", str(pairs), "--db", str(tiny_json)], f"{tiny_json}: is not a SQLite database"),
        (["serve", "--pairs", str(pairs), "--db", str(other)], f"{other}: is not a study database"),
        (["serve", "--pairs", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "new.sqlite")], "nope.jsonl: file not found"),
        (["serve", "--pairs", str(tiny_json), "--db", str(tmp_path / "new.sqlite")], "tiny.json:1: expected an object"),
    ]
    for args, needle in cases:
        proc = run_cli("study", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Fix:" in lines[0], (args, proc.stderr)
    assert tiny_json.read_text() == '[{"a": 1}]' and empty.read_bytes() == b""
    assert not (tmp_path / "v.jsonl").exists() and not list(tmp_path.glob("new.sqlite*"))
    with sqlite3.connect(other) as con:
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["t"]
    con.close()


def test_results_win_rates_cis_and_judge_agreement(tmp_path):
    rows = []
    for i in range(20):
        for ann, choice in (("a1", "a" if i < 14 else "b"), ("a2", "a" if i < 12 else "tie")):
            rows.append({"pair_id": f"p{i}", "annotator": ann, "choice": choice, "model_a": "long", "model_b": "short"})
    (s,) = win_rates(rows, n_boot=500, seed=1)
    assert s["win"] == pytest.approx(65.0) and s["tie"] == pytest.approx(20.0) and s["loss"] == pytest.approx(15.0)
    assert s["ci"]["win"][0] < 65.0 < s["ci"]["win"][1] and s["n_pairs"] == 20
    judge = tmp_path / "judge.jsonl"
    lines = [{"pair_id": f"p{i}", "winner": "long" if i < 10 else "model_b"} for i in range(19)]
    lines.append({"pair_id": "p19", "error": "rate limited"})
    judge.write_text("".join(json.dumps(r) + "\n" for r in lines))
    verdicts = read_judge_verdicts(judge, {f"p{i}": ("long", "short") for i in range(20)})
    assert verdicts["p0"] == "a" and verdicts["p12"] == "b" and "p19" not in verdicts
    agree = judge_agreement(rows, verdicts)
    # a1 agrees on p0-p9 and p14-p18 (15 of 19); a2 on p0-p9 (10 of 19; its ties never match).
    assert agree["n_votes_compared"] == 38 and agree["agreement"] == pytest.approx(100 * 25 / 38)
    assert agree["n_votes_without_judge"] == 2
    bad = tmp_path / "bad_judge.jsonl"
    bad.write_text('{"pair_id": "p0", "winner": "gpt"}\n')
    with pytest.raises(InputError, match=r"bad_judge.jsonl:1: verdict 'gpt'"):
        read_judge_verdicts(bad, {"p0": ("long", "short")})


def test_cli_export_and_results(tmp_path):
    pairs, db = write_pairs(tmp_path / "pairs.jsonl", n=3), tmp_path / "s.sqlite"
    store = open_study(db, pairs)
    for i, choice in enumerate(("a", "a", "b")):
        store.record(f"p{i}", "alice", choice, True)
    store.close()
    out = tmp_path / "votes.jsonl"
    proc = run_cli("study", "export", "--db", str(db), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["winner"] for line in out.read_text().splitlines()] == ["long-1k", "long-1k", "alpaca-52k"]
    judge = tmp_path / "judge.jsonl"
    judge.write_text("".join(json.dumps({"id": f"p{i}", "winner": "a"}) + "\n" for i in range(3)))
    res = tmp_path / "results.json"
    proc = run_cli("study", "results", "--db", str(db), "--judge", str(judge), "--bootstrap", "200", "--json", str(res))
    assert proc.returncode == 0, proc.stderr
    assert "long-1k vs alpaca-52k: win 66.7%" in proc.stdout and "agreement with judge: 66.7% of 3 votes" in proc.stdout
    assert json.loads(res.read_text())["judge_agreement"]["n_decisive"] == 3
    board = tmp_path / "board.json"  # the study's numbers sit on the leaderboard as suite 'human'
    proc = run_cli("leaderboard", "add", str(board), str(res))
    assert proc.returncode == 0, proc.stderr
    shown = run_cli("leaderboard", "show", str(board), "--no-paper").stdout
    assert "long-1k" in shown and "human_study" in shown and "66.7" in shown
    proc = run_cli("study", "results", "--db", str(tmp_path / "none.sqlite"))
    assert proc.returncode == 2 and "study database not found" in proc.stderr


def test_cli_serve_prints_url_and_serves(tmp_path):
    import subprocess
    import sys

    from tests.conftest import cli_env

    pairs, db = write_pairs(tmp_path / "pairs.jsonl", n=2), tmp_path / "s.sqlite"
    invite = run_cli("study", "invite", "--pairs", str(pairs), "--db", str(db), "zoe")
    assert invite.returncode == 0, invite.stderr
    name, link = invite.stdout.strip().split("\t")
    token = link.split("token=")[1]
    assert name == "zoe" and link.startswith("http://127.0.0.1:8765/?annotator=zoe&token=") and len(token) >= 32
    assert token not in db.read_bytes().decode("latin-1")  # stored hashed
    proc = subprocess.Popen([sys.executable, "-m", "harness_ext", "study", "serve", "--pairs", str(pairs),
                             "--db", str(db), "--port", "0"], stdout=subprocess.PIPE, text=True, env=cli_env())
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert "2 pairs" in lines[0] and "1 invited annotator" in lines[1]
        url = lines[1].split()[1]
        assert url.startswith("http://127.0.0.1:")
        assert _get(url + "api/next?annotator=zoe", token)["total"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
