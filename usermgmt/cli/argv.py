"""Global options before or after the command words (the CLI contract).

Click takes an option only at the level that declares it: ``--database-url``,
``--context`` and ``--debug`` belong to the root, ``-o/--output`` to each
command that prints records. :func:`normalise` moves them to where Click
expects them before anything is parsed, so ``usermgmt users list --debug`` and
``usermgmt -o json users list`` mean what they say. Nothing after ``--`` is
touched, and ``login``/``logout`` keep their own ``--context`` (the context to
write or end).
"""

from __future__ import annotations

from collections.abc import Sequence

ROOT_VALUED = ("--database-url", "--context")
ROOT_FLAGS = ("--debug",)
OUTPUT_NAMES = ("-o", "--output")
OWN_CONTEXT = frozenset({"login", "logout"})  # their --context is theirs, not the root's


def _name(token: str) -> str:
    return token.split("=", 1)[0] if token.startswith("--") else token


def _is_output(token: str) -> bool:
    return _name(token) in OUTPUT_NAMES or (token.startswith("-o") and not token.startswith("--"))


def _takes_next(token: str) -> bool:
    """``--opt VALUE`` rather than ``--opt=VALUE`` or ``-oVALUE``."""
    return token in (*ROOT_VALUED, *OUTPUT_NAMES)


def normalise(args: Sequence[str]) -> list[str]:
    """``args`` with root options first and ``-o`` after the command words."""
    args = list(args)
    front: list[str] = []
    output: list[str] = []
    i = 0
    # Before the first command word: root options stay; -o moves behind the words.
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        token = args[i]
        width = 2 if _takes_next(token) and i + 1 < len(args) else 1
        (output if _is_output(token) else front).extend(args[i : i + width])
        i += width
    words = args[i:]
    if not words:
        return front + output
    own_context = words[0] in OWN_CONTEXT
    rest: list[str] = []
    j = 0
    while j < len(words):
        token = words[j]
        if token == "--":
            rest.extend(words[j:])
            break
        name = _name(token)
        if name in ROOT_FLAGS and token == name:
            front.append(token)
        elif name in ROOT_VALUED and not (own_context and name == "--context"):
            if token != name:  # --database-url=URL
                front.append(token)
            elif j + 1 < len(words):
                front.extend(words[j : j + 2])
                j += 1
            else:  # no value: left for Click to say so
                rest.append(token)
        else:
            rest.append(token)
        j += 1
    if output:
        cut = rest.index("--") if "--" in rest else len(rest)
        rest[cut:cut] = output
    return front + rest
