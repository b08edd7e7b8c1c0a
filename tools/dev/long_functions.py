#!/usr/bin/env python3
"""Lists C++ function bodies longer than a limit (default 80 lines).

A function starts at a line that ends with '{' whose text looks like a definition (a name followed by a
parameter list, not a control statement, class or namespace) at namespace or class depth; it ends at
its matching brace. Lambdas and local classes count towards the function that holds them.
Usage: tools/dev/long_functions.py [--max N] [paths...]   (default: src apps include)
Exit 1 when any function is over the limit."""
import re
import sys
from pathlib import Path

CONTROL = re.compile(r"^\s*(if|for|while|switch|catch|do|else|try|namespace|class|struct|enum|union|extern)\b")
DEFINITION = re.compile(r"[\w:~<>\]\*&]+\s*\([^;]*\)\s*(const)?\s*(noexcept)?\s*(override)?\s*(->\s*[^{]+)?\s*(:[^{]*)?\{\s*$")


def strip(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])*'", "''", line)
    return line.split("//")[0]


def long_functions(path, limit):
    lines = path.read_text(errors="replace").splitlines()
    depth, start, name, out, pending = 0, None, None, [], ""
    for i, raw in enumerate(lines):
        line = strip(raw)
        if start is None and depth <= 3 and line.rstrip().endswith("{") and not CONTROL.match(line):
            text = (pending + " " + line).strip()
            if DEFINITION.search(text) and "=" not in text.split("(")[0]:
                start, name, start_depth = i, text.split("(")[0].split()[-1], depth
        pending = line if line.strip() and not line.rstrip().endswith((";", "{", "}")) else ""
        depth += line.count("{") - line.count("}")
        if start is not None and depth <= start_depth:
            length = i - start + 1
            if length > limit:
                out.append((length, f"{path}:{start + 1}", name))
            start = None
    return out


def main():
    args, limit = sys.argv[1:], 80
    if args[:1] == ["--max"]:
        limit, args = int(args[1]), args[2:]
    roots = [Path(a) for a in (args or ["src", "apps", "include"])]
    found = []
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".cpp", ".hpp", ".cu", ".h"))
        for f in files:
            found += long_functions(f, limit)
    for length, where, name in sorted(found, reverse=True):
        print(f"{length:5d}  {where}  {name}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
