"""What a result file may say about the person and machine that made it: paths under the home
folder as ~/…, and no user name or host name, so a result can be posted publicly as it is."""

from __future__ import annotations

import getpass
import os
import re
import socket
from pathlib import Path


def home_folders() -> list[str]:
    """The home folder as Path.home() and $HOME give it, each also with links resolved:
    the longest first, so the most specific prefix is the one replaced."""
    found = {str(Path.home()), os.environ.get("HOME", "")}
    found |= {os.path.realpath(h) for h in found if h}
    return sorted((h.rstrip("/\\") for h in found if h.rstrip("/\\")), key=len, reverse=True)


def public_path(path: str | os.PathLike[str]) -> str:
    """`path` with a leading home folder written as ~ (e.g. /home/ada/data → ~/data)."""
    text = str(path)
    for home in home_folders():
        if text == home:
            return "~"
        if text.startswith(home) and text[len(home)] in "/\\":
            return "~" + text[len(home) :]
    return text


def public_text(text: str) -> str:
    """Free text (a check's found, expected and fix) with every home folder written as ~, and
    the user name in a path and this machine's host name replaced by <user> and <host>."""
    for home in home_folders():
        text = re.sub(r"(?<![\w.~/\\-])" + re.escape(home) + r"(?=[/\\\s:;,)'\"]|$)", "~", text)
    user = _user_name()
    if user:
        # A path component, wherever it stands (/home/ada, /scratch/ada): a user name in a
        # public file is the leak this prevents; a folder that shares the name is the price.
        text = re.sub(rf"(?<=[/\\]){re.escape(user)}(?=[/\\\s:;,)'\"]|$)", "<user>", text)
    for host in _host_names():
        # A whole word, not a file name's stem (host "vm" and "vm.sh").
        text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w.-])", "<host>", text)
    return text


def private_words(text: str) -> list[str]:
    """What `text` says of this machine's person that a public file may not: its home folder,
    user name (as a path component) or host name (as a word)."""
    found = []
    homes = (rf"(?<![\w.~/\\-]){re.escape(h)}(?=[/\\\s:;,)'\"]|$)" for h in home_folders())
    if any(re.search(home, text) for home in homes):
        found.append("your home folder")
    user = _user_name()
    if user and re.search(rf"(?<=[/\\]){re.escape(user)}(?=[/\\\s:;,)'\"]|$)", text):
        found.append(f"your user name ({user})")
    for host in _host_names():
        if re.search(rf"(?<![\w.-]){re.escape(host)}(?![\w.-])", text):
            found.append(f"this machine's host name ({host})")
            break
    return found


def _user_name() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER, as in some containers
        return None


def _host_names() -> list[str]:
    """This machine's host name, fully qualified and short; not "localhost", which names none."""
    name = socket.gethostname()
    names = {name, name.split(".")[0]} - {"", "localhost"}
    return sorted(names, key=len, reverse=True)
