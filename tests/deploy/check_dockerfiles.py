#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks deploy/images/*.Dockerfile without a container engine (none runs here or in CI).

For each Dockerfile:
- every COPY source from the build context exists (the context is the repository root, minus
  .dockerignore);
- the builder stage is debian:12 and runs the same scripts as CI: scripts/install-deps.sh, then
  scripts/build.sh with --target naming only targets that exist (add_executable in a CMakeLists);
- every file copied out of the builder (/build/<path>) is a binary the build makes, and the
  runtime stage (debian:12-slim) installs exactly the Debian packages that hold the shared
  libraries those binaries need (readelf NEEDED -> ldd -> dpkg -S), apart from those every
  debian:12-slim image has; or, where the builder lists them itself with
  deploy/images/runtime-packages.sh (service.Dockerfile, one image per service), that script's
  list for the default service equals the one computed here.
Usage: check_dockerfiles.py REPO_ROOT BUILD_DIR
"""
import glob
import os
import re
import shlex
import subprocess
import sys

# In every debian:12-slim image: libc6 is Essential, and apt (always there) depends on
# libstdc++6 and libgcc-s1.
IN_SLIM_IMAGE = {"libc6", "libgcc-s1", "libstdc++6"}

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def instructions(text):
    """(keyword, arguments) per instruction, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        current += " " + stripped.rstrip("\\").strip() if current else stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, args = current.partition(" ")
            out.append((keyword.upper(), args.strip()))
            current = ""
    return out


def cmake_targets(root):
    targets = set()
    for path in glob.glob(os.path.join(root, "**", "CMakeLists.txt"), recursive=True):
        if "/build" in os.path.relpath(path, root).split(os.sep)[0]:
            continue
        with open(path) as f:
            targets.update(re.findall(r"add_executable\(\s*([A-Za-z0-9_.+-]+)", f.read()))
    return targets


def library_packages(binary):
    """Debian packages holding the libraries the binary names in its NEEDED entries."""
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                                       check=True).stdout)
    resolved = {}
    for line in subprocess.run(["ldd", binary], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            resolved[m.group(1)] = m.group(2)
    # usrmerge: dpkg may know a file as /lib/... while ldd prints /usr/lib/... or the reverse.
    candidates = {}
    for soname in needed:
        path = resolved.get(soname)
        if not path or path == "not":
            problem(binary, f"{soname}: not found by ldd")
            continue
        c = [path, os.path.realpath(path)]
        c += [x[len("/usr"):] for x in c if x.startswith("/usr/")]
        c += ["/usr" + x for x in c if x.startswith("/lib")]
        candidates[soname] = c
    # One dpkg -S for all of them: each call reads the whole package database.
    owners = {}
    paths = sorted({x for c in candidates.values() for x in c})
    out = subprocess.run(["dpkg", "-S"] + paths, capture_output=True, text=True).stdout if paths else ""
    for line in out.splitlines():
        pkg, _, path = line.partition(": ")
        owners[path.strip()] = pkg.split(":")[0]
    packages = set()
    for soname, c in candidates.items():
        owner = next((owners[x] for x in c if x in owners), None)
        if owner is None:
            problem(binary, f"{soname} ({c[0]}): no Debian package holds it")
        else:
            packages.add(owner)
    return packages


def check(root, build, dockerfile, targets):
    name = os.path.relpath(dockerfile, root)
    problems_before = len(problems)
    with open(dockerfile) as f:
        steps = instructions(f.read())
    args = {}
    stages = []  # (image, alias, [steps])
    for keyword, rest in steps:
        if keyword == "FROM":
            words = rest.split()
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append((words[0], alias, []))
        elif stages:
            stages[-1][2].append((keyword, rest))
        if keyword == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args[k.strip()] = v.strip()

    def expand(text):
        return re.sub(r"\$\{?([A-Za-z_]+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)

    if len(stages) != 2:
        problem(name, f"{len(stages)} stages; expected a builder and a runtime stage")
        return
    (build_image, alias, build_steps), (runtime_image, _, runtime_steps) = stages
    if build_image != "debian:12":
        problem(name, f"builder FROM {build_image}; CI builds on debian:12")
    if runtime_image != "debian:12-slim":
        problem(name, f"runtime FROM {runtime_image}; expected debian:12-slim")

    runs = [expand(r) for k, r in build_steps if k == "RUN"]
    install_at = next((i for i, r in enumerate(runs) if "scripts/install-deps.sh" in r), None)
    build_at = next((i for i, r in enumerate(runs) if "scripts/build.sh" in r), None)
    if install_at is None:
        problem(name, "the builder does not run scripts/install-deps.sh (the script CI uses)")
    if build_at is None:
        problem(name, "the builder does not run scripts/build.sh (the script CI uses)")
    elif install_at is not None and build_at < install_at:
        problem(name, "scripts/build.sh runs before scripts/install-deps.sh")
    if build_at is not None:
        words = shlex.split(runs[build_at].split("&&")[0])
        wanted = words[words.index("--target") + 1:] if "--target" in words else []
        if not wanted:
            problem(name, "scripts/build.sh without --target builds every test too")
        for t in wanted:
            if t not in targets:
                problem(name, f"--target {t}: no add_executable({t}) in the sources")

    for keyword, rest in build_steps + runtime_steps:
        if keyword not in ("COPY", "ADD"):
            continue
        words = [w for w in rest.split() if not w.startswith("--")]
        if rest.startswith("--from"):
            continue
        for src in words[:-1]:
            if not os.path.exists(os.path.join(root, src)):
                problem(name, f"{keyword} {src}: not in the build context")

    if any("runtime-packages.sh" in r for r in runs):
        check_generated_packages(name, root, build, expand, runs, runtime_steps, alias)
        return
    needed = set()
    built = []
    for keyword, rest in runtime_steps:
        if keyword == "COPY" and rest.startswith(f"--from={alias}"):
            built += [w for w in rest.split()[1:-1] if w.startswith("/build/")]
    if not built:
        problem(name, "the runtime stage copies no binary out of the builder")
    for path in built:
        local = os.path.join(build, os.path.relpath(expand(path), "/build"))
        if not os.path.isfile(local):
            problem(name, f"{path}: the build makes no {local}")
            continue
        needed |= library_packages(local)
    needed -= IN_SLIM_IMAGE

    installed = set()
    for keyword, rest in runtime_steps:
        if keyword == "RUN" and "apt-get install" in rest:
            cmd = rest.split("apt-get install", 1)[1].split("&&")[0]
            installed |= {w for w in cmd.split() if not w.startswith("-")}
    for p in sorted(needed - installed):
        problem(name, f"runtime stage lacks {p} (a library of the copied binaries)")
    for p in sorted(installed - needed):
        problem(name, f"runtime stage installs {p}, which no copied binary needs")
    if len(problems) > problems_before:
        return
    print(f"{name}: ok: builds {', '.join(os.path.basename(b) for b in built)}; "
          f"runtime packages {' '.join(sorted(installed))}")


def check_generated_packages(name, root, build, expand, runs, runtime_steps, alias):
    """A builder that finds its binary (find -name sockmesh-$SERVICE under /build/services) and
    lists its packages with deploy/images/runtime-packages.sh: for the default SERVICE, the binary
    exists in the build and the script's list equals the one computed here."""
    before = len(problems)
    run = next(r for r in runs if "runtime-packages.sh" in r)
    m = re.search(r'-name "?(sockmesh-[A-Za-z0-9_-]+)"?', run)
    if not m:
        problem(name, "the builder's find names no sockmesh-<service> binary")
        return
    found = sorted(glob.glob(os.path.join(build, "services", "**", m.group(1)), recursive=True))
    found = [f for f in found if os.path.isfile(f) and os.access(f, os.X_OK)]
    if not found:
        problem(name, f"the build makes no {m.group(1)} under {build}/services")
        return
    script = os.path.join(root, "deploy", "images", "runtime-packages.sh")
    r = subprocess.run(["bash", script, found[0]], capture_output=True, text=True)
    if r.returncode != 0:
        problem(name, f"runtime-packages.sh {found[0]} failed: {r.stderr.strip()}")
        return
    listed = set(r.stdout.split())
    needed = library_packages(found[0]) - IN_SLIM_IMAGE
    if listed != needed:
        problem(name, f"runtime-packages.sh lists {sorted(listed)}, the libraries need {sorted(needed)}")
    runtime = " ".join(rest for _, rest in runtime_steps)
    if f"--from={alias} /out/packages" not in runtime or "xargs" not in runtime:
        problem(name, "the runtime stage does not install the builder's /out/packages")
    if f"--from={alias} /out/service" not in runtime:
        problem(name, "the runtime stage does not copy the builder's /out/service")
    if len(problems) == before:
        print(f"{name}: ok: {m.group(1)} (default SERVICE); runtime packages {' '.join(sorted(listed))}")


def check_dockerignore(root):
    path = os.path.join(root, ".dockerignore")
    if not os.path.isfile(path):
        problem(".dockerignore", "missing: the build context would carry build trees")
        return
    with open(path) as f:
        patterns = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    for needed in (".git", "build*/"):
        if needed not in patterns:
            problem(".dockerignore", f"does not exclude {needed}")
    for keep in ("scripts", "CMakeLists.txt"):
        if keep in patterns:
            problem(".dockerignore", f"excludes {keep}, which the builder needs")


def main():
    root, build = sys.argv[1], sys.argv[2]
    targets = cmake_targets(root)
    dockerfiles = sorted(glob.glob(os.path.join(root, "deploy", "images", "*.Dockerfile")))
    if not dockerfiles:
        problem("deploy/images", "no Dockerfiles")
    for d in dockerfiles:
        check(root, build, d, targets)
    check_dockerignore(root)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check_dockerfiles: {len(problems)} problems", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
