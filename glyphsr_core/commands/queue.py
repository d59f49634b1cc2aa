"""`queue`: run an API-format workflow on many images through one or more ComfyUI servers.

Each input is uploaded (POST /upload/image), put into the workflow's LoadImage node, queued on the
least busy server and followed on its websocket; the SaveImage outputs are downloaded into OUT as
`<input stem>_<node id>_<index>.png`. A failing or vanished server's inputs go to another one.
`<OUT>/queue_manifest.jsonl` records every input, and a rerun skips the completed ones.
Exit code: 0 when every input is done, 1 when some failed, 2 for a bad option or file.
"""

from __future__ import annotations

import argparse
import urllib.parse
from collections import Counter
from pathlib import Path

from ..errors import InvalidInputError

DEFAULT_SERVER = "http://127.0.0.1:8188"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="image files, folders (recursive, sub-folders mirrored) or globs")
    parser.add_argument("--workflow", type=Path, required=True,
                        help="API-format workflow (workflows/api/NAME.api.json, or ComfyUI's Save (API))")
    parser.add_argument("--server", action="append", dest="servers", metavar="URL",
                        help=f"a ComfyUI server, repeat for several (default {DEFAULT_SERVER})")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (also holds the manifest)")
    parser.add_argument("--input-node", help="id of the LoadImage node that gets the inputs (default: the lowest id)")
    parser.add_argument("--set", action="append", dest="overrides", default=[], metavar="NODE.INPUT=VALUE",
                        help="override a node input, e.g. --set 7.steps=10 (VALUE read as JSON when it parses)")
    parser.add_argument("--per-server", type=int, default=2,
                        help="inputs in flight per server (2 keeps the next prompt waiting while one downloads)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a prompt may wait in a server's queue, "
                        "and again seconds it may run, before it is given to another server")


def _check_servers(urls: list[str]) -> list[str]:
    checked = []
    for url in urls:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise InvalidInputError(f"--server {url!r}: expected http://HOST:PORT (https is not supported)")
        checked.append(f"http://{parts.netloc}{parts.path.rstrip('/')}")
    if len(set(checked)) != len(checked):
        raise InvalidInputError(f"--server: a server is named twice ({', '.join(urls)})")
    return checked


def run(args: argparse.Namespace) -> int:
    from ..remote import ComfyClient, Manifest, ServerPool, expand_inputs, load_workflow, run_all

    if args.per_server < 1:
        raise InvalidInputError(f"--per-server {args.per_server}: give 1 or more")
    if not args.timeout > 0:
        raise InvalidInputError(f"--timeout {args.timeout}: give a number of seconds above 0")
    servers = _check_servers(args.servers or [DEFAULT_SERVER])
    workflow = load_workflow(args.workflow, args.input_node, args.overrides)
    if workflow.note:
        print(workflow.note)
    jobs = expand_inputs(args.inputs)
    manifest = Manifest(args.out)
    done_before = manifest.completed(workflow.key())
    todo = [job for job in jobs if str(job.source) not in done_before]
    print(f"{len(jobs)} input(s): {len(jobs) - len(todo)} already done (manifest {manifest.path}), "
          f"{len(todo)} to run on {len(servers)} server(s)")
    counter = iter(range(1, len(todo) + 1))

    def record(outcome) -> None:
        manifest.append({"input": str(outcome.job.source), "status": outcome.status, "server": outcome.server,
                         "seconds": outcome.seconds, "outputs": outcome.outputs, "error": outcome.error,
                         "attempts": outcome.attempts, "workflow": workflow.key()})
        what = (f"{len(outcome.outputs)} image(s) from {outcome.server} in {outcome.seconds:.1f} s"
                if outcome.status == "done" else f"FAILED: {outcome.error}")
        if outcome.attempts and outcome.status == "done":
            what += f" (failed first on {', '.join(t['server'] for t in outcome.attempts)})"
        print(f"[{next(counter)}/{len(todo)}] {outcome.job.stem}: {what}", flush=True)

    pool = ServerPool([ComfyClient(url) for url in servers])
    outcomes = run_all(todo, workflow, args.out, pool, per_server=args.per_server, timeout=args.timeout,
                       on_done=record)
    failed = [o for o in outcomes if o.status != "done"]
    per_server = Counter(o.server for o in outcomes if o.status == "done")
    print(f"done: {len(outcomes) - len(failed)}, failed: {len(failed)}, skipped: {len(jobs) - len(todo)}"
          + "".join(f"; {url}: {n}" for url, n in per_server.items()))
    return 1 if failed else 0
