"""The documentation stays true to the code: every link in README.md and docs/*.md resolves, and every command
shown in their code blocks works with the current code.

- ``python -m gan_lightning.run ...``: the config composes with the overrides shown and passes the checks a run
  makes before it trains (``gan_lightning.config.validate``), in this process. A ``-m`` sweep composes its first
  job: the first value of each comma list, the first value of each ``range``, ``choice`` or ``interval``.
- ``python -m gan_lightning.<command> ...``: the command answers ``--help``, and every ``key=`` setting shown is
  listed there or is a config override (a dotted key, a config group, a top-level key of conf/config.yaml).
- ``make <target>``: the target exists in the Makefile.
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+).*?\1")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

# Hydra's own command-line flags, and whether each takes a value.
HYDRA_FLAGS = {
    "--help": False,
    "-h": False,
    "--hydra-help": False,
    "--resolve": False,
    "--version": False,
    "--cfg": True,
    "-c": True,
    "--package": True,
    "-p": True,
    "--info": False,
}


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def page_lines(page: Path) -> Iterator[Tuple[int, str, bool]]:
    """(line number, line, inside a fenced code block) for every line of a page, fence lines excluded."""
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        yield number, line, fenced


# ---------------------------------------------------------------------------------------------------- links


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: the rendered text, lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@functools.cache
def anchors(page: Path) -> frozenset:
    seen: Dict[str, int] = {}
    found = set()
    for _, line, fenced in page_lines(page):
        match = None if fenced else HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return frozenset(found)


@dataclass(frozen=True)
class Link:
    page: Path
    line: int
    target: str

    @property
    def id(self) -> str:
        return f"{rel(self.page)}:{self.line}->{self.target}"


def collect_links() -> List[Link]:
    links = []
    for page in PAGES:
        for number, line, fenced in page_lines(page):
            if not fenced:
                links += [Link(page, number, m.group(1)) for m in LINK.finditer(INLINE_CODE.sub("", line))]
    return links


LINKS = collect_links()


@pytest.mark.parametrize("link", LINKS, ids=[link.id for link in LINKS])
def test_link_resolves(link: Link):
    if re.match(r"^[a-z][a-z0-9+.-]*:", link.target):  # https:, mailto: ...: not checked offline
        return
    path, _, anchor = link.target.partition("#")
    target = (link.page.parent / path).resolve() if path else link.page
    assert target.exists(), f"{link.id}: {path} does not exist"
    assert REPO in target.parents or target == REPO, f"{link.id}: {path} points outside the repository"
    if anchor:
        assert target.is_file() and target.suffix == ".md", (
            f"{link.id}: #{anchor} on something that is not a Markdown page"
        )
        assert anchor in anchors(target), (
            f"{link.id}: {rel(target)} has no heading with the anchor #{anchor} (it has: {', '.join(sorted(anchors(target)))})"
        )


def test_readme_links_every_docs_page():
    linked = {
        (link.page.parent / link.target.partition("#")[0]).resolve() for link in LINKS if link.page.name == "README.md"
    }
    missing = [rel(page) for page in PAGES[1:] if page.resolve() not in linked]
    assert not missing, f"README.md does not link to {', '.join(missing)}"


# ------------------------------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    text: str
    program: str  # "make" or the gan_lightning command ("run", "evaluate", ...)
    args: Tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{rel(self.page)}:{self.line}"


def parse_command(page: Path, line: int, text: str) -> Optional[Command]:
    """The command a shell line of the docs runs, if it is ``python -m gan_lightning.<command>`` or ``make``."""
    words = text.split()
    while words and ENV_ASSIGNMENT.match(words[0]):
        words.pop(0)
    if not words:
        return None
    is_python = (
        re.fullmatch(r"(?:\S*/)?python3?", words[0])
        and words[1:2] == ["-m"]
        and words[2:3]
        and words[2].startswith("gan_lightning.")
    )
    if not is_python and words[0] != "make":
        return None
    tokens = shlex.split(text, comments=True)
    while ENV_ASSIGNMENT.match(tokens[0]):
        tokens.pop(0)
    if tokens[0] == "make":
        return Command(page, line, text, "make", tuple(tokens[1:]))
    return Command(page, line, text, tokens[2][len("gan_lightning.") :], tuple(tokens[3:]))


def collect_commands() -> List[Command]:
    commands = []
    for page in PAGES:
        pending: List[Tuple[int, str]] = []  # a command continued over lines ending in a backslash
        for number, line, fenced in page_lines(page):
            if not fenced:
                pending = []
                continue
            pending.append((number, line.rstrip()))
            if line.rstrip().endswith("\\"):
                continue
            first = pending[0][0]
            joined = " ".join(part[:-1] if part.endswith("\\") else part for _, part in pending)
            pending = []
            command = parse_command(page, first, joined.strip())
            if command is not None:
                commands.append(command)
    return commands


COMMANDS = collect_commands()
RUNS = [c for c in COMMANDS if c.program == "run"]
OTHERS = [c for c in COMMANDS if c.program not in ("run", "make")]
MAKES = [c for c in COMMANDS if c.program == "make"]


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_every_command_is_what_a_shell_runs_as_shown(command: Command):
    # Pasted into bash as shown: seed=range(16) unquoted is a syntax error there, 'seed=range(16)' is not.
    checked = subprocess.run(["bash", "-n", "-c", command.text], capture_output=True, text=True)
    assert checked.returncode == 0, f"{command.id}: `{command.text}` is not valid in bash: {checked.stderr.strip()}"


def test_the_docs_show_commands():
    assert len(RUNS) >= 10 and OTHERS and MAKES, "the docs' commands were not found: has the code-block format changed?"
    assert any(c.args == ("run",) for c in MAKES) and any(c.args == ("test",) for c in MAKES), (
        "README.md shows make run and make test"
    )


# ``python -m gan_lightning.run``


def top_level_split(value: str) -> List[str]:
    """``value`` split at the commas that are not inside brackets, parentheses or quotes."""
    parts, depth, quote, current = [], 0, None, ""
    for char in value:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    return parts + [current]


def first_value(value: str) -> str:
    """The value of a sweep that its first job gets: the first of ``a,b``, the start of ``range(...)`` or
    ``interval(...)``, the first of ``choice(...)``; ``tag(...)`` and casts such as ``int(...)`` unwrapped."""
    value = top_level_split(value)[0].strip()
    call = re.fullmatch(r"(\w+)\((.*)\)", value, re.S)
    if not call:
        return value
    function, arguments = call.group(1), [re.sub(r"^\s*\w+\s*=", "", a) for a in top_level_split(call.group(2))]
    if function == "tag":
        return first_value(arguments[-1])
    if function == "range" and len(arguments) == 1:
        return "0"
    if function in ("range", "interval", "choice", "sort", "shuffle", "int", "float", "str", "bool"):
        return first_value(arguments[0])
    return value


def run_overrides(command: Command) -> List[str]:
    """The overrides of one job of a documented ``gan_lightning.run`` command."""
    multirun, overrides = False, []
    arguments = iter(command.args)
    for argument in arguments:
        if argument in ("-m", "--multirun"):
            multirun = True
        elif argument in HYDRA_FLAGS:
            if HYDRA_FLAGS[argument]:
                next(arguments, None)
        elif argument.startswith("-"):
            pytest.fail(f"{command.id}: {argument} is not a flag the docs' run commands use: {command.text}")
        else:
            overrides.append(argument)
    if multirun:
        overrides = [key + sep + first_value(value) for key, sep, value in (o.partition("=") for o in overrides)]
    return overrides


@pytest.mark.parametrize("command", RUNS, ids=[c.id for c in RUNS])
def test_run_command_composes(command: Command):
    from gan_lightning.config import compose, to_config, validate

    overrides = run_overrides(command)
    try:
        validate(to_config(compose(overrides)))
    except Exception as error:
        pytest.fail(
            f"{command.id}: `{command.text}` does not compose (overrides {overrides}):\n{type(error).__name__}: {error}"
        )


# ``python -m gan_lightning.<command>``


@functools.cache
def command_help(program: str) -> Tuple[int, str]:
    """(exit status, output) of ``python -m gan_lightning.<program> --help``, run in this process."""
    from tests.helpers.commands import command

    result = command(program, ["--help"])
    return result.returncode, result.stdout + result.stderr


@functools.cache
def config_keys() -> frozenset:
    """Settings any command that takes config overrides accepts: config groups and top-level keys of conf/config.yaml."""
    from omegaconf import OmegaConf

    groups = {str(p.relative_to(CONF)) for p in CONF.rglob("*") if p.is_dir()}
    top = {str(key) for key in OmegaConf.load(CONF / "config.yaml").keys()} - {"defaults", "hydra"}
    return frozenset(groups | top)


def listed(key: str, help_text: str) -> bool:
    """Whether ``--help`` lists the setting ``key``: as ``key=...``, or as the first word of a line, or in ``[key...]``."""
    k = re.escape(key)
    return bool(re.search(rf"(?<![\w.-]){k}=|^\s*{k}(?![\w.=-])|\[{k}(?![\w.-])", help_text, re.MULTILINE))


@pytest.mark.parametrize("command", OTHERS, ids=[c.id for c in OTHERS])
def test_command_settings_are_known(command: Command):
    status, help_text = command_help(command.program)
    assert status == 0, (
        f"python -m gan_lightning.{command.program} --help: exit status {status}, not 0:\n{help_text[-2000:]}"
    )
    unknown = []
    for argument in command.args:
        word = argument.strip("[]")
        if word in ("--help", "-h", "...", "…", ""):
            continue
        key, sep, _ = word.partition("=")
        if not sep:
            pytest.fail(f"{command.id}: `{argument}` is not a key=value setting: {command.text}")
        key = key.lstrip("+~")
        if not ("." in key or key in config_keys() or listed(key, help_text)):
            unknown.append(key)
    assert not unknown, (
        f"{command.id}: {', '.join(unknown)} not among the settings `python -m gan_lightning.{command.program} --help` lists:\n{help_text}"
    )


# ``make``


@functools.cache
def make_targets() -> frozenset:
    text = (REPO / "Makefile").read_text()
    return frozenset(t for line in re.findall(r"(?m)^([^\s:=#][^:=]*):(?!=)", text) for t in line.split())


@pytest.mark.parametrize("command", MAKES, ids=[c.id for c in MAKES])
def test_make_target_exists(command: Command):
    targets = [a for a in command.args if not a.startswith("-") and "=" not in a]
    missing = [t for t in targets if t not in make_targets()]
    assert targets and not missing, f"{command.id}: no Makefile target {', '.join(missing) or '(none named)'}"
