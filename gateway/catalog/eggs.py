"""Python eggs of Scrapy projects: building the platform's own, and reading any without running it.

An egg is arbitrary code, so the gateway never imports one: spider names come from scrapyd (which
runs ``scrapy list`` in a child process) and module paths from reading the source with ``ast``.
"""

from __future__ import annotations

import ast
import configparser
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gateway.errors import BadRequest

MAX_EGG_BYTES = 100 * 1024 * 1024
_MAX_SOURCE_BYTES = 2 * 1024 * 1024
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class EggContents:
    """What reading an egg tells: its settings module and where each spider class is defined."""

    sha256: str
    settings_module: str | None
    spider_paths: dict[str, str] = field(default_factory=dict)


def build_egg(package_dir: Path, settings_module: str) -> bytes:
    """A deterministic egg of one package: same sources, same bytes."""
    package = package_dir.name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as egg:
        for path in sorted(package_dir.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                continue
            _add(egg, path.relative_to(package_dir.parent).as_posix(), path.read_bytes())
        _add(egg, "EGG-INFO/PKG-INFO", f"Metadata-Version: 1.1\nName: {package}\nVersion: 1.0\n".encode())
        _add(egg, "EGG-INFO/entry_points.txt", f"[scrapy]\nsettings = {settings_module}\n".encode())
        _add(egg, "EGG-INFO/top_level.txt", f"{package}\n".encode())
        _add(egg, "EGG-INFO/zip-safe", b"\n")
    return buffer.getvalue()


def read_egg(egg: bytes) -> EggContents:
    """Check that ``egg`` is a Scrapy project egg and find its spiders' module paths."""
    if len(egg) > MAX_EGG_BYTES:
        raise BadRequest(f"egg is larger than {MAX_EGG_BYTES // (1024 * 1024)} MiB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(egg))
    except zipfile.BadZipFile:
        raise BadRequest("egg is not a ZIP file (if using curl, use egg=@path not egg=path)") from None
    try:
        with archive:
            return _read_archive(archive, hashlib.sha256(egg).hexdigest())
    # zipfile raises NotImplementedError for a compression method it cannot read.
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError) as exc:
        raise BadRequest(f"egg is not a readable ZIP file: {exc}") from None


def _read_archive(archive: zipfile.ZipFile, sha256: str) -> EggContents:
    settings_module = _settings_module(archive)
    if settings_module is None:
        return EggContents(sha256=sha256, settings_module=None)
    project_root = PurePosixPath(*settings_module.split(".")[:1])
    spider_paths: dict[str, str] = {}
    for package in _spider_modules(archive, settings_module):
        prefix = package.replace(".", "/")
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".py") or info.file_size > _MAX_SOURCE_BYTES:
                continue
            if not (name.startswith(prefix + "/") or name == prefix + ".py"):
                continue
            path = PurePosixPath(name)
            shown = str(path.relative_to(project_root)) if path.is_relative_to(project_root) else name
            for spider in _spider_names(archive.read(info)):
                spider_paths.setdefault(spider, shown)
    return EggContents(sha256=sha256, settings_module=settings_module, spider_paths=spider_paths)


def _add(egg: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    egg.writestr(info, data)


def _settings_module(archive: zipfile.ZipFile) -> str | None:
    try:
        text = archive.read("EGG-INFO/entry_points.txt").decode("utf-8", errors="replace")
    except KeyError:
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return parser.get("scrapy", "settings", fallback=None)


def _spider_modules(archive: zipfile.ZipFile, settings_module: str) -> list[str]:
    """SPIDER_MODULES as the settings source spells it; the settings' sibling ``spiders`` otherwise."""
    default = [settings_module.rpartition(".")[0] + ".spiders" if "." in settings_module else "spiders"]
    try:
        source = archive.read(settings_module.replace(".", "/") + ".py")
        tree = ast.parse(source)
    except (KeyError, SyntaxError, ValueError):
        return default
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "SPIDER_MODULES" for target in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return default
            if isinstance(value, list | tuple) and all(isinstance(module, str) for module in value):
                return list(value)
    return default


def _spider_names(source: bytes) -> list[str]:
    """Names assigned as a ``name = "..."`` class attribute in a module's source."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    names = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            target, value = _assigned(statement)
            if target == "name" and isinstance(value, ast.Constant) and isinstance(value.value, str):
                names.append(value.value)
    return names


def _assigned(statement: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), statement.value
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id, statement.value
    return None, None
