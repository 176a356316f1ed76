"""Builds etcd, Kubernetes' control-plane binaries and kwok from their Go modules, once each.

Nothing is downloaded but Go modules: each component gets a small throwaway module in the cache, is
compiled with the Go toolchain on this machine, and lands in
``<cache>/bin/<component>-v<version>``. A
finished build is marked by a stamp file, so an interrupted one is redone rather than trusted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kuberth.cluster.images import (
    DEMO_IMAGES,
    TRAEFIK_IMAGE,
    DemoImage,
    image_key,
    write_image,
)
from kuberth.cluster.versions import MINIMUM_GO, Versions

KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

#: The real node's Kubernetes commands: built by the same throwaway module, but cached apart and
#: only when a real node is wanted, so a kwok-only plane (CI, the test session) does not pay for
#: them (~2 min more with a warm Go cache, 150 MB).
NODE_COMMANDS = ("kubelet", "kube-proxy")

#: Traefik, the real node's Ingress controller (see :mod:`kuberth.cluster.node.ingress`).
TRAEFIK_MODULE = "github.com/traefik/traefik/v3"
TRAEFIK_PACKAGE = f"{TRAEFIK_MODULE}/cmd/traefik"
KUBE_ROUTER_MODULE = "github.com/cloudnativelabs/kube-router/v2"

#: The kwok stages that make fake nodes Ready and pods Running, Completed and gone.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)

#: A cold build keeps the module cache (~1.5 GiB), the build cache (~3 GiB) and the binaries.
REQUIRED_FREE_BYTES = 6 * 1024**3

_STAMP = ".complete"
_IMPORT_PATH = re.compile(r"^[\w.\-/]+$")

Progress = Callable[[str], None]


class BuildError(Exception):
    """The control plane could not be built; the message says what is missing."""


@dataclass(frozen=True)
class Binaries:
    """Paths of a built control plane."""

    kubernetes_dir: Path
    etcd_dir: Path
    kwok_dir: Path

    @property
    def etcd(self) -> Path:
        return self.etcd_dir / "etcd"

    @property
    def kwok(self) -> Path:
        return self.kwok_dir / "kwok"

    @property
    def kwok_stages(self) -> Path:
        return self.kwok_dir / "stages.yaml"

    def kubernetes(self, command: str) -> Path:
        """Path of one of :data:`KUBERNETES_COMMANDS`."""
        return self.kubernetes_dir / command

    @property
    def kubectl(self) -> Path:
        return self.kubernetes("kubectl")

    def missing(self) -> list[str]:
        """Components that are not built yet."""
        dirs = {"kubernetes": self.kubernetes_dir, "etcd": self.etcd_dir, "kwok": self.kwok_dir}
        return [name for name, path in dirs.items() if not (path / _STAMP).is_file()]


@dataclass(frozen=True)
class NodeBinaries:
    """Paths of a built real node: kubelet, kube-proxy, kube-router (its NetworkPolicy
    controller) and the images it runs without a registry (the demo images, and ``traefik``,
    its Ingress controller)."""

    directory: Path
    images: dict[str, DemoImage]
    kube_router_dir: Path

    @property
    def kube_router(self) -> Path:
        return self.kube_router_dir / "kube-router"

    @property
    def kubelet(self) -> Path:
        return self.directory / "kubelet"

    @property
    def kube_proxy(self) -> Path:
        return self.directory / "kube-proxy"


def binaries_for(cache_dir: Path, versions: Versions) -> Binaries:
    """Where the binaries of these versions live (whether built or not)."""
    root = cache_dir / "bin"
    return Binaries(
        kubernetes_dir=root / f"kubernetes-v{versions.kubernetes}",
        etcd_dir=root / f"etcd-v{versions.etcd}",
        kwok_dir=root / f"kwok-v{versions.kwok}",
    )


def kubernetes_go_mod(kubernetes_mod: str, versions: Versions) -> str:
    """The go.mod of the throwaway module that builds Kubernetes' commands.

    k8s.io/kubernetes requires its staging modules at v0.0.0 and points them at ``./staging`` with
    replace directives a consumer does not inherit; each is replaced here by its published version.
    The staging list is read from Kubernetes' own go.mod, so a new version brings its own list.
    """
    staging = sorted(set(re.findall(r"^\s*(k8s\.io/\S+)\s+=>\s+\./staging/", kubernetes_mod, re.M)))
    if not staging:
        raise BuildError("k8s.io/kubernetes go.mod lists no staging modules; is the version right?")
    replaces = "\n".join(f"\t{module} => {module} v{versions.staging}" for module in staging)
    tools = "\n".join(
        f"\tk8s.io/kubernetes/cmd/{command}" for command in (*KUBERNETES_COMMANDS, *NODE_COMMANDS)
    )
    return (
        "module kuberth.local/controlplane/kubernetes\n\n"
        f"go {_go_directive(kubernetes_mod)}\n\n"
        f"require k8s.io/kubernetes v{versions.kubernetes}\n\n"
        f"replace (\n{replaces}\n)\n\n"
        f"tool (\n{tools}\n)\n"
    )


def etcd_go_mod(etcd_mod: str, versions: Versions) -> str:
    """The go.mod of the throwaway module that builds etcd's server."""
    return (
        "module kuberth.local/controlplane/etcd\n\n"
        f"go {_go_directive(etcd_mod)}\n\n"
        f"require go.etcd.io/etcd/server/v3 v{versions.etcd}\n\n"
        "tool go.etcd.io/etcd/server/v3\n"
    )


def traefik_go_mod(traefik_mod: str, versions: Versions) -> str:
    """The go.mod of the throwaway module that builds Traefik.

    Traefik's own go.mod replaces a few modules by its forks (go-http-auth, gorilla/mux, minheap);
    a consumer does not inherit replace directives, so those pointing at a published module are
    copied here, read from Traefik's go.mod (a new version brings its own).
    """
    lines = []
    for block in re.findall(r"^replace\s*\((.*?)^\)", traefik_mod, re.M | re.S):
        lines += block.splitlines()
    lines += re.findall(r"^replace\s+([^(\s].*)$", traefik_mod, re.M)
    replaces = []
    for line in lines:
        directive = line.split("//", 1)[0].strip()
        if "=>" in directive and not directive.split("=>")[1].strip().startswith((".", "/")):
            replaces.append(f"\t{directive}")
    if not replaces:
        raise BuildError(f"{TRAEFIK_MODULE} go.mod replaces no module; is the version right?")
    return (
        "module kuberth.local/node/traefik\n\n"
        f"go {_go_directive(traefik_mod)}\n\n"
        f"require {TRAEFIK_MODULE} v{versions.traefik}\n\n"
        "replace (\n" + "\n".join(replaces) + "\n)\n\n"
        f"tool {TRAEFIK_PACKAGE}\n"
    )


def kube_router_go_mod(kube_router_mod: str, versions: Versions) -> str:
    """The go.mod of the throwaway module that builds kube-router (its go.mod declares an older
    Go than the ``tool`` directive needs: 1.24 at least)."""
    declared = _go_directive(kube_router_mod)
    parts = tuple(int(p) for p in re.findall(r"\d+", declared)[:2])
    go = declared if parts >= (1, 24) else "1.24"
    return (
        "module kuberth.local/node/kube-router\n\n"
        f"go {go}\n\n"
        f"require {KUBE_ROUTER_MODULE} v{versions.kube_router}\n\n"
        f"tool {KUBE_ROUTER_MODULE}/cmd/kube-router\n"
    )


def kubernetes_ldflags(versions: Versions) -> str:
    """Link flags that stamp the version, so ``/version`` and ``kubectl version`` tell the truth."""
    stamps = {
        "gitVersion": f"v{versions.kubernetes}",
        "gitMajor": "1",
        "gitMinor": versions.kubernetes_minor,
        "gitTreeState": "clean",
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{name}={value}" for name, value in stamps.items()]
    return " ".join(flags)


def _go_directive(go_mod: str) -> str:
    match = re.search(r"^go\s+(\S+)", go_mod, re.M)
    if not match:
        raise BuildError("a go.mod without a go directive")
    return match.group(1)


class Builder:
    """Builds whatever of one version set is missing from the cache."""

    def __init__(self, *, cache_dir: Path, versions: Versions, progress: Progress) -> None:
        self.cache_dir = cache_dir
        self.versions = versions
        self.binaries = binaries_for(cache_dir, versions)
        self._progress = progress

    def ensure(self) -> Binaries:
        """Build the missing components and return the binaries.

        Raises:
            BuildError: Go is missing or too old, the module proxy is unreachable, the disk is full,
                or a compilation failed.
        """
        if not self.binaries.missing():
            return self.binaries
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            missing = self.binaries.missing()  # another process may have built them meanwhile
            if not missing:
                return self.binaries
            go = self._check_go()
            self._check_disk(go)
            builders = {
                "kubernetes": self._build_kubernetes,
                "etcd": self._build_etcd,
                "kwok": self._build_kwok,
            }
            for name in missing:
                target = getattr(self.binaries, f"{name}_dir")
                self._build_into(name, target, builders[name])
        return self.binaries

    def ensure_node(self) -> NodeBinaries:
        """Build kubelet, kube-proxy, kube-router, Traefik and the images if they are missing, and
        return them.

        Kept apart from :meth:`ensure` so that only a machine that runs a real node pays for them.

        Raises:
            BuildError: as :meth:`ensure`.
        """
        node_dir = self.cache_dir / "bin" / f"kubernetes-node-v{self.versions.kubernetes}"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            go: str | None = None
            if not (node_dir / _STAMP).is_file():
                go = self._check_go()
                self._check_disk(go)
                self._build_into("kubelet and kube-proxy", node_dir, self._build_node)
            router_dir = self.cache_dir / "bin" / f"kube-router-v{self.versions.kube_router}"
            if not (router_dir / _STAMP).is_file():
                go = go or self._check_go()
                self._check_disk(go)
                self._build_into("kube-router", router_dir, self._build_kube_router)
            go = go or self._check_go()
            go_version = self._run([go, "env", "GOVERSION"], cwd=self.cache_dir).strip()
            images = {name: self._build_image(go, go_version, name) for name in DEMO_IMAGES}
            images["traefik"] = self._traefik_image(go)
        return NodeBinaries(node_dir, images, router_dir)

    def _build_node(self, out: Path) -> None:
        self._build_kubernetes_commands(out, NODE_COMMANDS, "kubelet and kube-proxy")

    def _build_image(self, go: str, go_version: str, name: str) -> DemoImage:
        """One demo image: its Go source compiled statically, packed as a one-layer OCI archive.

        Cached by the digest of its source and the Go version, which also is the image's tag: a
        changed source is a new image, never a stale one under an old name.
        """
        key = image_key(name, go_version)
        images_dir = self.cache_dir / "images"
        image = DemoImage(name=name, key=key, archive=images_dir / f"{name}-{key}.oci.tar")
        if image.archive.is_file():
            return image
        work = self.cache_dir / "build" / f"image-{name}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        spec = DEMO_IMAGES[name]
        assert spec.source is not None
        (work / "go.mod").write_text(f"module kuberth.local/images/{name}\n\ngo 1.22\n")
        (work / "main.go").write_bytes(spec.source.read_bytes())
        arch = self._run([go, "env", "GOARCH"], cwd=work).strip()
        self._run(
            [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(work / "app"), "."], cwd=work
        )
        images_dir.mkdir(parents=True, exist_ok=True)
        partial = image.archive.with_suffix(".partial")
        write_image(partial, image.reference, spec, (work / "app").read_bytes(), arch=arch)
        partial.rename(image.archive)
        shutil.rmtree(work, ignore_errors=True)
        self._progress(f"image {image.reference}: built -> {image.archive}")
        return image

    def _traefik_image(self, go: str) -> DemoImage:
        """Traefik's image: its binary built from its Go module (cached by version, as the other
        components), packed as a one-layer OCI archive tagged with that version."""
        version = self.versions.traefik
        image = DemoImage(
            name="traefik",
            key=f"v{version}",
            archive=self.cache_dir / "images" / f"traefik-v{version}.oci.tar",
        )
        if image.archive.is_file():
            return image
        binary_dir = self.cache_dir / "bin" / f"traefik-v{version}"
        if not (binary_dir / _STAMP).is_file():
            self._check_disk(go)
            self._build_into(f"traefik v{version}", binary_dir, self._build_traefik)
        arch = self._run([go, "env", "GOARCH"], cwd=self.cache_dir).strip()
        image.archive.parent.mkdir(parents=True, exist_ok=True)
        partial = image.archive.with_suffix(".partial")
        binary = (binary_dir / "traefik").read_bytes()
        write_image(partial, image.reference, TRAEFIK_IMAGE, binary, arch=arch)
        partial.rename(image.archive)
        self._progress(f"image {image.reference}: packed -> {image.archive}")
        return image

    def _build_traefik(self, out: Path) -> None:
        version = self.versions.traefik
        info = self._module_info(TRAEFIK_MODULE, f"v{version}")
        work = self._prepare_module(
            f"traefik-v{version}", traefik_go_mod(Path(info["GoMod"]).read_text(), self.versions)
        )
        ldflags = f"-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=v{version}"
        self._compile(
            f"traefik v{version}",
            work,
            ["-ldflags", ldflags, "-o", str(out / "traefik"), TRAEFIK_PACKAGE],
            [TRAEFIK_PACKAGE],
        )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with (self.cache_dir / "build.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._progress("another build of the control plane is running; waiting for it")
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _check_go(self) -> str:
        go = shutil.which("go")
        if go is None:
            raise BuildError(
                "the Go toolchain is not installed (no `go` on PATH); the control plane is built "
                f"from Go modules and needs Go {MINIMUM_GO[0]}.{MINIMUM_GO[1]} or newer"
            )
        version = self._run([go, "env", "GOVERSION"], cwd=self.cache_dir).strip()
        match = re.match(r"go(\d+)\.(\d+)", version)
        if match and (int(match.group(1)), int(match.group(2))) < MINIMUM_GO:
            raise BuildError(
                f"{version} is too old: Kubernetes v{self.versions.kubernetes} needs "
                f"Go {MINIMUM_GO[0]}.{MINIMUM_GO[1]} or newer"
            )
        return go

    def _check_disk(self, go: str) -> None:
        paths = [self.cache_dir]
        env = json.loads(self._run([go, "env", "-json", "GOMODCACHE", "GOCACHE"], self.cache_dir))
        paths += [Path(p) for p in env.values() if p]
        for path in paths:
            existing = next(p for p in [path, *path.parents] if p.exists())
            free = shutil.disk_usage(existing).free
            if free < REQUIRED_FREE_BYTES:
                raise BuildError(
                    f"out of disk: {free / 1024**3:.1f} GiB free at {existing}; building the "
                    f"control plane needs about {REQUIRED_FREE_BYTES // 1024**3} GiB"
                )

    def _build_into(self, name: str, target: Path, build: Callable[[Path], None]) -> None:
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        started = time.monotonic()
        build(partial)
        (partial / _STAMP).write_text(f"built in {time.monotonic() - started:.0f}s\n")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        self._progress(f"{name}: built in {time.monotonic() - started:.0f}s -> {target}")

    def _module_info(self, module: str, version: str) -> dict[str, str]:
        """Download one module through the Go proxy and return `go mod download -json`."""
        try:
            out = self._run(
                ["go", "mod", "download", "-json", f"{module}@{version}"], self.cache_dir
            )
        except BuildError as error:
            proxy = self._run(["go", "env", "GOPROXY"], self.cache_dir).strip()
            raise BuildError(
                f"cannot download {module}@{version} from the Go module proxy (GOPROXY={proxy}); "
                f"is the network to the proxy up?\n{error}"
            ) from error
        info: dict[str, str] = json.loads(out)
        if "Error" in info:
            raise BuildError(f"cannot download {module}@{version}: {info['Error']}")
        return info

    def _prepare_module(self, name: str, go_mod: str) -> Path:
        work = self.cache_dir / "build" / name
        work.mkdir(parents=True, exist_ok=True)
        if not (work / "go.mod").is_file() or (work / "go.mod").read_text() != go_mod:
            (work / "go.mod").write_text(go_mod)
            (work / "go.sum").unlink(missing_ok=True)
        self._progress(f"{name}: resolving modules")
        self._run(["go", "mod", "tidy"], work)
        return work

    def _build_kubernetes(self, out: Path) -> None:
        self._build_kubernetes_commands(out, KUBERNETES_COMMANDS, "kubernetes")

    def _build_kubernetes_commands(self, out: Path, commands: Iterable[str], what: str) -> None:
        """Commands of k8s.io/kubernetes, from the one throwaway module (its staging modules
        pinned), into ``out``: the control plane's and the real node's alike."""
        v = self.versions
        info = self._module_info("k8s.io/kubernetes", f"v{v.kubernetes}")
        go_mod = kubernetes_go_mod(Path(info["GoMod"]).read_text(), v)
        work = self._prepare_module(f"kubernetes-v{v.kubernetes}", go_mod)
        packages = [f"k8s.io/kubernetes/cmd/{command}" for command in commands]
        self._compile(
            f"{what} v{v.kubernetes}",
            work,
            ["-ldflags", kubernetes_ldflags(v), "-o", f"{out}/", *packages],
            packages,
        )

    def _build_kube_router(self, out: Path) -> None:
        v = self.versions
        info = self._module_info(KUBE_ROUTER_MODULE, f"v{v.kube_router}")
        work = self._prepare_module(
            f"kube-router-v{v.kube_router}",
            kube_router_go_mod(Path(info["GoMod"]).read_text(), v),
        )
        ldflags = f"-s -w -X {KUBE_ROUTER_MODULE}/pkg/version.Version=v{v.kube_router}"
        package = f"{KUBE_ROUTER_MODULE}/cmd/kube-router"
        self._compile(
            f"kube-router v{v.kube_router}",
            work,
            ["-ldflags", ldflags, "-o", str(out / "kube-router"), package],
            [package],
        )

    def _build_etcd(self, out: Path) -> None:
        v = self.versions
        info = self._module_info("go.etcd.io/etcd/server/v3", f"v{v.etcd}")
        work = self._prepare_module(
            f"etcd-v{v.etcd}", etcd_go_mod(Path(info["GoMod"]).read_text(), v)
        )
        ldflags = f"-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v{v.etcd}"
        package = "go.etcd.io/etcd/server/v3"
        self._compile(
            f"etcd v{v.etcd}",
            work,
            ["-ldflags", ldflags, "-o", str(out / "etcd"), package],
            [package],
        )

    def _build_kwok(self, out: Path) -> None:
        v = self.versions
        info = self._module_info("sigs.k8s.io/kwok", f"v{v.kwok}")
        source = Path(info["Dir"])
        stages = [(source / path).read_text() for path in KWOK_STAGE_FILES]
        (out / "stages.yaml").write_text("\n---\n".join(s.strip() for s in stages) + "\n")
        work = self._prepare_module(
            f"kwok-v{v.kwok}",
            "module kuberth.local/controlplane/kwok\n\n"
            f"go {_go_directive(Path(info['GoMod']).read_text())}\n\n"
            f"require sigs.k8s.io/kwok v{v.kwok}\n\ntool sigs.k8s.io/kwok/cmd/kwok\n",
        )
        ldflags = f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v{v.kwok}"
        package = "sigs.k8s.io/kwok/cmd/kwok"
        self._compile(
            f"kwok v{v.kwok}",
            work,
            ["-ldflags", ldflags, "-o", str(out / "kwok"), package],
            [package],
        )

    def _compile(self, label: str, work: Path, args: list[str], packages: list[str]) -> None:
        """`go build -v`, reporting how many of the needed packages are compiled so far."""
        total = len(self._run(["go", "list", "-deps", *packages], work).split())
        self._progress(f"{label}: compiling up to {total} packages (cached ones are skipped)")
        command = ["go", "build", "-v", "-trimpath", *args]
        env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off"}
        started = last_report = time.monotonic()
        done = 0
        tail: list[str] = []
        with subprocess.Popen(
            command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                tail = [*tail[-39:], line.rstrip()]
                if _IMPORT_PATH.match(line):  # -v names each package as it is compiled
                    done += 1
                now = time.monotonic()
                if now - last_report >= 15:
                    last_report = now
                    self._progress(
                        f"{label}: {min(done, total)}/{total} packages, {now - started:.0f}s"
                    )
        if process.returncode != 0:
            raise BuildError(f"building {label} failed:\n" + "\n".join(tail))

    @staticmethod
    def _run(command: list[str], cwd: Path) -> str:
        env = {**os.environ, "GOWORK": "off", "CGO_ENABLED": "0"}
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BuildError(f"`{' '.join(command)}` failed:\n{result.stderr.strip()[-3000:]}")
        return result.stdout
