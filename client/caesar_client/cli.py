"""The `caesar` command line.

Exit codes: 0 success; 1 a job that ended FAILURE, TIMED-OUT or ABORTED, or a request that failed
(not signed in, not found, server or network error); 2 a usage error (bad arguments, an option
value of the wrong type, a request the server refused as invalid: 400); 130 interrupted (Ctrl-C).
With --json the result (or the error) is printed on stdout as one JSON document.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import config, render
from .client import FAILED, Client, NotFinished
from .errors import BadRequest, CaesarError, JobFailed, Unauthorized, WaitTimeout
from .options import OptionSyntaxError, convert

OK, FAILED_EXIT, USAGE, INTERRUPTED = 0, 1, 2, 130
STATES = ("PENDING", "STARTED", "RUNNING", "SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED")


class Output:
    """Where a command's result goes: JSON on stdout with --json, else readable text."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def result(self, doc: Any, text: str | Callable[[], str]) -> None:
        if self.as_json:
            print(json.dumps(doc, indent=2, default=str))
        else:
            shown = text() if callable(text) else text
            if shown:
                print(shown)

    def note(self, message: str) -> None:
        print(message, file=sys.stderr)


def client_for(args: argparse.Namespace) -> Client:
    return Client(url=args.url, token=args.token, progress=False if args.quiet else None)


def job_exit(job: dict[str, Any]) -> int:
    return FAILED_EXIT if job.get("state") in FAILED else OK


# ---- commands ----

def cmd_login(args: argparse.Namespace, out: Output) -> int:
    url = (args.url or config.resolve().url).rstrip("/")
    token = args.token
    if not token:
        if sys.stdin.isatty():
            token = getpass.getpass(f"Token for {url} (printed by `make run`): ")
        else:
            token = sys.stdin.readline()
    token = (token or "").strip()
    if not token:
        raise UsageError("no token given (use --token, or pipe it on stdin)")
    who = Client(url=url, token=token, progress=False).whoami()  # refuses a token the server does not take
    path = config.write_config({"url": url, "token": token})
    out.result({"url": url, "user": who.get("user"), "config": str(path)},
               f"Logged in to {url} as {who.get('user')} (saved in {path})")
    return OK


def cmd_whoami(args: argparse.Namespace, out: Output) -> int:
    client = client_for(args)
    if not client.token:
        raise Unauthorized("no token", status=401, code="unauthorized")
    who = client.whoami()
    shown = {**who, "expires": render.when(who.get("expires"))}
    out.result(who, lambda: render.pairs(shown, ("user", "roles", "url", "token_source", "expires")))
    return OK


def cmd_upload(args: argparse.Namespace, out: Output) -> int:
    client = client_for(args)
    records = []
    for path in args.paths:
        presigned = True if args.presigned else (False if args.inline else None)
        record = client.upload(path, tag=args.tag, presigned=presigned)
        records.append(record)
        if not out.as_json:
            how = " (presigned" + (f", {record['resumed']} part(s) resumed" if record.get("resumed") else "") + ")" \
                if record.get("presigned") else ""
            out.note(f"{path}: uploaded as {record['uuid']}{how}")
    out.result(records, "\n".join(r["uuid"] for r in records))
    return OK


def cmd_files(args: argparse.Namespace, out: Output) -> int:
    found = list(client_for(args).files(tag=args.tag, all_users=args.all, limit=args.limit))
    out.result(found, lambda: render.files(found))
    return OK


def cmd_file(args: argparse.Namespace, out: Output) -> int:
    record = client_for(args).file(args.file_id)
    out.result(record, lambda: render.file(record))
    return OK


def cmd_download(args: argparse.Namespace, out: Output) -> int:
    path = client_for(args).download(args.file_id, args.output)
    out.result({"uuid": args.file_id, "path": str(path)}, str(path))
    return OK


def cmd_rm(args: argparse.Namespace, out: Output) -> int:
    client = client_for(args)
    done = [client.delete(file_id) for file_id in args.file_ids]
    out.result(done, "\n".join(f"{d.get('uuid')}: deleted" for d in done))
    return OK


def cmd_apps(args: argparse.Namespace, out: Output) -> int:
    names = client_for(args).apps()
    out.result(names, "\n".join(names))
    return OK


def cmd_describe(args: argparse.Namespace, out: Output) -> int:
    options = client_for(args).describe(args.app)
    out.result(options, lambda: render.describe(args.app, options))
    return OK


def _job_inputs(client: Client, app: str, pairs: list[str]) -> dict[str, Any]:
    return convert(pairs, client.describe(app)) if pairs else {}


def cmd_submit(args: argparse.Namespace, out: Output) -> int:
    client = client_for(args)
    job = client.submit(args.app, args.input, _job_inputs(client, args.app, args.param), tag=args.tag,
                        timeout=args.timeout)
    if args.wait:
        job = client.wait(job["job_id"])
        out.result(job, lambda: f"{job['job_id']}\n{render.job(job)}")
        return job_exit(job)
    out.result(job, job["job_id"])
    return OK


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    job = client_for(args).status(args.job_id)
    out.result(job, lambda: render.job(job))
    return OK


def cmd_wait(args: argparse.Namespace, out: Output) -> int:
    job = client_for(args).wait(args.job_id, timeout=args.timeout)
    out.result(job, lambda: render.job(job))
    return job_exit(job)


def cmd_cancel(args: argparse.Namespace, out: Output) -> int:
    job = client_for(args).cancel(args.job_id)
    out.result(job, f"{job['job_id']}: {job['state']}")
    return OK


def cmd_jobs(args: argparse.Namespace, out: Output) -> int:
    found = list(client_for(args).jobs(state=args.state, app=args.app, tag=args.tag, all_users=args.all,
                                       limit=args.limit))
    out.result(found, lambda: render.jobs(found))
    return OK


def cmd_logs(args: argparse.Namespace, out: Output) -> int:
    text = client_for(args).log(args.job_id)
    out.result({"job_id": args.job_id, "log": text}, text.rstrip("\n"))
    return OK


def cmd_output(args: argparse.Namespace, out: Output) -> int:
    client = client_for(args)
    folder = Path(args.output)
    if args.product:
        paths = [client.download_product(args.job_id, name, folder) for name in args.product]
    else:
        paths = client.download_outputs(args.job_id, folder, unpack=not args.no_unpack)
    out.result({"job_id": args.job_id, "files": [str(p) for p in paths]}, "\n".join(str(p) for p in paths))
    return OK


def cmd_run(args: argparse.Namespace, out: Output) -> int:
    """Upload, submit, wait with progress, download: the whole job in one command."""
    client = client_for(args)
    options = _job_inputs(client, args.app, args.param)
    record = client.upload(args.path, tag=args.tag)
    out.note(f"{args.path}: uploaded as {record['uuid']}")
    job = client.submit(args.app, record["uuid"], options, tag=args.tag, timeout=args.timeout)
    job_id = job["job_id"]
    out.note(f"job {job_id} submitted ({args.app})")
    try:
        job = client.wait(job_id)
    except KeyboardInterrupt:
        return _interrupted(client, job_id, out)
    paths: list[Path] = []
    if job.get("products"):
        paths = client.download_outputs(job_id, args.output)
    summary = {"job": job, "file": record, "files": [str(p) for p in paths]}
    state_line = f"job {job_id} ended {job['state']}" + (f": {job.get('status')}" if job.get("state") != "SUCCESS"
                                                       else "")
    out.note(state_line)
    out.result(summary, "\n".join(str(p) for p in paths))
    return job_exit(job)


def _interrupted(client: Client, job_id: str, out: Output) -> int:
    """Ctrl-C while waiting: ask whether to cancel the job (it keeps running otherwise)."""
    print(f"\nInterrupted. Cancel job {job_id}? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline().strip().lower()
    except (KeyboardInterrupt, EOFError):
        answer = ""
    if answer in ("y", "yes"):
        job = client.cancel(job_id)
        out.note(f"job {job_id}: {job['state']}")
        out.result(job, "")
        return FAILED_EXIT
    out.note(f"job {job_id} keeps running: `caesar wait {job_id}`, then `caesar output {job_id}`")
    return INTERRUPTED


def cmd_accounting(args: argparse.Namespace, out: Output) -> int:
    doc = client_for(args).accounting(user=args.user, all_users=args.all)
    out.result(doc, lambda: json.dumps(doc, indent=2, default=str))
    return OK


# ---- the parser ----

class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"caesar: error: {message}", file=sys.stderr)
        raise SystemExit(USAGE)


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="gateway URL (default: CAESAR_URL, then the "
                                                                  "config file, then http://127.0.0.1:8080)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="bearer token (default: CAESAR_TOKEN, then "
                                                                    "the config file)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the result as JSON on stdout")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")

    parser = Parser(prog="caesar", description="The caesar-faas command line: upload FITS images, run source "
                    "finders on them, follow the jobs, download the catalogues.", epilog=__doc__.split("\n\n")[1],
                    formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def command(name: str, fn: Callable[[argparse.Namespace, Output], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=fn)
        return p

    def params(p: argparse.ArgumentParser) -> None:
        p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                       help="an app option (repeatable); converted with the type `caesar describe APP` shows")

    p = command("login", cmd_login, "save the gateway URL and a token (read from stdin when --token is not given)")
    p = command("whoami", cmd_whoami, "who the token says you are, and whether the server accepts it")

    p = command("upload", cmd_upload, "upload FITS images (presigned multipart above the server's inline "
                "limit, resumable); prints their file ids")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--tag")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--presigned", action="store_true", help="always use the presigned flow")
    how.add_argument("--inline", action="store_true", help="always send the file in the request")

    p = command("files", cmd_files, "list your files")
    p.add_argument("--tag")
    p.add_argument("--all", action="store_true", help="every user's files (admins)")
    p.add_argument("--limit", type=positive, help="at most N files")

    p = command("file", cmd_file, "one file's metadata")
    p.add_argument("file_id", metavar="FILE_ID")

    p = command("download", cmd_download, "download a file")
    p.add_argument("file_id", metavar="FILE_ID")
    p.add_argument("-o", "--output", metavar="PATH", help="file or folder (default: its name, here)")

    p = command("rm", cmd_rm, "delete files")
    p.add_argument("file_ids", nargs="+", metavar="FILE_ID")

    command("apps", cmd_apps, "list the apps (source finders)")
    p = command("describe", cmd_describe, "an app's options: type, default, range or choices, description")
    p.add_argument("app", metavar="APP")

    p = command("submit", cmd_submit, "submit a job on a file id or a local path (uploaded first); prints the "
                "job id")
    p.add_argument("app", metavar="APP")
    p.add_argument("input", metavar="INPUT", help="a file id, or the path of a FITS image")
    params(p)
    p.add_argument("--tag")
    p.add_argument("--timeout", type=positive, metavar="S", help="the job's time limit in seconds")
    p.add_argument("--wait", action="store_true", help="wait for the job to end (exit 1 if it failed)")

    p = command("status", cmd_status, "a job's state and progress")
    p.add_argument("job_id", metavar="JOB")

    p = command("wait", cmd_wait, "wait for a job to end, with a progress bar (exit 1 if it failed)")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds (exit 1)")

    p = command("cancel", cmd_cancel, "cancel a job")
    p.add_argument("job_id", metavar="JOB")

    p = command("jobs", cmd_jobs, "list your jobs, newest first")
    p.add_argument("--state", choices=STATES, type=str.upper)
    p.add_argument("--app")
    p.add_argument("--tag")
    p.add_argument("--all", action="store_true", help="every user's jobs (admins)")
    p.add_argument("--limit", type=positive, help="at most N jobs")

    p = command("logs", cmd_logs, "a finished job's log")
    p.add_argument("job_id", metavar="JOB")

    p = command("output", cmd_output, "download a finished job's products (unpacked into DIR)")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("-o", "--output", default=".", metavar="DIR")
    p.add_argument("--product", action="append", metavar="NAME", help="only this product (repeatable), e.g. "
                   "catalog.csv")
    p.add_argument("--no-unpack", action="store_true", help="keep the .tar.gz")

    p = command("run", cmd_run, "upload, submit, wait and download: the whole job in one command (Ctrl-C "
                "while waiting asks whether to cancel)")
    p.add_argument("app", metavar="APP")
    p.add_argument("path", metavar="PATH")
    params(p)
    p.add_argument("-o", "--output", default=".", metavar="DIR", help="where the products go")
    p.add_argument("--tag")
    p.add_argument("--timeout", type=positive, metavar="S", help="the job's time limit in seconds")

    p = command("accounting", cmd_accounting, "your usage and limits (admins: --user U or --all)")
    p.add_argument("--user")
    p.add_argument("--all", action="store_true")
    return parser


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def sign_in_hint(url: str) -> str:
    return (f"not signed in to {url}: get a token (`make run` prints one; `make token ARGS='--user NAME'` mints "
            f"more) and run `caesar login --url {url}`")


def fail(out: Output, message: str, code: int, exc: CaesarError | None = None) -> int:
    print(f"caesar: {message}", file=sys.stderr)
    if out.as_json:
        doc: dict[str, Any] = {"error": exc.code if exc and exc.code else "error", "message": message}
        if exc is not None:
            doc.update({k: v for k, v in (("http_status", exc.status), ("option", exc.option)) if v is not None})
        print(json.dumps(doc, indent=2))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The common options are shared by the top level and every command (given before or after
    # the command name); their defaults are filled in here, since set_defaults on one parser
    # would change the shared actions of all.
    for name, default in (("url", None), ("token", None), ("json", False), ("quiet", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    out = Output(args.json)
    try:
        return int(args.func(args, out))
    except UsageError as exc:
        return fail(out, str(exc), USAGE)
    except OptionSyntaxError as exc:
        return fail(out, str(exc), USAGE)
    except Unauthorized as exc:
        url = (getattr(args, "url", None) or config.resolve().url).rstrip("/")
        return fail(out, f"{sign_in_hint(url)} ({exc.message.split(': ', 1)[-1]})", FAILED_EXIT, exc)
    except BadRequest as exc:
        return fail(out, exc.message, USAGE, exc)
    except (JobFailed, WaitTimeout) as exc:
        return fail(out, exc.message, FAILED_EXIT, exc)
    except NotFinished as exc:
        return fail(out, exc.message, FAILED_EXIT, exc)
    except CaesarError as exc:
        return fail(out, exc.message, FAILED_EXIT, exc)
    except KeyboardInterrupt:
        print("\ncaesar: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `caesar files | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except ValueError as exc:  # a broken config file
        return fail(out, str(exc), FAILED_EXIT)


if __name__ == "__main__":
    sys.exit(main())
