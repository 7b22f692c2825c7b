#!/usr/bin/env python3
"""The Python half of scripts/fetch-debian13-tools.sh: downloading with checksums, reading a
signature-verified Release file, the dependency closure of a few packages over Packages
indexes, and rewriting Vulkan manifests. Standard library only (python3 on a bare Debian 12).

  download URL OUT [SHA256 SIZE]       fetch URL into OUT; with SHA256, check it (a file that
                                       already matches is kept, not fetched again)
  release-entry RELEASE CODENAME PATH  print "URL-PATH SHA256 SIZE" for PATH of a verified
                                       Release file (by-hash path when the archive offers it)
  resolve [options] PACKAGES.xz...     print the closure as "name version suite sha256 size
                                       filename" lines (see resolve's --help)
  fetch-debs LIST MIRROR DIR           download every .deb of a resolve list into DIR, checked
  manifest IN OUT LIBDIR               copy a Vulkan ICD/layer manifest with an absolute
                                       library_path (LIBDIR/basename of the original)
Every failure is one line on stderr and exit status 1.
"""
import argparse
import concurrent.futures
import email.utils
import hashlib
import json
import lzma
import os
import sys
import time
import urllib.error
import urllib.request


class Failure(Exception):
    pass


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(url, out, sha256=None, size=None, attempts=3):
    """Fetches url into out (through out.part, renamed only once complete and checked)."""
    if sha256 and os.path.exists(out) and sha256_of(out) == sha256:
        return
    part = out + ".part"
    for attempt in range(1, attempts + 1):
        try:
            h = hashlib.sha256()
            n = 0
            with urllib.request.urlopen(url, timeout=60) as r, open(part, "wb") as f:
                for block in iter(lambda: r.read(1 << 20), b""):
                    f.write(block)
                    h.update(block)
                    n += len(block)
            break
        except (urllib.error.URLError, OSError, ConnectionError) as e:
            if attempt == attempts:
                raise Failure(f"download of {url} failed: {e}")
            time.sleep(2 * attempt)
    if size is not None and n != int(size):
        os.unlink(part)
        raise Failure(f"{url}: got {n} bytes, the signed index says {size}")
    if sha256 and h.hexdigest() != sha256:
        os.unlink(part)
        raise Failure(f"{url}: SHA256 {h.hexdigest()} does not match the signed index ({sha256})")
    os.replace(part, out)


def parse_stanzas(text):
    """Debian control-file paragraphs as dicts (continuation lines joined with newlines)."""
    stanzas, cur, key = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
        elif line[0] in " \t":
            if key:
                cur[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            cur[key] = value.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


def release_entry(release, codename, path):
    with open(release, encoding="utf-8") as f:
        fields = parse_stanzas(f.read())[0]
    if fields.get("Codename") != codename:
        raise Failure(f"{release}: Codename is {fields.get('Codename')!r}, expected {codename!r}")
    valid_until = fields.get("Valid-Until")
    if valid_until and email.utils.parsedate_to_datetime(valid_until).timestamp() < time.time():
        raise Failure(f"{release}: expired (Valid-Until {valid_until}): a stale mirror or a replay")
    for line in fields.get("SHA256", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == path:
            sha, size = parts[0], parts[1]
            url_path = path
            if fields.get("Acquire-By-Hash") == "yes":
                # the by-hash name cannot change under us while the mirror updates
                url_path = f"{os.path.dirname(path)}/by-hash/SHA256/{sha}"
            return url_path, sha, size
    raise Failure(f"{release}: no SHA256 entry for {path}")


# ------------------------------------------------------------------------------------ resolve
def parse_relations(value):
    """'a (>= 1) | b, c:any' -> [[('a', '>=', '1'), ('b', None, None)], [('c', None, None)]]"""
    out = []
    for group in value.split(","):
        alts = []
        for alt in group.split("|"):
            alt = alt.strip()
            if not alt:
                continue
            name, op, version = alt, None, None
            if "(" in alt:
                name, _, rest = alt.partition("(")
                rest = rest.rstrip(")").strip()
                for candidate in (">=", "<=", ">>", "<<", "="):
                    if rest.startswith(candidate):
                        op, version = candidate, rest[len(candidate):].strip()
                        break
            alts.append((name.strip().split(":")[0], op, version))
        if alts:
            out.append(alts)
    return out


def _order(c):
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a, b):
    """dpkg's comparison of an upstream version or a revision."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def compare_versions(a, b):
    """<0, 0, >0 like `dpkg --compare-versions` (epoch, upstream version, revision)."""
    def split(v):
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return int(epoch or 0), upstream, revision
    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def version_ok(version, op, wanted):
    if op is None:
        return True
    c = compare_versions(version, wanted)
    return {">=": c >= 0, "<=": c <= 0, ">>": c > 0, "<<": c < 0, "=": c == 0}[op]


class Archive:
    """Packages indexes of several suites; the first suite is the default, the others are only
    used for a package named in `forced` (like apt's -t for a NotAutomatic suite such as
    backports), for a package the default suite lacks, or where a version constraint needs it."""

    FIELDS = {"Package", "Version", "Essential", "Pre-Depends", "Depends", "Provides",
              "Filename", "Size", "SHA256"}

    def __init__(self, indexes):
        self.suites = []  # [(suite, {name: stanza})]
        self.providers = {}  # virtual name -> sorted real names
        for suite, path in indexes:
            with lzma.open(path) as f:
                text = f.read().decode("utf-8", "replace")
            packages = {}
            for paragraph in text.split("\n\n"):
                # only single-line fields are needed: a fast path over 70000 paragraphs
                s = {}
                for line in paragraph.split("\n"):
                    key, _, value = line.partition(": ")
                    if key in self.FIELDS:
                        s[key] = value
                name = s.get("Package")
                if name and (name not in packages or
                             version_ok(s["Version"], ">>", packages[name]["Version"])):
                    packages[name] = s
            for s in packages.values():
                for group in parse_relations(s.get("Provides", "")):
                    self.providers.setdefault(group[0][0], set()).add(s["Package"])
            self.suites.append((suite, packages))

    def versions(self, name):
        return [(suite, pk[name]) for suite, pk in self.suites if name in pk]

    def exists(self, name):
        return bool(self.versions(name)) or name in self.providers

    def candidate(self, name, forced):
        versions = self.versions(name)
        for suite, s in versions:
            if forced.get(name) == suite:
                return suite, s
        return versions[0]

    def closure(self, want, forced, skip):
        """-> ({name: (suite, stanza)}, [unsatisfied (package, dep, op, version)], skipped)"""
        chosen, skipped, todo = {}, set(), list(want)
        while todo:
            name = todo.pop(0)
            if name in chosen:
                continue
            if not self.versions(name):
                providers = sorted(self.providers.get(name, ()))
                if not providers:
                    raise Failure(f"no package or provider for {name}")
                name = next((p for p in providers if p in chosen), providers[0])
                if name in chosen:
                    continue
            suite, s = self.candidate(name, forced)
            if s.get("Essential") == "yes" or name in skip:
                skipped.add(name)
                continue
            chosen[name] = (suite, s)
            for field in ("Pre-Depends", "Depends"):
                for alts in parse_relations(s.get(field, "")):
                    usable = [a for a in alts if self.exists(a[0])]
                    if not usable:
                        raise Failure(f"{name} {s['Version']}: no alternative of "
                                      f"{' | '.join(a[0] for a in alts)} exists")
                    todo.append(usable[0][0])
        unsatisfied = []
        for name, (suite, s) in chosen.items():
            for field in ("Pre-Depends", "Depends"):
                for alts in parse_relations(s.get(field, "")):
                    dep, op, version = next(a for a in alts if self.exists(a[0]))
                    if op and dep in chosen and not version_ok(chosen[dep][1]["Version"], op, version):
                        unsatisfied.append((name, dep, op, version))
        return chosen, unsatisfied, skipped


def resolve(args):
    archive = Archive([(os.path.basename(p).split(".")[0], p) for p in args.packages])
    forced = {name: archive.suites[-1][0] for name in args.newest}
    skip = set(args.skip.split(",")) if args.skip else set()
    while True:
        chosen, unsatisfied, skipped = archive.closure(args.want.split(","), forced, skip)
        changed = False
        for name, dep, op, version in unsatisfied:
            fix = next((suite for suite, s in archive.versions(dep)
                        if version_ok(s["Version"], op, version)), None)
            if fix is None or forced.get(dep) == fix:
                raise Failure(f"{name} needs {dep} ({op} {version}); no suite has it")
            forced[dep] = fix
            changed = True
        if not changed:
            break
    print(f"resolve: {len(chosen)} packages; skipped (not needed outside dpkg): "
          f"{' '.join(sorted(skipped)) or 'none'}", file=sys.stderr)
    for name in sorted(chosen):
        suite, s = chosen[name]
        print(name, s["Version"], suite, s["SHA256"], s["Size"], s["Filename"])


def fetch_debs(listing, mirror, directory):
    os.makedirs(directory, exist_ok=True)
    jobs = []
    with open(listing) as f:
        for line in f:
            name, version, suite, sha, size, filename = line.split()
            out = os.path.join(directory, os.path.basename(filename))
            jobs.append((f"{mirror}/{filename}", out, sha, size))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(download, *job) for job in jobs]:
            future.result()


def manifest(src, out, libdir):
    with open(src) as f:
        data = json.load(f)
    section = data.get("ICD") or data.get("layer")
    if not section or "library_path" not in section:
        raise Failure(f"{src}: neither an ICD nor a single-layer manifest")
    section["library_path"] = os.path.join(libdir, os.path.basename(section["library_path"]))
    if not os.path.exists(section["library_path"]):
        raise Failure(f"{src}: {section['library_path']} does not exist")
    with open(out, "w") as f:
        json.dump(data, f, indent=4)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("download")
    p.add_argument("url"), p.add_argument("out"), p.add_argument("sha256", nargs="?"), p.add_argument("size", nargs="?")
    p = sub.add_parser("release-entry")
    p.add_argument("release"), p.add_argument("codename"), p.add_argument("path")
    p = sub.add_parser("resolve", help="closure of --want over Depends + Pre-Depends")
    p.add_argument("--want", required=True, help="comma-separated package names")
    p.add_argument("--newest", nargs="*", default=[], help="take these from the last index")
    p.add_argument("--skip", default="", help="comma-separated packages only dpkg's scripts need")
    p.add_argument("packages", nargs="+", help="SUITE.Packages.xz files, the default suite first")
    p = sub.add_parser("fetch-debs")
    p.add_argument("listing"), p.add_argument("mirror"), p.add_argument("directory")
    p = sub.add_parser("manifest")
    p.add_argument("src"), p.add_argument("out"), p.add_argument("libdir")
    args = parser.parse_args()
    try:
        if args.command == "download":
            download(args.url, args.out, args.sha256, args.size)
        elif args.command == "release-entry":
            print(*release_entry(args.release, args.codename, args.path))
        elif args.command == "resolve":
            resolve(args)
        elif args.command == "fetch-debs":
            fetch_debs(args.listing, args.mirror, args.directory)
        elif args.command == "manifest":
            manifest(args.src, args.out, args.libdir)
    except (Failure, OSError, ValueError, KeyError, lzma.LZMAError) as e:
        print(f"debian_packages.py {args.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
