"""Check that a release tag names the version being released, before anything is published.

The release workflow (`.github/workflows/release.yaml`) runs this twice: before building, with the
tag alone, and after building, with `--dist dist`, so that every built file carries that version
too.
The version is read from `foundations/__init__.py` as text (the library is not imported, so torch
need not be installed).

    python tools/check_release_version.py v0.0.1               # the tag must be "v" + __version__
    python tools/check_release_version.py v0.0.1 --dist dist   # ... and every file in dist/ has it

Exits 0 when all agree; otherwise prints what differs to standard error and exits 1.
"""
import argparse, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def library_version(root=ROOT):
    "The `__version__` string of `foundations/__init__.py`."
    text = (root / "foundations" / "__init__.py").read_text()
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.M)
    if not match: raise SystemExit("foundations/__init__.py defines no __version__")
    return match[1]


def dist_version(filename):
    "The version in a wheel or sdist name: `nn_foundations-0.0.1-py3-none-any.whl` -> `0.0.1`."
    stem = filename.removesuffix(".tar.gz").removesuffix(".whl")
    parts = stem.split("-")
    return parts[1] if len(parts) > 1 else ""


def problems(tag, dist=None, root=ROOT):
    "What is wrong with releasing `tag` (and the files in folder `dist`), as a list of sentences."
    version, found = library_version(root), []
    if tag != f"v{version}":
        found.append(f"tag {tag!r} does not match foundations.__version__ {version!r} (expected "
                     f"'v{version}')")
    if dist is not None:
        files = sorted(p.name for p in Path(dist).iterdir() if p.name.endswith((".whl", ".tar.gz")))
        if not any(f.endswith(".whl") for f in files): found.append(f"no wheel in {dist}")
        if not any(f.endswith(".tar.gz") for f in files): found.append(f"no sdist in {dist}")
        found += [f"{f} is version {dist_version(f)!r}, not {version!r}" for f in files
                  if dist_version(f) != version]
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tag", help="the git tag being released, e.g. v0.0.1 (GITHUB_REF_NAME)")
    parser.add_argument("--dist", help="folder of built files (wheel and sdist) to check as well")
    args = parser.parse_args(argv)
    found = problems(args.tag, args.dist)
    for p in found: print(f"release check: {p}", file=sys.stderr)
    if not found: print(f"release check: {args.tag} matches foundations.__version__")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
