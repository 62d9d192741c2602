"""A clean install as an operator makes it: the wheel into fresh virtual environments, one with
the gateway only and one with the collector extra, driven only through the installed commands.

Also a hermetic check that every third-party module the shipped code imports is declared for
the install that runs it (core for gateway/ and sparwatt/, core + collector for collector/).
"""

from __future__ import annotations

import ast
import concurrent.futures
import fnmatch
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.broker import Mosquitto, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
GATEWAY, COLLECTOR = "gateway-only", "with-collector"
# The heavy part of the collector: none of it belongs on a Raspberry Pi that only reads meters.
COLLECTOR_ONLY_DISTRIBUTIONS = ("numpy", "pandas", "fastapi", "uvicorn", "influxdb-client")
# Needed at run time although no module names them in an import statement.
USED_WITHOUT_IMPORT = {"jinja2": "fastapi.templating renders the web pages with it"}
# Folders of a checkout that a wheel build must not see: caches, environments, old builds.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "node_modules",
    "test-artifacts",
    "demo-state",
    "*.db",
    "*.db-*",
)
INSTALL_TIMEOUT_S = 200
SECRET_FILE = re.compile(r'^\s*\w*(?:password|token|secret)\w*_file\s*=\s*"([^"]+)"', re.MULTILINE)


def canonical(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {canonical(re.split(r"[\s\[<>=!~;(]", r, maxsplit=1)[0]) for r in requirements}


@dataclass(frozen=True)
class Install:
    """One fresh virtual environment with the wheel in it, and a home folder for its files."""

    name: str
    venv: Path
    home: Path

    def env(self) -> dict[str, str]:
        # nothing of the test's own interpreter or of a local Sparwatt setup may leak in
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "SPARWATT_", "VIRTUAL_ENV"))
        }
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def bin(self, command: str) -> str:
        return str(self.venv / "bin" / command)

    def run(
        self, command: str, *args: str | Path, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        # the home folder as working directory: a checkout there would shadow the install
        return subprocess.run(
            [self.bin(command), *map(str, args)],
            capture_output=True,
            text=True,
            cwd=self.home,
            env=self.env(),
            timeout=timeout,
            check=False,
        )

    def ok(self, command: str, *args: str | Path, timeout: float = 60) -> str:
        """Run a command that must exit 0; its standard output."""
        done = self.run(command, *args, timeout=timeout)
        assert done.returncode == 0, (
            f"{self.name}: {command} {' '.join(map(str, args))} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
        return done.stdout

    def etc(self) -> Path:
        """The example configs copied where an operator would keep them (here instead of
        /etc/sparwatt, which every path in them is moved along to), otherwise as they ship."""
        etc = self.home / "etc"
        if not etc.exists():
            etc.mkdir()
            for example in sorted((ROOT / "config").glob("*.example.toml")):
                text = example.read_text().replace("/etc/sparwatt/", f"{etc}/")
                (etc / example.name.replace(".example", "")).write_text(text)
        return etc


class Services:
    """Long-running commands of one test, each logging to a file, always stopped at its end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, install: Install, command: str, *args: str | Path
    ) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [install.bin(command), *map(str, args)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=install.home,
                env=install.env(),
                start_new_session=True,
            )
        self.running[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}.log\n{self.log(name)[-3000:]}" for name in self.running)

    def stop(self, name: str, timeout_s: float = 20) -> int:
        """SIGTERM, as systemd stops a service; its exit code."""
        proc = self.running[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = Services(tmp_path)
    yield s
    s.stop_all()


def build_wheel(folder: Path) -> Path:
    # a copy, so the build neither writes into the checkout nor picks up its caches
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    wheels = folder / "wheels"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"wheel build failed:\n{done.stdout}\n{done.stderr}"
    (wheel,) = wheels.glob("sparwatt-*.whl")
    return wheel


def make_install(folder: Path, name: str, requirement: str) -> Install:
    install = Install(name, folder / name / "venv", folder / name / "home")
    install.home.mkdir(parents=True)
    steps = [
        [sys.executable, "-m", "venv", str(install.venv)],
        [
            install.bin("python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            requirement,
        ],
    ]
    for step in steps:
        done = subprocess.run(
            step,
            capture_output=True,
            text=True,
            cwd=install.home,
            env=install.env(),
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"{name}: {step} failed:\n{done.stdout}\n{done.stderr}"
    return install


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installs(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Install]:
    folder = tmp_path_factory.mktemp("installs")
    wanted = {GATEWAY: str(wheel), COLLECTOR: f"{wheel}[collector]"}
    # both at once: most of the time goes to downloads, which overlap well
    with concurrent.futures.ThreadPoolExecutor(len(wanted)) as pool:
        futures = {
            name: pool.submit(make_install, folder, name, requirement)
            for name, requirement in wanted.items()
        }
        return {name: future.result() for name, future in futures.items()}


def wait_until(
    predicate: Callable[[], Any], timeout_s: float, what: str, diagnostics: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{diagnostics()}")


def http_get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def shipped_packages() -> list[str]:
    """Top-level packages the wheel is built from, per the package-finding rules."""
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    found = sorted(
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").exists()
        and any(fnmatch.fnmatch(p.name, pattern) for pattern in patterns)
    )
    assert found, f"no package of {ROOT} matches {patterns}"
    return found


def meter_models() -> list[str]:
    models = sorted(
        p.stem for p in (ROOT / "gateway").rglob("*.toml") if p.parent.name == "meterlib"
    )
    assert "eastron-sdm630" in models
    return models


# --- what the wheel carries ----------------------------------------------------------------


@pytest.mark.integration
def test_wheel_carries_every_data_file_and_no_development_files(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    data_files = [
        p.relative_to(ROOT).as_posix()
        for package in shipped_packages()
        for p in (ROOT / package).rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    ]
    missing = sorted(set(data_files) - names)
    assert not missing, f"files the installed code reads but the wheel lacks: {missing}"
    for suffix in (
        "meterlib/eastron-sdm630.toml",
        "templates/base.html",
        "static/app.css",
        "static/vendor/uPlot.iife.min.js",
    ):
        assert any(n.endswith(suffix) for n in names), f"wheel has no */{suffix}"
    strays = sorted(n for n in names if n.split("/")[0] in {"tests", "devtools", "bench"})
    assert not strays, f"the wheel carries development files: {strays[:10]}"


# --- gateway-only install: what a Raspberry Pi at a company gets ---------------------------


@pytest.mark.integration
def test_gateway_only_install_has_none_of_the_collector_dependencies(
    installs: dict[str, Install],
) -> None:
    gateway = installs[GATEWAY]
    listed = json.loads(
        gateway.ok("python", "-m", "pip", "list", "--format=json", "--disable-pip-version-check")
    )
    installed = {canonical(d["name"]) for d in listed}
    assert "sparwatt" in installed
    extra = sorted(installed & set(COLLECTOR_ONLY_DISTRIBUTIONS))
    assert not extra, f"the gateway-only install brings collector packages: {extra}"

    loaded = set(
        gateway.ok(
            "python",
            "-c",
            "import sys, gateway, gateway.cli, gateway.service;"
            " print(' '.join(sorted(sys.modules)))",
        ).split()
    )
    heavy = {"numpy", "pandas", "fastapi", "influxdb_client"} & loaded
    assert not heavy, f"the gateway imports collector dependencies: {sorted(heavy)}"


@pytest.mark.integration
def test_collector_without_its_extra_fails_cleanly_and_names_what_to_install(
    installs: dict[str, Install],
) -> None:
    # The wheel ships the collector's code to every install: without the extra, importing it
    # fails at once naming the missing packages, and the command says so in one line.
    gateway = installs[GATEWAY]
    imported = gateway.run("python", "-c", "import collector")
    assert imported.returncode != 0
    last = imported.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: the Sparwatt collector needs the collector extra")
    assert "pip install 'sparwatt[collector]'" in last
    missing = re.search(r"missing: ([\w, ]+)\)", last)
    assert missing, last
    collector_extra = requirement_names(PYPROJECT["project"]["optional-dependencies"]["collector"])
    for name in missing[1].split(", "):
        owners = {canonical(d) for d in importlib.metadata.packages_distributions().get(name, [])}
        assert owners & collector_extra, f"missing {name!r} is not a collector dependency"
    done = gateway.run("sparwatt-collector", "check-config", gateway.etc() / "collector.toml")
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("sparwatt-collector: the Sparwatt collector needs the collector extra")


# --- both installs: what an installer does at the meters -----------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("which", [GATEWAY, COLLECTOR])
def test_installed_commands_answer_help(
    installs: dict[str, Install], wheel: Path, which: str
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (listing,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(listing).decode()
    scripts = dict(re.findall(r"^([\w-]+) = ([\w.]+):", entry_points, re.MULTILINE))
    assert {"sparwatt-gateway", "sparwatt-collector", "sparwatt-sim"} <= set(scripts)
    for script, module in sorted(scripts.items()):
        if which == GATEWAY and not module.startswith("gateway."):
            continue
        assert "usage:" in installs[which].ok(script, "--help")


@pytest.mark.integration
@pytest.mark.parametrize("which", [GATEWAY, COLLECTOR])
def test_installer_commands_work(
    installs: dict[str, Install], services: Services, which: str
) -> None:
    install = installs[which]
    listed = install.ok("sparwatt-gateway", "meters")
    for model in meter_models():
        assert re.search(rf"^{re.escape(model)}\s+\S.*quantities", listed, re.MULTILINE), listed

    examples = sorted(install.etc().glob("gateway*.toml"))
    assert examples, "no example gateway config in config/"
    for config in examples:
        assert f"{config}: ok" in install.ok("sparwatt-gateway", "check-config", config)

    port = free_port()
    services.start(
        "sim",
        install,
        "sparwatt-sim",
        "--model",
        "eastron-sdm630",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )
    wait_for_port(port, 20)
    out = install.ok(
        "sparwatt-gateway", "read", "--model", "eastron-sdm630", "--host", f"127.0.0.1:{port}"
    )
    voltage = re.search(r"^\s+voltage_l1_v\s+([\d.]+) V$", out, re.MULTILINE)
    assert voltage, out
    assert 200 < float(voltage[1]) < 260, out
    assert re.search(r"^\s+energy_import_kwh\s+[\d.]+ kWh$", out, re.MULTILINE), out


# --- collector install: what the municipality or consultant runs --------------------------


@pytest.mark.integration
def test_collector_check_config_accepts_the_examples(installs: dict[str, Install]) -> None:
    collector = installs[COLLECTOR]
    etc = collector.etc()
    config = etc / "collector.toml"
    assert f"{config}: ok" in collector.ok("sparwatt-collector", "check-config", config)

    # the same with the sites and alerts examples switched on, as the comments there suggest
    text, switched_on = re.subn(
        r'^# (sites_file|alerts_file) = "[^"]*"',
        lambda m: f'{m[1]} = "{m[1].split("_")[0]}.toml"',
        config.read_text(),
        flags=re.MULTILINE,
    )
    assert switched_on == 2, "collector.example.toml no longer offers sites_file and alerts_file"
    evaluating = etc / "collector-evaluation.toml"
    evaluating.write_text(text)
    # check-config reads every secret a switched-on file names, so they must be in place
    for named in ("sites.toml", "alerts.toml"):
        for secret in SECRET_FILE.findall((etc / named).read_text()):
            assert Path(secret).is_relative_to(etc), f"{named}: {secret} is outside /etc/sparwatt"
            Path(secret).parent.mkdir(parents=True, exist_ok=True)
            Path(secret).write_text("not-a-real-secret\n")
    assert f"{evaluating}: ok" in collector.ok("sparwatt-collector", "check-config", evaluating)


@pytest.mark.integration
def test_collector_stores_what_a_gateway_sends_and_reports_status(
    installs: dict[str, Install], services: Services, tmp_path: Path
) -> None:
    gateway, collector = installs[GATEWAY], installs[COLLECTOR]
    bus_port, web_port = free_port(), free_port()
    with Mosquitto(tmp_path / "broker") as broker:
        gateway_toml = tmp_path / "gateway.toml"
        gateway_toml.write_text(
            f'[gateway]\nsite = "acme-foods"\nid = "gw1"\nstate_dir = "{tmp_path / "gw-state"}"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
            f"[health]\ninterval_s = 2\n"
            f'[[buses]]\nid = "b1"\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {bus_port}\n'
            f'[[meters]]\nid = "main"\nbus = "b1"\nunit = 1\nmodel = "eastron-sdm630"\n'
            f"interval_s = 1\n"
        )
        collector_toml = tmp_path / "collector.toml"
        collector_toml.write_text(
            f'[storage]\ndb = "{tmp_path / "collector" / "sparwatt.db"}"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
            f"[intervals]\nrefresh_s = 1\n"
            f'[http]\nenabled = true\nhost = "127.0.0.1"\nport = {web_port}\n'
        )
        (tmp_path / "collector").mkdir()
        gateway.ok("sparwatt-gateway", "check-config", gateway_toml)
        collector.ok("sparwatt-collector", "check-config", collector_toml)

        services.start(
            "sim", gateway, "sparwatt-sim", "--model", "eastron-sdm630", "--port", str(bus_port)
        )
        wait_for_port(bus_port, 20)
        # what an installer runs at the meters before handing over to the service
        out = gateway.ok("sparwatt-gateway", "read", gateway_toml)
        assert out.startswith("main: eastron-sdm630 at unit 1\n"), out
        assert re.search(r"^\s+voltage_l1_v\s+[\d.]+ V$", out, re.MULTILINE), out
        services.start("collector", collector, "sparwatt-collector", "run", collector_toml)
        services.start("gateway", gateway, "sparwatt-gateway", "run", gateway_toml)

        def status() -> dict[str, Any]:
            done = collector.run(
                "sparwatt-collector", "status", "--json", "--config", collector_toml
            )
            return json.loads(done.stdout) if done.returncode == 0 else {}

        def stored_and_online() -> bool:
            now = status()
            return now.get("stored", 0) > 0 and any(
                g["state"] == "online" for g in now.get("gateways", [])
            )

        wait_until(stored_and_online, 40, "readings stored and the gateway online", services.logs)

        wait_for_port(web_port, 10)
        code, page = http_get(f"http://127.0.0.1:{web_port}/login")
        assert code == 200
        assert "<form" in page
        for asset in ("app.css", "vendor/uPlot.iife.min.js"):
            assert http_get(f"http://127.0.0.1:{web_port}/static/{asset}")[0] == 200
        made = collector.ok(
            "sparwatt-collector",
            "token",
            "add",
            "--role",
            "admin",
            "--name",
            "ops",
            "--config",
            collector_toml,
        )
        token = re.search(r"spw_[\w-]+", made)
        assert token, made
        code, body = http_get(f"http://127.0.0.1:{web_port}/api/sites/acme-foods/latest", token[0])
        assert code == 200
        assert "power_w" in body

        assert services.stop("gateway") == 0, services.logs()
        assert services.stop("collector") == 0, services.logs()

    latest = collector.ok("sparwatt-collector", "latest", "--config", collector_toml)
    assert re.search(r"^acme-foods\s+gw1\s+main\s+power_w\s+[\d.]+", latest, re.MULTILINE), latest
    report = collector.ok("sparwatt-collector", "status", "--config", collector_toml)
    stored = re.search(r"^stored values: (\d+)", report, re.MULTILINE)
    assert stored, report
    assert int(stored[1]) > 0, report
    assert report.startswith("ingest rate: "), report
    assert re.search(r"^gateway acme-foods/gw1: \w+, last seq \d+", report, re.MULTILINE), report


# --- hermetic: declared dependencies match the imports -------------------------------------


def imported_modules(package: Path) -> dict[str, list[str]]:
    """Top-level module outside the standard library -> where code of `package` imports it."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_runtime_import_is_declared_for_the_install_that_runs_it() -> None:
    project = PYPROJECT["project"]
    core = requirement_names(project["dependencies"])
    collector_extra = requirement_names(project["optional-dependencies"]["collector"])
    local = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    owners = {
        module: {canonical(d) for d in dists}
        for module, dists in importlib.metadata.packages_distributions().items()
    }
    problems: list[str] = []
    used: dict[str, set[str]] = {"core": set(), "collector": set()}
    shipped = shipped_packages()
    for package in shipped:
        scope = "collector" if package == "collector" else "core"
        declared = core | collector_extra if scope == "collector" else core
        for module, places in imported_modules(ROOT / package).items():
            if module in local:
                if module not in shipped:
                    problems.append(f"{places[0]}: imports {module!r}, which the wheel lacks")
                elif scope == "core" and module == "collector":
                    problems.append(f"{places[0]}: gateway-side code imports the collector")
                continue
            dists = owners.get(module, set())
            if not dists:
                problems.append(f"{places[0]}: {module!r} is installed by no distribution here")
            elif not dists & declared:
                problems.append(
                    f"{places[0]}: {module!r} ({', '.join(sorted(dists))}) is not "
                    f"declared for the {scope} install"
                )
            used[scope] |= dists
    for name in sorted(core - used["core"]):
        problems.append(f"core dependency {name!r} is imported by no gateway-side code")
    for name in sorted(collector_extra - used["collector"] - set(USED_WITHOUT_IMPORT)):
        problems.append(f"collector dependency {name!r} is imported by no collector code")
    assert not problems, "\n".join(problems)
