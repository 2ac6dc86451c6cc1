"""Packaging: `pip wheel` of the repository (the service package caesar_faas only) and of
client/ (caesar-client), each installed into an empty venv; the client's venv holds only its
declared dependencies, and the client never imports the service's libraries."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.client import ClientVenv, copy_client_source
from tests.fixtures.stack import ROOT

# What `pip install ./client` may bring: the client, its HTTP and progress-bar libraries and
# what those two depend on. Nothing of the service.
CLIENT_PACKAGES = {"caesar-client", "requests", "tqdm", "urllib3", "idna", "charset-normalizer", "certifi", "pip",
                   "setuptools"}
SERVICE_ONLY = ("flask", "boto3", "botocore", "kubernetes", "astropy", "numpy", "nats", "pymongo", "yaml", "jwt",
                "AegeanTools", "bdsf", "sep", "scipy", "matplotlib", "caesar_faas")


def build_wheel(source: Path, out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def service_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the repository, built from a copy (pip builds inside the tree it is given)."""
    work = tmp_path_factory.mktemp("service-wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", "var", "build", "*.egg-info", "__pycache__",
                                                                ".git", ".pytest_cache", ".ruff_cache", "bench"))
    return build_wheel(source, work / "dist")


def test_service_wheel_holds_the_service_package_only(service_wheel: Path) -> None:
    names = zipfile.ZipFile(service_wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"caesar_faas", "caesar_faas-0.1.0.dist-info"}
    assert {f"caesar_faas/apps/specs/{app}.yaml" for app in ("aegean", "pybdsf", "sep", "caesar", "mrcnn")} <= set(names)
    assert "caesar_faas/runner/finders/sep_main.py" in names and "caesar_faas/storage/local_http.py" in names
    metadata = zipfile.ZipFile(service_wheel).read("caesar_faas-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: flask" in metadata and "Provides-Extra: finders" in metadata


def test_service_wheel_installs_into_an_empty_venv_and_works_from_there(service_wheel: Path, tmp_path: Path) -> None:
    """Installed without the repository: the package, its spec files and its relative imports come
    from the venv. (Its dependencies are borrowed from the test venv rather than downloaded.)"""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-deps", str(service_wheel)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    probe = ("import caesar_faas, caesar_faas.runner.main, caesar_faas.storage.s3, caesar_faas.backends.kubernetes;"
             "from caesar_faas.apps import registry;"
             "print(caesar_faas.__file__); print(','.join(sorted(s.name for s in registry.list_apps())))")
    run = subprocess.run([str(venv / "bin/python"), "-c", probe], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, check=False, env={"PYTHONPATH": sysconfig.get_paths()["purelib"],
                                                         "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    location, apps = run.stdout.split()
    assert location.startswith(str(venv)) and apps == "aegean,caesar,mrcnn,pybdsf,sep"


def test_client_wheel_is_the_client_only(tmp_path: Path) -> None:
    wheel = build_wheel(copy_client_source(tmp_path / "src"), tmp_path / "dist")
    archive = zipfile.ZipFile(wheel)
    assert {name.split("/")[0] for name in archive.namelist()} == {"caesar_client", "caesar_client-0.1.0.dist-info"}
    metadata = archive.read("caesar_client-0.1.0.dist-info/METADATA").decode()
    requires = sorted(line.split()[1].split(">")[0] for line in metadata.splitlines() if line.startswith("Requires-Dist"))
    assert requires == ["requests", "tqdm"]
    entry = archive.read("caesar_client-0.1.0.dist-info/entry_points.txt").decode()
    assert "caesar = caesar_client.cli:main" in entry


def test_client_venv_has_only_the_declared_dependencies(client_venv: ClientVenv) -> None:
    installed = client_venv.packages()
    assert "caesar-client" in installed and installed <= CLIENT_PACKAGES, installed - CLIENT_PACKAGES
    probe = ("import importlib.util as u, sys; missing = [m for m in sys.argv[1:] if u.find_spec(m) is None];"
             "print(' '.join(missing))")
    done = subprocess.run([str(client_venv.python), "-c", probe, "flask", "astropy"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split() == ["flask", "astropy"]  # not installable there, so never imported


def test_client_imports_nothing_of_the_service(client_venv: ClientVenv) -> None:
    probe = ("import sys, caesar_client, caesar_client.cli; caesar_client.cli.build_parser();"
             f"bad = [m for m in sys.modules if m.split('.')[0] in {SERVICE_ONLY!r}]; print(bad)")
    done = subprocess.run([str(client_venv.python), "-c", probe], capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == "[]"
    source = "\n".join(p.read_text() for p in (ROOT / "client" / "caesar_client").glob("*.py"))
    for name in SERVICE_ONLY:
        assert f"import {name}" not in source and f"from {name}" not in source, name
