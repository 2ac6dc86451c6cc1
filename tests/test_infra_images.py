"""The Dockerfiles in infra/images, checked by parsing them (there is no Docker here): base images
pinned, a non-root user, no secrets, COPY sources that exist and are not ignored, the runner's
environment, requirement pins equal to requirements-dev.txt, and app specs that name images and
entrypoints these Dockerfiles build."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

from caesar_faas.apps import registry
from caesar_faas.backends.k8s_manifest import PROJECT_IMAGES, RUN_AS
from caesar_faas.runner.contract import THREAD_ENV

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "infra/images"
DOCKERFILES = sorted(p for p in IMAGES.glob("Dockerfile.*") if not p.name.endswith(".dockerignore"))
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)", re.I)
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\],]+)==([A-Za-z0-9_.+\-]+)$")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, f"{path.name}: dangling line continuation"
    return out


def stages(path: Path) -> tuple[dict[str, str | None], list[list[tuple[str, str]]]]:
    """Global ARGs (name -> default) and the instructions of each stage."""
    args: dict[str, str | None] = {}
    result: list[list[tuple[str, str]]] = []
    for word, rest in instructions(path):
        if word == "FROM":
            result.append([(word, rest)])
        elif not result:
            assert word == "ARG", f"{path.name}: only ARG may precede FROM"
            name, _, default = rest.partition("=")
            args[name] = default or None
        else:
            result[-1].append((word, rest))
    return args, result


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, simplified: the last matching pattern wins, `!` re-includes, and a
    pattern matching a parent folder matches everything below it."""
    verdict = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", "")) for p in prefixes):
            verdict = not negate
    return verdict


def entrypoint(path: Path) -> list[str]:
    _, all_stages = stages(path)
    found = [rest for word, rest in all_stages[-1] if word == "ENTRYPOINT"]
    return json.loads(found[-1]) if found else []


def test_there_are_the_four_images():
    assert {p.name for p in DOCKERFILES} == {"Dockerfile.runner", "Dockerfile.caesar-runner",
                                             "Dockerfile.mrcnn-runner", "Dockerfile.connector"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(path):
    text = path.read_text()
    args, all_stages = stages(path)
    aliases: set[str] = set()
    for stage in all_stages:
        from_args = stage[0][1].split()
        image = from_args[0]
        if len(from_args) == 3 and from_args[1].upper() == "AS":
            aliases.add(from_args[2])
        if image in aliases:
            continue
        var = re.fullmatch(r"\$\{?([A-Za-z_]+)\}?", image)
        if var:
            # An upstream that publishes only `latest`: no default, the build must be given a digest.
            name = var.group(1)
            assert name in args and args[name] is None, f"{path.name}: {name} needs no moving default"
            assert re.search(rf"--build-arg {name}=\S+@sha256:<digest>", text), f"{path.name}: document the pin"
            continue
        last = image.split("/")[-1]
        assert re.search(r"@sha256:[0-9a-f]{64}$", image) or re.fullmatch(r"[\w.-]+:[\w][\w.-]*", last), image
        tag = last.split(":")[-1]
        assert tag != "latest" and re.search(r"\d", tag), f"{path.name}: {image} is not pinned to a version"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_a_non_root_user_in_exec_form(path):
    _, all_stages = stages(path)
    final = all_stages[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, f"{path.name}: no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) == RUN_AS, f"{path.name}: USER {user} (numeric uid {RUN_AS} expected)"
    starts = [(word, rest) for word, rest in final if word in ("ENTRYPOINT", "CMD")]
    assert starts, f"{path.name}: no ENTRYPOINT/CMD"
    for word, rest in starts:
        assert isinstance(json.loads(rest), list), f"{path.name}: {word} must be in exec form"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_no_secrets_in_the_image(path):
    for word, rest in instructions(path):
        if word in ("ENV", "ARG", "LABEL"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split()[0]]:
                assert not SECRET_NAME.search(name), f"{path.name}: {word} {name} bakes a secret in"
        if word in ("COPY", "ADD"):
            assert not re.search(r"(\.env\b|id_rsa|\.pem\b|kubeconfig|secrets?/)", rest), f"{path.name}: {rest}"
        assert word != "ADD" or not re.search(r"https?://", rest), f"{path.name}: ADD from the network"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_and_reach_the_build_context(path):
    ignore_file = path.with_name(path.name + ".dockerignore")
    patterns = [line.strip() for line in ignore_file.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = 0
    for word, rest in instructions(path):
        if word != "COPY":
            continue
        parts = [p for p in rest.split() if not p.startswith("--")]
        if "--from=" in rest:
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"{path.name}: COPY {source}: not in the repository"
            assert not ignored(source, patterns), f"{path.name}: {source} is excluded by {ignore_file.name}"
            copied += 1
    assert copied
    assert ignored(".venv/bin/python", patterns) and ignored(".git/config", patterns)


@pytest.mark.parametrize("name", ["Dockerfile.runner", "Dockerfile.caesar-runner", "Dockerfile.mrcnn-runner"])
def test_runner_images_pin_finder_threads(name):
    env: dict[str, str] = {}
    for word, rest in instructions(IMAGES / name):
        if word == "ENV":
            env.update(dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", rest)))
    for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "MPLBACKEND"):
        assert env.get(key) == THREAD_ENV[key], f"{name}: {key}"
    assert entrypoint(IMAGES / name)[-2:] == ["-m", "caesar_faas.runner"]


def dev_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        match = PIN.match(line.split("#")[0].strip())
        if match:
            pins[re.sub(r"\[.*\]", "", match.group(1)).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize("path", sorted(IMAGES.glob("*requirements*.txt")), ids=lambda p: p.name)
def test_image_requirements_are_pinned_like_the_tests(path):
    pins = dev_pins()
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    for line in filter(None, lines):
        if line.startswith("-r "):
            assert (path.parent / line[3:]).exists()
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: {line!r} is not pinned with =="
        name = re.sub(r"\[.*\]", "", match.group(1)).lower()
        assert pins.get(name) == match.group(2), f"{path.name}: {name} {match.group(2)} != requirements-dev.txt"


def test_runner_image_has_every_finder_that_runs_from_python():
    text = (IMAGES / "runner-requirements.txt").read_text()
    for package in ("aegeantools", "bdsf", "sep"):
        assert f"{package}==" in text


def test_app_specs_name_images_built_here_with_their_entrypoint():
    """Every app runs from a project image (`caesar-faas/<name>:<tag>`, built by
    infra/images/Dockerfile.<name>) whose ENTRYPOINT is the spec's command: caesar and mrcnn run
    through the thin layers in front of their upstream images, not from the upstream images."""
    for spec in registry.list_apps():
        assert spec.image.startswith(PROJECT_IMAGES), (
            f"app {spec.name}: image {spec.image!r} is not built by infra/images (expected "
            f"'{PROJECT_IMAGES}<name>:<tag>', e.g. caesar-faas/{spec.name}-runner:0.1.0)")
        name = spec.image[len(PROJECT_IMAGES):].split(":")[0]
        dockerfile = IMAGES / f"Dockerfile.{name}"
        assert dockerfile.exists(), f"app {spec.name}: no {dockerfile.relative_to(ROOT)}"
        assert spec.command == entrypoint(dockerfile), (
            f"app {spec.name}: command {spec.command} differs from {dockerfile.name}'s ENTRYPOINT "
            f"{entrypoint(dockerfile)}")
