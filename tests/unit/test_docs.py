"""The README is a front door (two screens), every link of the documentation leads somewhere, and every
command line it shows is one the command line reads (tests/test_readme_commands.py runs them)."""
import re
from pathlib import Path

from docs_helpers import documented_commands

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
