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
