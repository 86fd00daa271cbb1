#!/usr/bin/env python3
"""Joins Debian's node-xterm CommonJS modules into one browser script, without eval.

Debian 12's libjs-xterm (3.8.1) is only a stub that calls require(); the real code is node-xterm's ~60 CommonJS
modules under /usr/share/nodejs/xterm/lib. This script wraps each module in a function, resolves every require()
at build time into a table, and writes one script that sets window.Terminal (with the fit addon applied), so the
page loads it under `script-src 'self'`. It also copies xterm.css.

    python3 tools/bundle-xterm.py [--source /usr/share/nodejs/xterm] [--out .build/ui-assets]

Only the standard library; the output is rewritten only when it changes.
"""

import argparse
import json
import os
import pathlib
import re
import sys

REQUIRE = re.compile(r"""\brequire\(\s*(["'])([^"']+)\1\s*\)""")
SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
# Code a strict CSP refuses (eval and its relatives), checked so that a new package version cannot bring it in.
FORBIDDEN = re.compile(r"""\beval\s*\(|\bnew\s+Function\s*\(|\bset(?:Timeout|Interval)\s*\(\s*["'`]""")
ENTRY = "xterm"
ADDONS = ["addons/fit/fit"]


def module_files(lib: pathlib.Path) -> dict[str, pathlib.Path]:
    """Module id (path under lib without .js) -> file, tests and other addons left out."""
    modules = {}
    # lib/addons is a symlink into libjs-xterm's folder, which Path.rglob would not enter.
    paths = [pathlib.Path(top, name) for top, _, names in os.walk(lib, followlinks=True) for name in names]
    for path in sorted(p for p in paths if p.suffix == ".js"):
        module_id = path.relative_to(lib).with_suffix("").as_posix()
        if module_id.endswith(".test") or (module_id.startswith("addons/") and module_id not in ADDONS):
            continue
        modules[module_id] = path
    return modules


def resolve(module_id: str, request: str, modules: dict) -> str:
    """The id a require() in module_id names: relative paths only (xterm has no third-party dependencies)."""
    if not request.startswith("."):
        raise SystemExit(f"error: {module_id} requires {request!r}, which is not one of xterm's own modules")
    parts = module_id.split("/")[:-1]
    for piece in request.split("/"):
        if piece == "..":
            if not parts:
                raise SystemExit(f"error: {module_id} requires {request!r} outside the package")
            parts.pop()
        elif piece not in ("", "."):
            parts.append(piece)
    target = "/".join(parts)
    for candidate in (target, target.removesuffix(".js"), target + "/index"):
        if candidate in modules:
            return candidate
    raise SystemExit(f"error: {module_id} requires {request!r}, not found in the package")


def reachable(modules: dict) -> dict[str, tuple[str, dict]]:
    """Every module reachable from the entry and the addons: (source, {request: id})."""
    result, pending = {}, [ENTRY, *ADDONS]
    while pending:
        module_id = pending.pop()
        if module_id in result:
            continue
        source = SOURCE_MAP.sub("", modules[module_id].read_text(encoding="utf-8"))
        if FORBIDDEN.search(source):
            raise SystemExit(f"error: {module_id} uses eval or a string timer, which script-src 'self' refuses")
        requests = {request: resolve(module_id, request, modules) for _, request in REQUIRE.findall(source)}
        result[module_id] = (source, requests)
        pending.extend(requests.values())
    return result


def bundle(source_dir: pathlib.Path) -> str:
    lib = source_dir / "lib"
    version = json.loads((source_dir / "package.json").read_text(encoding="utf-8"))["version"]
    table = reachable(module_files(lib))
    out = [
        f"/* xterm.js {version} (MIT, Copyright (c) The xterm.js authors), from Debian's node-xterm: {len(table)}",
        " * CommonJS modules joined by Porthole's tools/bundle-xterm.py. Sets window.Terminal, fit addon applied. */",
        "(function () {",
        "var definitions = {};",
    ]
    for module_id in sorted(table):
        source, requests = table[module_id]
        out.append(f"definitions[{json.dumps(module_id)}] = [{json.dumps(requests, sort_keys=True)}, "
                   "function (module, exports, require) {")
        out.append(source.rstrip())
        out.append("}];")
    out.append("""var cache = {};
function load(id) {
    if (Object.prototype.hasOwnProperty.call(cache, id)) { return cache[id].exports; }
    var definition = definitions[id];
    var module = { exports: {} };
    cache[id] = module;
    definition[1].call(module.exports, module, module.exports, function (request) {
        if (!Object.prototype.hasOwnProperty.call(definition[0], request)) {
            throw new Error("xterm bundle: " + id + " requires unknown module " + request);
        }
        return load(definition[0][request]);
    });
    return module.exports;
}
var Terminal = load(%s);
%s
window.Terminal = Terminal;
})();
""" % (json.dumps(ENTRY), "\n".join(f"Terminal.applyAddon(load({json.dumps(a)}));" for a in ADDONS)))
    return "\n".join(out)


def write_if_changed(path: pathlib.Path, content: bytes) -> bool:
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(content)
    temporary.replace(path)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="/usr/share/nodejs/xterm", help="node-xterm's package folder")
    parser.add_argument("--out", default=".build/ui-assets", help="folder for xterm.js and xterm.css")
    args = parser.parse_args()
    source, out = pathlib.Path(args.source), pathlib.Path(args.out)
    if not (source / "lib" / "xterm.js").is_file():
        print(f"error: no {source}/lib/xterm.js (install Debian's node-xterm)", file=sys.stderr)
        return 1
    script = bundle(source).encode("utf-8")
    changed = write_if_changed(out / "xterm.js", script)
    changed |= write_if_changed(out / "xterm.css", (source / "lib" / "xterm.css").read_bytes())
    if changed:
        print(f"ui-assets: wrote {out}/xterm.js ({len(script)} bytes) and {out}/xterm.css")
    return 0


if __name__ == "__main__":
    sys.exit(main())
