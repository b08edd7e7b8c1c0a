#!/usr/bin/env python3
"""Structural check of a Containerfile (hadolint is not in Debian): check_containerfile.py FILE.

Instructions must be known ones with arguments (continuation lines joined); there must be a named build
stage and a final runtime stage; every COPY --from names an earlier stage (ARG defaults resolved); the final stage runs as a
non-root USER (numeric uid other than 0, or a name other than root), has a HEALTHCHECK that calls
/health/ready (directly or through a variable ENV set before it), an exec-form ENTRYPOINT or CMD, and copies the binary from the build stage; every
`apt-get install` uses --no-install-recommends and the same RUN removes /var/lib/apt/lists; no ADD of a
URL, no `latest`-less untagged FROM of a registry image (FROM ${ARG} is resolved against its ARG default).
Exit 1 with "FILE:LINE: problem" lines."""
import json
import re
import sys

KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR",
         "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def instructions(text):
    out, buf, start = [], "", 0
    for n, line in enumerate(text.splitlines(), 1):
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not buf:
            start = n
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((start, word.upper(), rest.strip()))
        buf = ""
    return out


def check(text, name):
    problems, stages, args = [], [], {}
    for n, word, rest in instructions(text):
        where = f"{name}:{n}"
        if word not in KNOWN:
            problems.append(f"{where}: unknown instruction {word}")
            continue
        if not rest:
            problems.append(f"{where}: {word} without arguments")
        if word == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
        if word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            if not m:
                problems.append(f"{where}: FROM IMAGE [AS NAME] expected")
                continue
            image = re.sub(r"\$\{?(\w+)\}?", lambda a: args.get(a.group(1), ""), m.group(1))
            if "/" in image and ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
                problems.append(f"{where}: {image} has no tag")
            stages.append({"name": m.group(2), "line": n, "user": None, "health": None, "entry": False, "copies": [], "env": {}})
            continue
        if not stages:
            if word != "ARG":
                problems.append(f"{where}: {word} before the first FROM")
            continue
        st = stages[-1]
        if word == "USER":
            st["user"] = rest.split(":")[0]
        elif word == "ENV":
            st["env"].update(re.findall(r'(\w+)=("[^"]*"|\S+)', rest))
        elif word == "HEALTHCHECK":
            st["health"] = re.sub(r"\$\{?(\w+)\}?", lambda a: st["env"].get(a.group(1), ""), rest)
        elif word in ("ENTRYPOINT", "CMD"):
            try:
                st["entry"] = st["entry"] or isinstance(json.loads(rest), list)
            except json.JSONDecodeError:
                problems.append(f"{where}: {word} in shell form (signals would not reach mess): use the exec form [\"...\"]")
        elif word == "COPY":
            m = re.search(r"--from=(\S+)", rest)
            if m:
                source = re.sub(r"\$\{?(\w+)\}?", lambda a: args.get(a.group(1), ""), m.group(1))
                if source not in [s["name"] for s in stages[:-1]]:
                    problems.append(f"{where}: COPY --from={m.group(1)} names no earlier stage")
                st["copies"].append(rest)
        elif word == "ADD" and re.search(r"https?://", rest):
            problems.append(f"{where}: ADD of a URL (not reproducible; no registry or network is assumed)")
        elif word == "RUN" and "apt-get install" in rest:
            if "--no-install-recommends" not in rest:
                problems.append(f"{where}: apt-get install without --no-install-recommends")
            if "rm -rf /var/lib/apt/lists" not in rest:
                problems.append(f"{where}: apt-get lists left in the layer (rm -rf /var/lib/apt/lists/* in the same RUN)")
    if len(stages) < 2 or not stages[0]["name"]:
        problems.append(f"{name}: needs a named build stage and a runtime stage ({len(stages)} stage(s))")
    if stages:
        final = stages[-1]
        where = f"{name}:{final['line']}"
        if final["user"] in (None, "0", "root"):
            problems.append(f"{where}: the runtime stage does not run as a non-root USER")
        if not final["health"] or "/health/ready" not in final["health"]:
            problems.append(f"{where}: the runtime stage has no HEALTHCHECK on /health/ready")
        if not final["entry"]:
            problems.append(f"{where}: the runtime stage has no exec-form ENTRYPOINT or CMD")
        if not any("mess" in c for c in final["copies"]):
            problems.append(f"{where}: the runtime stage copies no mess binary from the build stage")
    return problems


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_containerfile.py FILE")
    with open(sys.argv[1]) as f:
        problems = check(f.read(), sys.argv[1])
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"{sys.argv[1]}: valid")


if __name__ == "__main__":
    main()
