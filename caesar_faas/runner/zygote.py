"""The warm runner of the local backend: a long-lived process that has imported (and exercised
once) everything a runner needs, and forks one child per job that then runs exactly what
`python -m <runner module>` would run.

A job's runner otherwise spends about a second before it does anything: the interpreter, astropy,
matplotlib (and building its font list in the job's fresh HOME), the VOTable writer, the NATS
client. Forked from here, it starts with all of that in memory (shared copy-on-write).

Protocol, on the socket whose descriptor is argv[1] (backends/warm.py holds the other end):
length-prefixed JSON messages. The zygote first sends {"ready": true, "pid"} once its imports
are done; then for each {"env", "cwd", "out"} it forks and answers {"pid"} or {"error"}. It exits
when the socket closes (the backend's process went away), never leaving orphans of its own.

The child becomes what a fresh `python -m` runner is, as far as a runner can tell:
  - its own session and process group (pid == pgid), cwd = the job's work folder, so cancel
    (killpg), poll (/proc start time) and adoption after a crash (by cwd) work unchanged;
  - os.environ is exactly the job's environment (nothing of this process's);
  - stdin /dev/null, stdout and stderr appended to `out` (runner.out), line-buffered;
  - default signal dispositions (SIGCHLD too: the zygote ignores it so the kernel reaps its
    children, which would break the runner's own waits), sys.argv and sys.path[0] as -m sets them;
  - numpy's global random state reseeded (Python's own `random` reseeds itself after a fork).
Forking is refused while this process has more than one thread (a fork copies only the caller:
a lock held by another thread would stay locked in the child); the backend then starts a plain
process, as it does whenever the zygote is missing, busy warming up, or broken.
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import os
import runpy
import select
import signal
import socket
import struct
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

log = logging.getLogger("caesar_faas.runner.zygote")

# "caesar_faas.runner" (or function.caesar_faas.runner in an image); run with -m, __name__ is __main__.
RUNNER_MODULE = (__spec__.name if __spec__ is not None else __name__).rsplit(".", 1)[0]
_PACKAGE = RUNNER_MODULE.rsplit(".", 1)[0]
# What the real runner imports on its way through a job; a test runner module gets none of it.
PRELOAD = tuple(f"{_PACKAGE}.{name}" for name in (
    "runner.main", "runner.job", "runner.products", "runner.fetch", "runner.status", "events.bus",
    "storage.local", "runner.finders.sep", "runner.finders.aegean", "runner.finders.pybdsf",
)) + ("nats",)
HEADER = struct.Struct("!I")
MAX_MESSAGE = 64 * 1024 * 1024
SETTLE_TIMEOUT = 5.0  # seconds for a forked child to take its session and folder (milliseconds)


# -- framing (shared with backends/warm.py) -------------------------------------------------------

def send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    sock.sendall(HEADER.pack(len(data)) + data)


def _exactly(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the socket closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> dict[str, Any]:
    (size,) = HEADER.unpack(_exactly(sock, HEADER.size))
    if size > MAX_MESSAGE:
        raise EOFError(f"a message of {size} bytes: not the warm-runner protocol")
    message = json.loads(_exactly(sock, size))
    if not isinstance(message, dict):
        raise EOFError("a message that is not a JSON object")
    return message


# -- the zygote ---------------------------------------------------------------------------------

def preload(module: str) -> None:
    """Import what runners of `module` need and run the product writers once on a tiny image
    (fonts, WCS axes, the VOTable writer and PNG encoder load lazily on first use)."""
    # nats-py imports aiohttp only for ws:// servers (the backend sends those jobs to a plain
    # process); the runner blocks it the same way (main.skip_websocket_support).
    sys.modules.setdefault("aiohttp", None)  # type: ignore[arg-type]
    if module != RUNNER_MODULE:
        return
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    from ..apps.registry import list_apps

    list_apps()  # the app specs, parsed and checked once (a third of a second of YAML)
    try:
        with tempfile.TemporaryDirectory(prefix="caesar-warm-") as folder:
            _exercise_products(Path(folder))
    except Exception:  # noqa: BLE001 - a warm-up problem costs speed, never a job
        log.exception("warming up the product writers failed; the runners will load them themselves")


def _exercise_products(folder: Path) -> None:
    import numpy as np
    from astropy.io import fits

    from ..catalog.schema import normalise_row
    from .products import write_catalog_products

    header = fits.Header()
    for key, value in (("CTYPE1", "RA---SIN"), ("CTYPE2", "DEC--SIN"), ("CRVAL1", 150.0), ("CRVAL2", -30.0),
                       ("CRPIX1", 16.5), ("CRPIX2", 16.5), ("CDELT1", -5.6e-4), ("CDELT2", 5.6e-4),
                       ("BMAJ", 2.2e-3), ("BMIN", 2.2e-3), ("BPA", 0.0), ("BUNIT", "Jy/beam"), ("RADESYS", "ICRS")):
        header[key] = value
    image = folder / "warm.fits"
    fits.PrimaryHDU(np.zeros((32, 32), dtype=np.float32), header=header).writeto(image)
    row = normalise_row({"id": 1, "name": "warm", "ra": 150.0, "dec": -30.0, "x": 15.5, "y": 15.5,
                         "peak_flux": 1.0, "int_flux": 1.0, "major": 8.0, "minor": 8.0, "pa": 0.0})
    provenance = {"app": "warm-up", "job_id": "warm-up", "options": {"thresh": 5.0}, "input_filename": image.name}
    write_catalog_products([row], folder / "products", image_path=image, hdu_index=0,
                           header=fits.getheader(image), provenance=provenance)


def _single_threaded() -> bool:
    try:
        return len(os.listdir("/proc/self/task")) == 1  # native threads too, not only Python's
    except OSError:
        return threading.active_count() == 1


def serve(sock: socket.socket) -> tuple[dict[str, Any], int, int] | None:
    """Answer launch requests until the socket closes (None). In a forked child: returns the
    request it was forked for, the descriptor of its `out` file and the end of the pipe it
    closes once settled (see _wait_settled)."""
    while True:
        try:
            request = receive(sock)
        except (EOFError, OSError, ValueError):
            return None
        try:
            env, cwd, out_path = request["env"], request["cwd"], request["out"]
            if not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
                raise ValueError("env must map names to strings")
            if not os.path.isdir(cwd):
                raise FileNotFoundError(f"no work folder {cwd}")
            if not _single_threaded():
                raise RuntimeError("the warm runner has more than one thread: it cannot fork safely")
            out = os.open(out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except (KeyError, TypeError, ValueError, OSError, RuntimeError) as exc:
            send(sock, {"error": f"{type(exc).__name__}: {exc}"})
            continue
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # nothing buffered here may be written twice, by both processes
        settled_r, settled_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (out, settled_r, settled_w):
                os.close(fd)
            send(sock, {"error": f"fork failed: {exc}"})
            continue
        if pid == 0:
            sock.close()
            os.close(settled_r)
            return request, out, settled_w
        os.close(out)
        os.close(settled_w)
        _wait_settled(settled_r)
        send(sock, {"pid": pid})


def _wait_settled(fd: int) -> None:
    """Wait (briefly) until the child has its own session and the job's folder as cwd: it
    closes its end of the pipe then (or dies). Only then is its pid handed out, so a cancel
    (killpg) or an adoption by cwd that follows at once finds the child as a plain runner."""
    try:
        select.select([fd], [], [], SETTLE_TIMEOUT)
    finally:
        os.close(fd)


def become_runner(request: dict[str, Any], out: int, settled: int, module: str) -> None:
    """In the forked child: set up the job's process, then run `module` as `python -m` would,
    and end as the interpreter does (see finish)."""
    try:
        os.setsid()
        os.chdir(request["cwd"])
    except OSError:  # the folder went meanwhile: end as a runner that could not start
        traceback.print_exc()
        os._exit(1)
    finally:
        os.close(settled)
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, write_through=True,
                                  errors="backslashreplace")
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for handler in list(logging.getLogger().handlers):  # the zygote's own log lines stay its own
        logging.getLogger().removeHandler(handler)
    sys.path[0] = os.getcwd()  # `python -m` puts the working folder first
    tempfile.tempdir = None  # gettempdir() caches its answer: the job's TMPDIR, not the zygote's
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    try:
        Path("/proc/self/comm").write_text("caesar-runner")  # what ps and top show
    except OSError:
        pass
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exit_status(exc.code)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - as the interpreter reports an uncaught exception
        traceback.print_exc()
        code = 1
    finish(code)


def exit_status(code: object) -> int:
    """The process status sys.exit(code) gives (None: 0; a message: printed, 1)."""
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def finish(code: int) -> None:
    """What the interpreter does at exit that a runner can see (non-daemon threads joined, atexit
    functions run: the status bus drains there; output flushed), then _exit: tearing down every
    module the zygote imported takes a third of a second and changes nothing outside."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_functions is not None:
        run_exit_functions()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m caesar_faas.runner.zygote <socket fd> <runner module>", file=sys.stderr)
        return 2
    fd, module = int(argv[0]), argv[1]
    from ..logs import configure

    configure("warm-runner")  # JSON lines on stderr, into the log of the process that started it
    sock = socket.socket(fileno=fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C of `make run`: the stack stops us (EOF)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children: no zombies
    preload(module)
    try:
        send(sock, {"ready": True, "pid": os.getpid()})
    except OSError:
        return 0
    forked = serve(sock)
    if forked is None:
        return 0
    become_runner(*forked, module)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
