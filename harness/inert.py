"""Text from disk or the user (a record's error, a perflog field, a path), made inert before it reaches an
output that would take part of it as orders: a terminal (control characters, escape sequences), rich's
markup, matplotlib's mathtext, a Markdown page's raw HTML. One function per kind, called where the text
enters that output."""
import html
import re

# C0 and C1 controls and DEL (ESC starts the sequences that retitle or clear a terminal), and the
# bidirectional overrides that make a line read otherwise than it is; newline and tab stay
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def for_terminal(text: str) -> str:
    """Control characters shown as their escapes ('\\x1b'), never sent to the terminal as they are."""
    return CONTROL.sub(lambda found: repr(found.group())[1:-1], text)


def for_markup(text: str) -> str:
    """Text rich prints as written: '[/]' in a path is no closing tag."""
    from rich.markup import escape

    return escape(text)


def for_mathtext(text: str) -> str:
    """Text matplotlib draws as written: a '$' opens no mathtext."""
    return text.replace("$", r"\$")


def for_markdown(text: str) -> str:
    """Text a Markdown page shows as written: raw HTML (<script>, <img onerror=...>) as its characters, a
    '|' no end of a table's cell."""
    return html.escape(text, quote=False).replace("|", "\\|")
