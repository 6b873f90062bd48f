"""Where dry-run's bytes come from: the spec file in PATH, and the document in a local file or in SSM.

These are dry-run's edges of `prepare` (the daemon's are S3 and SSM). For a zip PATH the spec bytes
come from `artifacts.read_zip_member`, as the daemon reads them from the input artifact; for a
directory the file is read with the same size check (`check_spec_size`) and the same missing-file
message (`missing_spec_message`, files listed relative to PATH), and never from outside PATH (a
symbolic link leading out is refused: an artifact would not hold its target). `.git/` is left out of
a directory, as it is out of a CodePipeline source artifact; nothing else is.

A document NAME is looked up as ``<dir>/<NAME>.yml|.yaml|.json`` in ``--documents-dir`` (default
``./ssm``, else ``PATH/ssm``). cfn/documents.yml deploys ``ssm/linux.yml`` as
``codepipeline-ssm-linux``, so a name with that prefix is looked up without it too: ``linux`` and
``codepipeline-ssm-linux`` both find ``ssm/linux.yml``. ``--aws`` fetches the document as the daemon
does (`handler.DocumentCache`: DescribeDocument resolves the version, GetDocument), through the
standard boto3 chain.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from worker.artifacts import (
    check_spec_size,
    missing_spec_message,
    read_zip_member,
    spec_folder_error,
)
from worker.config import Config
from worker.errors import (
    ConfigFileError,
    DocumentError,
    SpecError,
    WorkerError,
    classify,
)
from worker.handler import DocumentCache
from worker.ssmdoc import Document, load_document

if TYPE_CHECKING:
    from worker.dryrun.command import Options

DEPLOYED_PREFIX = "codepipeline-ssm-"  # cfn/documents.yml's NamePrefix default
DOCUMENT_SUFFIXES = (".yml", ".yaml", ".json")


def artifact_files(root: Path) -> list[Path]:
    """The files a source artifact of `root` would hold, in a stable order (`.git/` left out)."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        found += [Path(folder, name) for name in sorted(names)]
    return found


def read_spec(path: Path, member: str, max_bytes: int) -> bytes:
    """The bytes of the spec file `member` (a checked SpecFile) in PATH, read and checked as the daemon
    reads them from the artifact, and never from outside PATH."""
    if path.is_file():
        try:
            with path.open("rb") as archive:
                return read_zip_member(archive, str(path), member, max_bytes=max_bytes)
        except OSError as exc:
            raise SpecError(f"input artifact {str(path)!r} cannot be read ({exc.strerror}); make it readable") from exc
    if not path.is_dir():
        raise SpecError(f"{path}: no such directory or file; give a checkout directory or an artifact zip")
    target = path / member
    real = Path(os.path.realpath(target))
    if not real.is_relative_to(path.resolve()):
        raise SpecError(f"spec file {member!r} in {path} leads outside it (a symbolic link to {real}); the worker "
                        "never reads outside the input artifact: commit the file itself")
    if target.is_dir():
        raise spec_folder_error(member, str(path))
    if not target.exists():
        files = [p.relative_to(path).as_posix() for p in artifact_files(path)]
        raise SpecError(missing_spec_message(member, str(path), files))
    if not target.is_file():
        raise SpecError(f"spec file {member!r} in {path} is not a regular file; commit the spec file as a plain file")
    check_spec_size(member, target.stat().st_size, max_bytes)
    try:
        with target.open("rb") as file:
            raw = file.read(max_bytes + 1)
    except OSError as exc:
        raise SpecError(f"spec file {member!r} in {path} cannot be read ({exc.strerror}); make it readable") from exc
    check_spec_size(member, len(raw), max_bytes)  # it grew since the check above
    return raw


def _documents_dir(options: Options) -> Path | None:
    if options.documents_dir is not None:
        return options.documents_dir
    for candidate in (Path("ssm"), options.path / "ssm"):
        if candidate.is_dir():
            return candidate
    return None


def _available(folder: Path | None) -> str:
    if folder is None or not folder.is_dir():
        return f"no documents folder {folder}/" if folder else "no ssm/ folder here or in PATH"
    names = sorted(p.stem for p in folder.iterdir() if p.suffix in DOCUMENT_SUFFIXES)
    return f"documents in {folder}/: {', '.join(names) or 'none'}"


def document_name(options: Options) -> str:
    """The DocumentName a pipeline would give: checked against allowed_documents and put in the request.

    --aws: the name as given. A local document: ``--document-name``, else the file's stem for a file,
    else the name as given. Nothing is looked up yet (`locate` does, after the allow-list check).
    """
    given = options.document
    if not given:
        needed = "--aws needs --document NAME: the action's DocumentName" if options.aws else \
            f"no --document: give the action's DocumentName or a document file; {_available(_documents_dir(options))}"
        raise DocumentError(needed)
    if options.aws:
        return given
    return options.document_name or (Path(given).stem if Path(given).is_file() else given)


def locate(options: Options) -> Path:
    """The file of a local document (rules in the module docstring)."""
    given = options.document or ""
    if Path(given).is_file():
        return Path(given)
    folder = _documents_dir(options)
    if "/" in given or given.endswith(DOCUMENT_SUFFIXES):
        raise DocumentError(f"document file {given} not found")
    stems = dict.fromkeys((given, given.removeprefix(DEPLOYED_PREFIX)))
    for stem, suffix in itertools.product(stems, DOCUMENT_SUFFIXES):
        if folder and (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    looked = " or ".join(f"{s}.yml|.yaml|.json" for s in stems)
    raise DocumentError(f"document {given!r} not found: looked for {looked}; {_available(folder)}; "
                        "or use --documents-dir, --document FILE, or --aws")


def load_file(file: Path) -> Document:
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise DocumentError(f"document file {file} cannot be read ({exc.strerror}); make it readable") from exc
    return load_document(content, source=str(file))


def fetch(name: str, version: str, config: Config) -> tuple[str, Document]:
    """--aws: the resolved version and the document, fetched as the daemon fetches it."""
    session = boto3.session.Session(region_name=config.region)
    if not session.region_name:
        raise ConfigFileError("--aws: no AWS region; set AWS_REGION (or 'region' in --config)")
    try:
        return DocumentCache(session.client("ssm")).get(name, version)
    except WorkerError:
        raise
    except Exception as exc:
        raise classify(exc, f"fetching document {name!r}") from exc
