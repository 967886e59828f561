"""The README is a front door (two screens), and every link of the documentation leads somewhere."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
SCREEN_LINES = 50


def test_the_readme_fits_two_screens_and_links_the_rest():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 2 * SCREEN_LINES
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, page.name


def test_every_relative_link_of_the_documentation_exists():
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if "://" not in target:
                assert (page.parent / target).resolve().exists(), (page.name, target)


# A command as the documentation shows it typed: a code block's line, or a code span, that starts with
# `python -m harness` or `harness`, then its words up to a shell operator or a comment (a block's line may
# continue with \). A span of the command's name alone names it (`harness logs` reads them); a usage line
# (`[--format FORMAT]`) is no command typed as is.
COMMAND = re.compile(r"(?:python -m harness|harness)((?: (?!&&|\||;|#|>)\S+)*)")
USAGE = re.compile(r"[\[\]|]|(?<!\S)[A-Z_]{2,}(?!\S)|\.\.\.")


def documented_commands() -> list[tuple[str, list[str]]]:
    found = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text().replace("\\\n", " ")
        blocks = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S) for line in block.splitlines()]
        spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        for code, least in [(line, 1) for line in blocks] + [(span, 2) for span in spans]:
            if not code.lstrip().startswith(("python -m harness", "harness ")):
                continue  # prose or a message that names a command, not a line typed
            for command in re.split(r"&&|\|\||[|;>]", code.split(" #")[0]):
                match = COMMAND.fullmatch(" ".join(command.split()))
                if match and len(match.group(1).split()) >= least and not USAGE.search(match.group(1)):
                    found.append((page.name, [w.strip("'\"").replace("$SWEEP", "s1") for w in match.group(1).split()]))
    return found


def test_every_command_line_of_the_documentation_is_one_the_command_line_reads():
    """Each command the README and docs/ show as typed parses as harness's command line (its command, its
    options and their values); usage lines with placeholders are held to the parser by test_command_line."""
    from harness.cli import build_parser

    commands = documented_commands()
    assert len(commands) >= 15 and {"sweep", "status", "leaderboard", "data", "cluster"} <= {argv[0] for _, argv in commands}
    parser = build_parser()
    for page, argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit as stopped:
            raise AssertionError(f"{page}: `harness {' '.join(argv)}` is not a command the command line reads") from stopped
