"""allowedPattern across three regex dialects: Python re (the worker), Java (the SSM API), Go RE2 (SSM Agent).

A value reaches the script only if the API and the agent both accept it, and the worker has to
predict that with Python's ``re``. This module reads a pattern the way all three would: it
translates the few constructs Python spells differently, matches whole values, and names every
construct whose meaning differs between the engines so the lint can say how to write it portably.

The evidence for whole-value matching:

- SSM Agent checks it with Go ``regexp.MatchString`` (agent/framework/docparser/paramvalidator/
  allowedregexparamvalidator/allowedregexparamvalidator.go): an unanchored *search*.
- The SSM API checks it first with Java regex (user guide, documents-syntax-data-elements-parameters.md:
  "Systems Manager performs two validations for allowedPattern ... Java regex library at the API
  level ... GO regexp library" on the agent). Whether Java uses ``matches()`` or ``find()`` is not
  stated; AWS's own documents are written for whole-value matching (AWS-RunShellScript's
  executionTimeout pattern ``([1-9][0-9]{0,4})|...|(172800)`` only caps the value at 172800, as its
  description says, if the whole value must match) and CloudFormation's AllowedPattern, the same
  kind of Java service check, is documented as matching the entire value.
- A value reaches the script only if both accept it, and a whole-value match implies a search
  match, so this module matches the whole value (``re.fullmatch``), compiled with ``re.ASCII``
  because ``\\d``, ``\\w`` and ``\\b`` are ASCII-only in Java and Go RE2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class _Token:
    kind: str  # escape | class | open | close | alt | quant | anchor | char
    text: str
    notes: tuple[str, ...] = ()


def _class_end(pattern: str, start: int) -> tuple[int, tuple[str, ...]]:
    """Index after the bracket expression at ``start`` and what is odd inside it."""
    notes: list[str] = []
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if pattern[i + 1:i + 2] in ("p", "P"):
                notes.append("property")
            i += 2
            continue
        if pattern.startswith("[:", i) and (end := pattern.find(":]", i + 2)) != -1:
            notes.append("posix")
            i = end + 2
            continue
        if pattern.startswith("&&", i):
            notes.append("nested")
        if c == "[":
            notes.append("nested")
            depth += 1
        elif c == "]":
            if depth == 0:
                return i + 1, tuple(notes)
            depth -= 1
        i += 1
    return len(pattern), tuple(notes)


def _tokens(pattern: str) -> Iterator[_Token]:
    """A rough lexer shared by the portability check and the Python translation (not a parser)."""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            end = i + 2
            if pattern[i + 1:i + 2] in ("p", "P", "x", "k") and pattern[end:end + 1] in ("{", "<"):
                close = pattern.find("}" if pattern[end] == "{" else ">", end)
                end = len(pattern) if close == -1 else close + 1
            elif pattern[i + 1:i + 2] == "Q":
                close = pattern.find("\\E", end)
                end = len(pattern) if close == -1 else close + 2
            yield _Token("escape", pattern[i:end])
            i = end
        elif c == "[":
            end, notes = _class_end(pattern, i)
            yield _Token("class", pattern[i:end], notes)
            i = end
        elif c == "(":
            match = re.match(r"\(\?(P?<[A-Za-z_][A-Za-z0-9_]*>|<=|<!|[=!>:]|[a-zA-Z-]+[:)])?", pattern[i:])
            text = match.group(0) if match else "("
            yield _Token("open", text)
            i += len(text)
        elif c == ")":
            yield _Token("close", c)
            i += 1
        elif c == "|":
            yield _Token("alt", c)
            i += 1
        elif c in "*+?":
            yield _Token("quant", pattern[i:i + 2] if pattern[i + 1:i + 2] in ("?", "+") else c)
            i += 2 if pattern[i + 1:i + 2] in ("?", "+") else 1
        elif c == "{" and (match := re.match(r"\{(\d*)(,?)(\d*)\}[?+]?", pattern[i:])) and (match[1] or match[3]):
            yield _Token("quant", match.group(0))
            i += len(match.group(0))
        elif c in "^$":
            yield _Token("anchor", c)
            i += 1
        else:
            yield _Token("char", c)
            i += 1


def _python_syntax(pattern: str) -> str:
    """The same pattern in Python's dialect: (?<name>...) -> (?P<name>...), \\z -> \\Z, and an inline
    flag group such as ``(?i)`` -> a scoped ``(?i:...)`` up to the next ``|`` or the end of its group,
    reopened after the ``|`` (Java and Go apply it from there to the group's end; Python 3.11 accepts
    it only at the very start)."""
    out: list[str] = []
    flags: list[list[str]] = [[]]  # per open group: the flag scopes opened in it, in order
    for token in _tokens(pattern):
        if token.kind == "open" and re.fullmatch(r"\(\?[a-zA-Z-]+\)", token.text):
            flags[-1].append(token.text[:-1] + ":")
            out.append(flags[-1][-1])
            continue
        if token.kind == "alt":
            out.append(")" * len(flags[-1]) + "|" + "".join(flags[-1]))
            continue
        if token.kind == "close" and len(flags) > 1:
            out.append(")" * len(flags.pop()))
        elif token.kind == "open":
            flags.append([])
        if token.kind == "open" and token.text.startswith("(?<") and token.text not in ("(?<=", "(?<!"):
            out.append("(?P" + token.text[2:])
        elif token.kind == "escape" and token.text == "\\z":
            out.append("\\Z")
        else:
            out.append(token.text)
    return "".join(out) + ")" * len(flags[0])


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled as Python reads it after ``_python_syntax``; raises re.error if it cannot."""
    return re.compile(_python_syntax(pattern), re.ASCII)


def pattern_matches(pattern: str, value: str) -> bool:
    """True if ``value`` as a whole matches ``pattern`` (see the module docstring for why whole).

    Raises re.error when Python cannot read the pattern even after ``_python_syntax``.
    """
    return compile_pattern(pattern).fullmatch(value) is not None


def _anchored(tokens: list[_Token]) -> bool:
    """Each top-level alternative starts with ^ or \\A and ends with $ or \\z (looking through groups)."""
    alternatives: list[list[_Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "alt" and depth == 0:
            alternatives.append([])
            continue
        depth += token.kind == "open"
        depth -= token.kind == "close"
        alternatives[-1].append(token)

    def edge(alt: list[_Token], skip: str, anchors: tuple[str, ...]) -> bool:
        token = next((t for t in alt if t.kind != skip), None)
        return token is not None and token.text in anchors

    return all(edge(alt, "open", ("^", "\\A")) and edge(alt[::-1], "close", ("$", "\\z", "\\Z"))
               for alt in alternatives)


def pattern_portability(pattern: str) -> list[str]:
    """Ways Python re, Java regex (the SSM API) and Go RE2 (SSM Agent) read ``pattern`` differently.

    An empty list means the three agree on it under whole-value matching. Each entry says what the
    construct does in each engine and how to write it portably.
    """
    problems: list[str] = []
    tokens = list(_tokens(pattern))

    def note(message: str) -> None:
        if message not in problems:
            problems.append(message)

    for index, token in enumerate(tokens):
        text = token.text
        if token.kind == "open":
            if text in ("(?=", "(?!", "(?<=", "(?<!"):
                note(f"lookaround {text}...) is not supported by Go RE2: SSM Agent cannot compile the pattern and "
                     "fails the command; express the rule without lookarounds")
            elif text == "(?>":
                note("atomic group (?>...) works in Java and Python 3.11+ but Go RE2 rejects it; use a plain group")
            elif text.startswith("(?P<"):
                note("named group (?P<name>...) is rejected by Java regex (the SSM API); use an unnamed group")
            elif text.startswith("(?<"):
                note("named group (?<name>...) needs Go 1.22+ and is (?P<name>...) in Python; use an unnamed group")
            elif re.fullmatch(r"\(\?[a-zA-Z-]+[:)]", text) and set(text[2:-1]) - set("ims-"):
                note(f"inline flags {text} mean different things (or nothing) in Java, Go RE2 and Python; "
                     "only i, m and s are common to all three")
        elif token.kind == "escape":
            letter = text[1:2]
            if (letter.isdigit() and letter != "0") or text.startswith("\\k<"):
                note(f"backreference {text} is not supported by Go RE2: SSM Agent cannot compile the pattern "
                     "and fails the command")
            elif letter == "Z":
                note("\\Z is end of input in Python, before a final line break in Java, and an error in Go RE2; "
                     "use $ (the whole value is matched anyway)")
            elif letter == "z":
                note("\\z is not understood by Python re before 3.14 (the worker reads it as \\Z); use $")
            elif letter in ("p", "P"):
                note(f"{text} is not supported by Python re, and Java and Go RE2 know different class names; "
                     "spell the characters out, e.g. [A-Za-z]")
            elif letter == "Q":
                note("\\Q...\\E quoting is not supported by Python re; escape each character instead")
            elif letter == "x" and text.startswith("\\x{"):
                note("\\x{...} is not supported by Python re; write the character itself")
            elif letter == "u":
                note("\\uHHHH is not supported by Go RE2; write the character itself")
            elif letter and letter in "hHRXGv":
                note(f"{text} is a Java-only escape (Python and Go RE2 read it differently or reject it)")
        elif token.kind == "class":
            if "posix" in token.notes:
                note("POSIX class [[:name:]] is a class only in Go RE2; Java and Python read it as a set of "
                     "characters; write the range instead, e.g. [a-zA-Z]")
            if "nested" in token.notes:
                note("a nested [...] or && inside a character class is union/intersection in Java only")
            if "property" in token.notes:
                note("\\p{...} inside a character class is not supported by Python re; spell the characters out")
        elif token.kind == "quant":
            if text.endswith("+") and len(text) > 1:
                note(f"possessive quantifier {text} works in Java and Python 3.11+ but Go RE2 rejects it")
            if text.startswith("{,"):
                note(f"{text} is {{0,n}} in Python, an error in Java and literal text in Go RE2; write {{0,n}}")
            if any(int(n) > 1000 for n in re.findall(r"\d+", text)):
                note(f"{text}: Go RE2 rejects repetition counts above 1000")
            if index == 0 or tokens[index - 1].kind in ("open", "alt"):
                note(f"{text} has nothing to repeat")
    if tokens and not _anchored(tokens):
        note("not anchored: SSM Agent (Go regexp.MatchString) accepts any value that merely contains a match "
             "while the SSM API matches the whole value; write ^(...)$ so both read it the same")
    return problems
