"""The documentation, checked without MkDocs: README.md and the pages of docs/.

- every relative link points at a file that exists (from docs/, inside docs/: the site has
  nothing else), and every ``#anchor`` matches a heading of its page, slugged as MkDocs'
  table of contents (Python-Markdown's ``toc``) slugs it;
- mkdocs.yml's nav lists every page of docs/, and only pages that exist;
- README.md opens with the two commands that set up a fresh machine;
- every ``forge`` command the pages show exists, with options it has (fenced command lines
  must parse whole), and docs/cli.md has a section for every command with all its options.

Each checker returns what is wrong, so the tests at the bottom can show that it catches a
broken example.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from forge_tui.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"

OPENING_COMMANDS = (
    "bash scripts/setup.sh && .venv/bin/forge demo          "
    "# set up a fresh machine and run the demo",
    "bash scripts/setup.sh && .venv/bin/python -m pytest    "
    "# set up a fresh machine and run the tests",
)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'][^)]*)?\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, …
FORGE_INVOCATION = re.compile(r"(?:^|[\s;&|(])(?:[\w.~-]*/)*forge\s+(.*)$")
SHELL_OPERATORS = {"<", ">", ">>", "|", "||", "&", "&&", ";", "2>", "2>&1"}
SHARED_OPTIONS = {"-h", "--help", "--server", "--token"}  # described once in cli.md


def pages(docs: Path = DOCS) -> list[Path]:
    return sorted(docs.rglob("*.md"))


def all_pages() -> list[Path]:
    return [README, *pages()]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


# ----- reading Markdown ----------------------------------------------------------------------


def split_lines(text: str) -> Iterator[tuple[int, str, str | None]]:
    """``(line number, line, fence)``: ``fence`` is None outside fenced code blocks, else the
    block's info string ("" when it has none); fence lines count as inside."""
    fence: str | None = None
    info = ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, info = match.group(1), line[match.end() :].strip()
            yield number, line, info
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            yield number, line, info
        else:
            yield number, line, None


def prose(text: str) -> Iterator[tuple[int, str]]:
    """Lines outside code blocks, with code spans blanked (links in code are not links)."""
    for number, line, fence in split_lines(text):
        if fence is None:
            yield number, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def slugify(title: str) -> str:
    """Python-Markdown's ``toc.slugify`` (MkDocs' default): ASCII, punctuation dropped,
    lowercase, runs of spaces and hyphens to one hyphen."""
    value = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def heading_text(markdown: str) -> str:
    """The text of a heading as the table of contents sees it: inline markup removed."""
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(2).strip())
        return f"\0{len(spans) - 1}\0"

    text = CODE_SPAN.sub(keep, markdown)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"(\*\*|__|\*|(?<!\w)_|_(?!\w))", "", text)  # emphasis markers
    return re.sub(r"\0(\d+)\0", lambda m: spans[int(m.group(1))], text)


def anchors(path: Path) -> set[str]:
    """The ids the table of contents gives the headings of ``path`` (repeats get ``_1``, …)."""
    ids: set[str] = set()
    for _, line, fence in split_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line) if fence is None else None
        if match:
            slug = base = slugify(heading_text(match.group(2)))
            count = 0
            while slug in ids:
                count += 1
                slug = f"{base}_{count}"
            ids.add(slug)
    return ids


def links(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in prose(path.read_text(encoding="utf-8")):
        for match in INLINE_LINK.finditer(line):
            yield number, match.group(1)
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            yield number, definition.group(1)


# ----- the checks ----------------------------------------------------------------------------


def broken_links(path: Path, *, root: Path = ROOT, docs: Path = DOCS) -> list[str]:
    """What is wrong with the relative links of ``path``; a page of ``docs`` may link only
    inside ``docs`` (MkDocs publishes nothing else)."""
    problems = []
    in_docs = path.resolve().is_relative_to(docs.resolve())
    for number, target in links(path):
        where = f"{_id(path)}:{number}: link {target!r}"
        if not target:
            problems.append(f"{where} is empty")
            continue
        if EXTERNAL.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part)
        if file_part.startswith("/"):
            problems.append(f"{where} is absolute; write it relative to the page")
            continue
        destination = (path.parent / file_part).resolve() if file_part else path.resolve()
        if not destination.exists():
            problems.append(f"{where}: {file_part} does not exist")
            continue
        if in_docs and not destination.is_relative_to(docs.resolve()):
            problems.append(
                f"{where} leaves docs/: the site has only docs/ (name the file in code)"
            )
            continue
        if not destination.is_relative_to(root.resolve()):
            problems.append(f"{where} leaves the repository")
            continue
        if anchor:
            if destination.suffix != ".md":
                problems.append(f"{where}: an anchor into a file that is not Markdown")
            elif unquote(anchor) not in anchors(destination):
                problems.append(
                    f"{where}: no heading of {destination.name} has the anchor #{anchor} "
                    f"(it has: {', '.join(sorted(anchors(destination)))})"
                )
    return problems


def nav_pages(nav: object) -> list[str]:
    """The page paths of an mkdocs ``nav`` (nested sections flattened; external URLs left out)."""
    if isinstance(nav, str):
        return [] if EXTERNAL.match(nav) else [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def nav_mismatches(config_path: Path = MKDOCS) -> list[str]:
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    docs = config_path.parent / config.get("docs_dir", "docs")
    listed = nav_pages(config.get("nav", []))
    present = {p.relative_to(docs).as_posix() for p in pages(docs)}
    problems = [f"nav lists {page} twice" for page in sorted(set(listed)) if listed.count(page) > 1]
    problems += [
        f"nav lists {page}, which is not in {docs.name}/" for page in sorted(set(listed) - present)
    ]
    problems += [
        f"{docs.name}/{page} is not in mkdocs.yml's nav" for page in sorted(present - set(listed))
    ]
    return problems


def opening_problems(readme: Path = README) -> list[str]:
    """README.md starts with its title, then a code block holding exactly the two commands."""
    lines = [line for line in readme.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        return ["README.md does not start with a '# ' title"]
    block = lines[1:5]
    expected = ["```", *OPENING_COMMANDS, "```"]
    if block != expected:
        return [
            f"README.md must open with\n{chr(10).join(expected)}\nbut has\n{chr(10).join(block)}"
        ]
    return []


# ----- forge commands in the pages -----------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and nested subcommand: ``(("user", "add"), its parser)``, …"""
    for name, sub in _subcommands(parser).items():
        yield (*prefix, name), sub
        yield from command_paths(sub, (*prefix, name))


def _words(command_line: str) -> list[str]:
    """The arguments after ``forge``, up to a shell operator or comment."""
    try:
        words = shlex.split(command_line, comments=True)
    except ValueError:  # an unbalanced quote in a placeholder such as <ada's token>
        words = command_line.split("#", 1)[0].split()
    for i, word in enumerate(words):
        if word in SHELL_OPERATORS or word.startswith(("<(", ">(")):
            return words[:i]
    return words


def unknown_command_words(words: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Commands and options in ``words`` that ``forge`` does not have (positionals unchecked)."""
    problems = []
    name = "forge"
    sub = _subcommands(parser)
    rest = list(words)
    while sub and rest and not rest[0].startswith("-"):
        word = rest.pop(0)
        if word not in sub:
            return [f"`{name} {word}`: no such command (choices: {', '.join(sub)})"]
        name, parser = f"{name} {word}", sub[word]
        sub = _subcommands(parser)
    for word in rest:
        if word.startswith("-") and word != "-":
            option = word.split("=", 1)[0]
            if option not in parser._option_string_actions:
                problems.append(f"`{name}` has no option {option}")
    return problems


def parse_problems(words: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """argparse's complaint about a whole command line, if any."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(words)
    except SystemExit as exc:
        if exc.code:
            message = stderr.getvalue().strip().splitlines()
            return [message[-1] if message else f"exit {exc.code}"]
    return []


def command_problems(path: Path, parser: argparse.ArgumentParser) -> list[str]:
    """``forge`` commands on ``path`` that do not exist: lines of code blocks must parse whole
    (except in ``text`` blocks, which hold synopses); commands quoted in prose (often without
    their arguments) must name real commands and options."""
    problems = []
    text = path.read_text(encoding="utf-8")
    for number, line, fence in split_lines(text):
        if fence == "text":
            continue
        in_code = fence is not None
        commands = [line] if in_code else [m.group(2) for m in CODE_SPAN.finditer(line)]
        for command in commands:
            match = FORGE_INVOCATION.search(command)
            if not match:
                continue
            words = _words(match.group(1))
            found = unknown_command_words(words, parser)
            if in_code and not found:
                found = parse_problems(words, parser)
            problems += [f"{_id(path)}:{number}: {command.strip()!r}: {p}" for p in found]
    return problems


def _sections(path: Path) -> dict[str, str]:
    """Heading text → the text up to the next heading."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for _, line, fence in split_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line) if fence is None else None
        if match:
            current = sections.setdefault(heading_text(match.group(2)).strip(), [])
        else:
            current.append(line)
    return {title: "\n".join(body) for title, body in sections.items()}


def cli_reference_gaps(cli_page: Path, parser: argparse.ArgumentParser) -> list[str]:
    """Commands without a ``forge …`` section in ``cli_page``, and options a section omits."""
    sections = _sections(cli_page)
    problems = []
    for path, sub in command_paths(parser):
        title = "forge " + " ".join(path)
        if title not in sections:
            problems.append(f"{cli_page.name} has no section '{title}'")
            continue
        for action in sub._actions:
            options = [o for o in action.option_strings if o not in SHARED_OPTIONS]
            if options and not any(f"`{o}" in sections[title] for o in options):
                problems.append(f"{cli_page.name}, '{title}': option {options[0]} is not described")
    return problems


# ----- tests of the real pages ---------------------------------------------------------------


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


class TestPages:
    def test_there_are_pages(self) -> None:
        assert (DOCS / "index.md").exists()
        assert len(pages()) >= 5

    @pytest.mark.parametrize("path", all_pages(), ids=_id)
    def test_links_resolve(self, path: Path) -> None:
        assert broken_links(path) == []

    def test_nav_lists_every_page(self) -> None:
        assert nav_mismatches() == []

    def test_mkdocs_config(self) -> None:
        config = yaml.safe_load(MKDOCS.read_text(encoding="utf-8"))
        assert config["docs_dir"] == "docs"
        assert config["theme"]["name"] == "material"

    def test_readme_opens_with_the_two_commands(self) -> None:
        assert opening_problems() == []


class TestCommands:
    @pytest.mark.parametrize("path", all_pages(), ids=_id)
    def test_commands_exist(self, path: Path, parser: argparse.ArgumentParser) -> None:
        assert command_problems(path, parser) == []

    def test_cli_page_covers_every_command_and_option(
        self, parser: argparse.ArgumentParser
    ) -> None:
        assert cli_reference_gaps(DOCS / "cli.md", parser) == []


# ----- the checkers catch broken examples ----------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class TestCheckersCatchBreakage:
    def test_slugs_as_mkdocs_makes_them(self) -> None:
        assert slugify(heading_text("Relay (`scripts/bench_relay.py`)")) == (
            "relay-scriptsbench_relaypy"
        )
        assert slugify(heading_text("Accounts, tokens and roles")) == "accounts-tokens-and-roles"
        assert slugify(heading_text("**Bold** [link](x.md) — café")) == "bold-link-cafe"

    def test_links(self, tmp_path: Path) -> None:
        docs = tmp_path / "docs"
        _write(docs / "b.md", "# Page B\n\n## A section\n\n## A section\n")
        _write(tmp_path / "outside.md", "# Outside\n")
        page = _write(
            docs / "a.md",
            "# Page A\n\n"
            "[fine](b.md#a-section) [repeat](b.md#a-section_1) [self](#page-a) [web](https://x.org)\n"
            "[missing file](c.md)\n"
            "[missing anchor](b.md#no-such-section)\n"
            "[missing here](#nowhere)\n"
            "[outside docs](../outside.md)\n"
            "`[in code](c.md)`\n\n"
            "```\n[in a block](c.md)\n```\n",
        )
        problems = broken_links(page, root=tmp_path, docs=docs)
        assert len(problems) == 4, problems
        assert "c.md does not exist" in problems[0]
        assert "#no-such-section" in problems[1]
        assert "#nowhere" in problems[2]
        assert "leaves docs/" in problems[3]

    def test_nav(self, tmp_path: Path) -> None:
        _write(tmp_path / "docs" / "index.md", "# Index\n")
        _write(tmp_path / "docs" / "unlisted.md", "# Unlisted\n")
        config = _write(
            tmp_path / "mkdocs.yml",
            "site_name: X\ndocs_dir: docs\n"
            "nav:\n  - Home: index.md\n  - Part:\n      - Gone: gone.md\n"
            "  - Web: https://example.org\n",
        )
        assert nav_mismatches(config) == [
            "nav lists gone.md, which is not in docs/",
            "docs/unlisted.md is not in mkdocs.yml's nav",
        ]

    def test_opening(self, tmp_path: Path) -> None:
        good = "# Forge\n\n```\n" + "\n".join(OPENING_COMMANDS) + "\n```\n\nText.\n"
        assert opening_problems(_write(tmp_path / "good.md", good)) == []
        changed = good.replace(".venv/bin/forge demo", ".venv/bin/forge tui")
        assert opening_problems(_write(tmp_path / "changed.md", changed))
        moved = "# Forge\n\nIntro first.\n\n" + good.split("\n", 2)[2]
        assert opening_problems(_write(tmp_path / "moved.md", moved))

    def test_commands(self, tmp_path: Path, parser: argparse.ArgumentParser) -> None:
        page = _write(
            tmp_path / "page.md",
            "Fine: `forge user add --admin`, `forge demo`, `jq .t f | forge login URL -`.\n"
            "Wrong: `forge frobnicate`, `forge run --fast`.\n\n"
            "```\n"
            "forge run cifar10 train-custom --detach   # fine\n"
            "FORGE_TOKEN=<ada's token> forge tui --project cifar10 --name ada\n"
            "forge login http://h - < <(cat token)\n"
            "forge export p arch > out.py\n"
            "forge run cifar10          # the pipeline is missing\n"
            "forge user grant ada p boss\n"
            "```\n",
        )
        problems = command_problems(page, parser)
        assert len(problems) == 4, problems
        assert "no such command" in problems[0]
        assert "has no option --fast" in problems[1]
        assert "required" in problems[2]
        assert "invalid choice" in problems[3]

    def test_cli_reference(self, tmp_path: Path, parser: argparse.ArgumentParser) -> None:
        full = (DOCS / "cli.md").read_text(encoding="utf-8")
        assert cli_reference_gaps(_write(tmp_path / "cli.md", full), parser) == []
        without_section = full.replace("### forge tags", "### forge labels")
        gaps = cli_reference_gaps(_write(tmp_path / "cli.md", without_section), parser)
        assert gaps == ["cli.md has no section 'forge tags'"]
        without_option = full.replace("`--exist-ok`", "`--exists`")
        gaps = cli_reference_gaps(_write(tmp_path / "cli.md", without_option), parser)
        assert gaps == ["cli.md, 'forge project create': option --exist-ok is not described"]
