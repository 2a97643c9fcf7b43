"""Optional accelerator: the engine and the order path's hot modules compiled with mypyc.

Nothing here is needed to use Abyssal: ``pip install -e .`` installs pure Python and works
without a C compiler. This script compiles the same sources with mypyc (mypy==2.4.1, from the
``test`` extra) when a C compiler is present, and otherwise says so and leaves the pure build.

    python build_mypyc.py                # out of tree: build/mypyc/lib/abyssal (a full copy)
    PYTHONPATH=build/mypyc/lib python …  # ... and use it; without PYTHONPATH you get pure Python
    python build_mypyc.py --inplace      # .so files next to the sources in src/abyssal/
    python build_mypyc.py --clean        # remove the in-place .so files (back to pure Python)
    python build_mypyc.py --status       # which build does ``import abyssal`` pick up here?
    python build_mypyc.py --if-stale     # build only when src/ changed since the last build;
                                         # exit 0 only when a current compiled build exists
    python build_mypyc.py --check        # exit 0 only when a current compiled build exists

``./scripts/serve`` runs ``--if-stale`` and then serves from the out-of-tree build, so a user
gets the compiled engine whenever a C compiler is present, and never a stale one: each build
records a digest of the sources it copied (``build/mypyc/digest``), and a build whose digest no
longer matches ``src/`` is rebuilt before it is used (or, if that fails, not used).

Out of tree is the default because an in-place ``.so`` shadows its ``.py`` (CPython prefers
extension modules): in a shared working tree, a stale in-place build would silently run old
code under the tests of whoever edits the ``.py`` next. Compiled files are never committed
(``.gitignore`` has ``*.so`` and ``build/``). The compiled code keeps its asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "src"
PACKAGE = SRC / "abyssal"
# Modules under src/abyssal/, dotted. The engine's core, then what every signed order runs through
# besides it: the REST parameter parsing and authentication (gateway), the ids and ledger postings,
# and the projector that turns events into rows (docs/adr/0002-http-stack.md, "The compiled build").
# messages.py stays interpreted: its msgspec Structs are already C, and mypyc cannot compile
# subclasses of an extension type it does not know. Modules with coroutines stay interpreted too.
COMPILED_MODULES = (
    "core.instruments",
    "core.order",
    "core.book",
    "core.accounts",
    "core.state",
    "core.settlement",
    "core.matching",
    "core.fastpath",
    "core.placement",
    "core.triggers",
    "core.funding",
    "core.schedule",
    "core.engine",
    "core.amend",
    "core.ids",
    "core.postings",
    "gateway.bodies",
    "gateway.params",
    "gateway.order_params",
    "gateway.auth",
    "runtime.projector",
    "runtime.market",
    "runtime.telemetry",
    "marketdata.candles",
    "marketdata.ticker",
    "marketdata.book_view",
    "marketdata.checksum",
    "gateway.formats",
)
GROUP_NAME = "abyssal_core"  # the shared library is <GROUP_NAME>__mypyc.<ext>
OUT_DEFAULT = ROOT / "build" / "mypyc"
EXT_SUFFIX = str(sysconfig.get_config_var("EXT_SUFFIX"))
NO_BUILD = 3  # --if-stale: no compiler or no mypyc, so no compiled build can be used


def compiler_present() -> str | None:
    """The C compiler setuptools would use, when it exists on PATH."""
    cc = os.environ.get("CC") or str(sysconfig.get_config_var("CC") or "cc")
    return shutil.which(cc.split()[0])


def mypyc_present() -> bool:
    return importlib.util.find_spec("mypyc") is not None


def module_paths(package: Path) -> list[str]:
    sources = [package.joinpath(*m.split(".")).with_suffix(".py") for m in COMPILED_MODULES]
    return [os.path.relpath(path, ROOT) for path in sources]


def compile_into(package: Path, build_lib: Path, build_temp: Path, inplace: bool) -> None:
    """Run mypyc and the C compiler on ``package``'s compiled modules; the .so files land in build_lib
    (or next to the sources)."""
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]

    ext_modules = mypycify(
        module_paths(package),
        opt_level="3",
        strip_asserts=False,  # the core's asserts are its contracts; keep them compiled in
        group_name=GROUP_NAME,
        target_dir=str(build_temp / "c"),
    )
    args = ["build_ext", "--build-temp", str(build_temp / "obj")]
    args += ["--inplace"] if inplace else ["--build-lib", str(build_lib)]
    with warnings.catch_warnings():  # setuptools comments on pyproject.toml, which it need not read here
        warnings.simplefilter("ignore")
        setup(
            name="abyssal-mypyc",
            package_dir={"": os.path.relpath(package.parent, ROOT)},
            ext_modules=ext_modules,
            script_args=["-q", *args],
        )


def source_digest(package: Path = PACKAGE) -> str:
    """What a build depends on: every file the copy takes (path and bytes), the interpreter and
    mypy's version. Equal digests mean the compiled copy is what ``src/`` holds now."""
    h = hashlib.sha256()
    h.update(f"{sys.version}|{sysconfig.get_config_var('EXT_SUFFIX')}|{_mypy_version()}".encode())
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if not path.is_file() or "__pycache__" in rel.parts or path.name.endswith((".so", ".pyc")):
            continue
        data = path.read_bytes()
        h.update(f"\0{rel.as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _mypy_version() -> str:
    try:
        from importlib.metadata import version

        return version("mypy")
    except Exception:  # no mypy: nothing can be built, and no build can be current
        return "none"


def digest_path(out: Path) -> Path:
    return out / "digest"


def is_current(out: Path, package: Path = PACKAGE) -> bool:
    """A compiled build exists under out/lib and was made from the sources as they are now."""
    path = digest_path(out)
    if not path.is_file() or not (out / "lib" / "abyssal").is_dir():
        return False
    return path.read_text().strip() == source_digest(package)


def build_out_of_tree(out: Path) -> Path:
    """A complete, importable copy of the package with the hot modules compiled, under out/lib.

    The copy is what gets compiled, so the .so files and the .py files beside them are one
    snapshot even while someone edits src/.
    """
    lib = out / "lib"
    digest_path(out).unlink(missing_ok=True)  # written again only when this build succeeds
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    shutil.copytree(PACKAGE, lib / "abyssal", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    digest = source_digest(lib / "abyssal")  # of the copy: src/ may change while this compiles
    compile_into(lib / "abyssal", lib, out / "temp", inplace=False)
    digest_path(out).write_text(digest + "\n")
    return lib


def clean_inplace() -> list[Path]:
    removed = [*PACKAGE.rglob(f"*{EXT_SUFFIX}"), *SRC.glob(f"{GROUP_NAME}__mypyc*{EXT_SUFFIX}")]
    for path in removed:
        path.unlink()
    return removed


def status(pythonpath: Path | None) -> str:
    """Ask a fresh interpreter which files the compiled modules load from."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    code = (
        "import importlib\n"
        f"for m in {COMPILED_MODULES!r}:\n"
        "    f = importlib.import_module('abyssal.' + m).__file__\n"
        "    print(('compiled' if f.endswith('.so') else 'pure    '), f)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--inplace", action="store_true", help="put the .so files next to the sources")
    mode.add_argument("--clean", action="store_true", help="remove in-place .so files")
    mode.add_argument("--status", action="store_true", help="show which build each way imports")
    mode.add_argument("--check", action="store_true", help="exit 0 only if a current compiled build exists")
    mode.add_argument(
        "--if-stale",
        action="store_true",
        help="build only if src/ changed since the last build; exit 0 only if a current build exists",
    )
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT, help="out-of-tree build directory")
    args = ap.parse_args()
    os.chdir(ROOT)  # mypy reads [tool.mypy] from pyproject.toml and maps paths to module names
    if args.clean:
        for path in clean_inplace():
            print(f"removed {path.relative_to(ROOT)}")
        return 0
    if args.status:
        print(f"plain import (pip install -e .):\n{status(None)}")
        if (args.out / "lib").exists():
            print(f"with PYTHONPATH={args.out / 'lib'}:\n{status(args.out / 'lib')}")
        return 0
    if args.check:
        current = is_current(args.out)
        state = "current" if current else "missing or stale"
        print(f"build_mypyc: the compiled build in {args.out / 'lib'} is {state}")
        return 0 if current else 1
    if args.if_stale and is_current(args.out):
        print(f"build_mypyc: the compiled build in {args.out / 'lib'} is current")
        return 0
    cc = compiler_present()
    if cc is None or not mypyc_present():
        missing = "no C compiler" if cc is None else "no mypyc (pip install mypy==2.4.1)"
        print(f"build_mypyc: {missing}; keeping the pure-Python build (nothing to do)")
        return NO_BUILD if args.if_stale else 0
    try:
        if args.inplace:
            compile_into(PACKAGE, ROOT, args.out / "temp", inplace=True)
            print(status(None))
        else:
            lib = build_out_of_tree(args.out)
            print(f"compiled build in {lib}; use it with PYTHONPATH={lib}")
            print(status(lib))
    except (SystemExit, Exception) as ex:  # mypyc type errors end in SystemExit; the C compiler raises
        if isinstance(ex, SystemExit) and ex.code in (None, 0):
            raise
        print(f"build_mypyc: compilation failed ({type(ex).__name__}: {ex}); pure Python stays in use")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
