"""The command lines the README and docs/ show typed, as the tests that hold them to the command line read
them: a code block's line, or a code span, that starts with `python -m harness` or `harness`."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# One harness command of a line (not a word that holds "harness", as `cat harness.log` or a path does): its
# words up to a shell operator or a comment (a block's line may continue with \). A span of the command's name
# alone names it (`harness logs` reads them); a usage line (`[--format FORMAT]`) is no command typed as is.
COMMAND = re.compile(r"(?<![\w./-])(?:python -m harness|harness)(?![\w./-])((?: (?!&&|\||;|#|>)\S+)*)")
USAGE = re.compile(r"[\[\]|]|(?<!\S)[A-Z_]{2,}(?!\S)|\.\.\.")


def documented_lines() -> list[tuple[str, str]]:
    """Each page's command lines in the page's order (blocks first, then spans), comments cut."""
    found = []
    for page in PAGES:
        text = page.read_text().replace("\\\n", " ")
        blocks = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S) for line in block.splitlines()]
        spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        for code, least in [(line, 1) for line in blocks] + [(span, 2) for span in spans]:
            line = " ".join(code.split(" #")[0].split())
            if not line.startswith(("python -m harness ", "harness ")):
                continue  # prose or a message that names a command, not a line typed
            commands = [match.group(1).split() for match in COMMAND.finditer(line)]
            if all(len(argv) >= least and not USAGE.search(" ".join(argv)) for argv in commands):
                found.append((page.name, line))
    return found


def documented_commands() -> list[tuple[str, list[str]]]:
    """Each harness command of those lines, as its words (quotes dropped)."""
    return [(page, [word.strip("'\"") for word in match.group(1).split()])
            for page, line in documented_lines() for match in COMMAND.finditer(line)]
