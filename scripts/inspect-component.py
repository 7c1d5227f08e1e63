#!/usr/bin/env python3
"""Reads a wasm component without running it: whether it is a component, its
top-level imports and exports, and the `wasmtel-manifest` custom section of
its core modules (standard library only, so CI needs no extra tool).

    scripts/inspect-component.py [--json] FILE.wasm...
    scripts/inspect-component.py FILE.wasm --manifest NAME --only PREFIX,... --needs PREFIX

With --manifest/--only/--needs it checks instead of printing: the manifest
names NAME, every import starts with one of the --only prefixes, and some
import starts with the --needs prefix. Exit status 1 on any failure.
"""

import json
import sys

MANIFEST_SECTION = "wasmtel-manifest"
COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"
MODULE_HEADER = b"\x00asm\x01\x00\x00\x00"


class Reader:
    def __init__(self, data, pos, end):
        self.data, self.pos, self.end = data, pos, end

    def byte(self):
        if self.pos >= self.end:
            raise ValueError("truncated section")
        self.pos += 1
        return self.data[self.pos - 1]

    def leb(self, signed=False):
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if signed and b & 0x40:
                    result -= 1 << shift
                return result

    def name(self):
        n = self.leb()
        if self.pos + n > self.end:
            raise ValueError("name runs past its section")
        self.pos += n
        return self.data[self.pos - n : self.pos].decode("utf-8")


def extern_name(r):
    # 0x00 name, or 0x01 name version-suffix (older encoders).
    tag = r.byte()
    name = r.name()
    if tag == 0x01:
        r.name()
    elif tag != 0x00:
        raise ValueError(f"unknown extern name tag {tag:#x}")
    return name


def skip_externdesc(r):
    kind = r.byte()
    if kind == 0x00:  # core module: 0x11 typeidx
        r.byte()
        r.leb()
    elif kind in (0x01, 0x04, 0x05):  # func, component, instance: typeidx
        r.leb()
    elif kind == 0x02:  # value bound
        r.leb() if r.byte() == 0x00 else r.leb(signed=True)
    elif kind == 0x03:  # type bound: eq typeidx | sub resource
        if r.byte() == 0x00:
            r.leb()
    else:
        raise ValueError(f"unknown externdesc kind {kind:#x}")


def module_custom_sections(data, start, end):
    r = Reader(data, start + 8, end)
    while r.pos < end:
        section_id, size = r.byte(), r.leb()
        body_end = r.pos + size
        if section_id == 0:
            sub = Reader(data, r.pos, body_end)
            name = sub.name()
            yield name, data[sub.pos : body_end]
        r.pos = body_end


def parse_component(data, start=0, end=None, top=True):
    end = len(data) if end is None else end
    header = data[start : start + 8]
    if header == MODULE_HEADER:
        raise ValueError("a core module, not a component (build it for wasm32-wasip2)")
    if header != COMPONENT_HEADER:
        raise ValueError("not a wasm component")
    info = {"imports": [], "exports": [], "manifests": []}
    r = Reader(data, start + 8, end)
    while r.pos < end:
        section_id, size = r.byte(), r.leb()
        body_start, body_end = r.pos, r.pos + size
        if section_id == 1:  # nested core module
            for name, payload in module_custom_sections(data, body_start, body_end):
                if name == MANIFEST_SECTION:
                    info["manifests"].append(payload.decode("utf-8"))
        elif section_id == 4:  # nested component; its imports are internal
            info["manifests"] += parse_component(data, body_start, body_end, top=False)["manifests"]
        elif section_id in (10, 11) and top:
            s = Reader(data, body_start, body_end)
            for _ in range(s.leb()):
                name = extern_name(s)
                if section_id == 10:
                    skip_externdesc(s)
                    info["imports"].append(name)
                else:
                    s.byte()  # sort
                    s.leb()  # index
                    if s.byte() == 0x01:  # ascribed type
                        skip_externdesc(s)
                    info["exports"].append(name)
        r.pos = body_end
    return info


def inspect(path):
    with open(path, "rb") as f:
        data = f.read()
    info = parse_component(data)
    manifests = [json.loads(m) for m in info.pop("manifests")]
    if len(manifests) > 1:
        raise ValueError(f"{len(manifests)} {MANIFEST_SECTION} sections")
    info.update(file=path, size=len(data), manifest=manifests[0] if manifests else None)
    return info


def check(info, manifest, only, needs):
    problems = []
    got = (info["manifest"] or {}).get("name")
    if manifest and got != manifest:
        problems.append(f"manifest names {got!r}, expected {manifest!r}")
    for name in info["imports"]:
        if only and not any(name.startswith(p) for p in only):
            problems.append(f"unexpected import {name}")
    if needs and not any(name.startswith(needs) for name in info["imports"]):
        problems.append(f"no import starting with {needs}")
    return problems


def main(argv):
    opts, paths, i = {}, [], 0
    while i < len(argv):
        if argv[i] in ("--manifest", "--only", "--needs"):
            if i + 1 >= len(argv):
                print(f"{argv[i]} needs a value", file=sys.stderr)
                return 2
            opts[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            paths.append(argv[i])
            i += 1
    as_json = "--json" in paths
    paths = [p for p in paths if p != "--json"]
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    failed, results = False, []
    for path in paths:
        try:
            info = inspect(path)
        except (OSError, ValueError, UnicodeDecodeError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            failed = True
            continue
        if opts:
            only = [p for p in opts.get("only", "").split(",") if p]
            for problem in check(info, opts.get("manifest"), only, opts.get("needs")):
                print(f"{path}: {problem}", file=sys.stderr)
                failed = True
        else:
            results.append(info)
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        for info in results:
            print(f"{info['file']} ({info['size']} bytes)")
            for name in info["imports"]:
                print(f"  import {name}")
            for name in info["exports"]:
                print(f"  export {name}")
            m = info["manifest"]
            print(f"  manifest {json.dumps(m, separators=(',', ':')) if m else '(none)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
