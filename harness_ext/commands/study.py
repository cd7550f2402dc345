"""`harness-ext study`: a human preference study (paper App. A.3) in the browser."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "human preference study: serve pairs to annotators, export votes, score them"
DESCRIPTION = """Serve two anonymized responses per instruction, in a seeded random order per
annotator, with A / Tie / B buttons and the rule "judge helpfulness and relevance, not length".
Votes go to SQLite with the annotator id; reopening the page resumes where the annotator stopped.
Each annotator votes through their own invite link (`study invite`), which carries a secret token;
votes without a valid token, from another site, or not sent as JSON are refused and not stored."""
EPILOG = """pairs JSONL: one object per line with id, instruction, response_a, model_a, response_b, model_b.

examples:
  harness-ext study invite --pairs pairs.jsonl --db study.sqlite --url http://10.0.0.5:8765/ alice bob
      prints one link per annotator (tokens are stored hashed; inviting again revokes the old link)
  harness-ext study serve --pairs pairs.jsonl --db study.sqlite --host 0.0.0.0 --port 8765
  harness-ext study export --db study.sqlite -o votes.jsonl
  harness-ext study results --db study.sqlite --judge judge_verdicts.jsonl
"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("serve", help="serve the study page")
    p.add_argument("--pairs", type=Path, required=True, help="pairs JSONL (loaded into the database once)")
    p.add_argument("--db", type=Path, required=True, help="SQLite file holding pairs and votes")
    p.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; 0.0.0.0 to share on a LAN)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--seed", type=int, default=0, help="seed of the per (pair, annotator) screen order")

    p = sub.add_parser("invite", help="print each annotator's invite link (a new secret token each time)")
    p.add_argument("annotators", nargs="+", metavar="ANNOTATOR", help="annotator ids (letters, digits, _.@-)")
    p.add_argument("--db", type=Path, required=True, help="the study's SQLite file")
    p.add_argument("--pairs", type=Path, help="pairs JSONL (needed only if the database does not exist yet)")
    p.add_argument("--url", default="http://127.0.0.1:8765/",
                   help="the address annotators will open (default http://127.0.0.1:8765/)")

    p = sub.add_parser("export", help="write votes de-anonymized to models (JSONL)")
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("-o", "--output", type=Path, required=True)

    p = sub.add_parser("results", help="win rates with bootstrap CIs; agreement with an LLM judge")
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--judge", type=Path, help="judge verdicts JSONL on the same pairs (pair_id, winner)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ci", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")


def run(args: argparse.Namespace) -> int:
    return {"serve": _serve, "invite": _invite, "export": _export, "results": _results}[args.action](args)


def _invite(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    from harness_ext.study.store import open_study

    store = open_study(args.db, args.pairs)
    try:
        base = args.url if args.url.endswith("/") else args.url + "/"
        for annotator in args.annotators:
            token = store.invite(annotator)
            print(f"{annotator}\t{base}?{urlencode({'annotator': annotator, 'token': token})}")
    finally:
        store.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from harness_ext.study.server import make_server
    from harness_ext.study.store import open_study

    store = open_study(args.db, args.pairs)
    server = make_server(store, args.host, args.port, args.seed)
    print(f"study: {len(store.pairs())} pairs, votes in {args.db}")
    invited = store.annotators()
    print(f"serving {server.url} for {len(invited)} invited annotator(s)"
          + ("" if invited else ": none yet, run `harness-ext study invite --db ... ID...`")
          + "  (Ctrl-C stops; votes are saved as they are cast)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        store.close()
    return 0


def _export(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import atomic_write_jsonl
    from harness_ext.study.store import open_study

    store = open_study(args.db)
    rows = store.export_rows()
    atomic_write_jsonl(args.output, rows)
    print(f"{len(rows)} votes -> {args.output}")
    return 0


def _results(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import atomic_write_json, provenance, sha256_file
    from harness_ext.core.errors import ConfigError, InputError
    from harness_ext.study.results import format_results, judge_agreement, read_judge_verdicts, win_rates
    from harness_ext.study.store import open_study

    if not 0 < args.ci < 1 or args.bootstrap < 1:
        raise ConfigError(f"--ci {args.ci} must be in (0, 1) and --bootstrap {args.bootstrap} >= 1.")
    store = open_study(args.db)
    rows = store.export_rows()
    if not rows:
        raise InputError("no votes yet.", path=args.db, hint="collect votes with `harness-ext study serve` first.")
    summaries = win_rates(rows, args.bootstrap, args.seed, args.ci)
    agreement = None
    if args.judge:
        models = {p.id: (p.model_a, p.model_b) for p in store.pairs()}
        agreement = judge_agreement(rows, read_judge_verdicts(args.judge, models))
    print(format_results(summaries, agreement), end="")
    if args.json:
        extra = {"judge_file_sha256": sha256_file(args.judge)} if args.judge else {}
        atomic_write_json(args.json, {"comparisons": summaries, "judge_agreement": agreement,
                                      "provenance": provenance(db=str(args.db), bootstrap=args.bootstrap,
                                                               seed=args.seed, **extra)})
    return 0
