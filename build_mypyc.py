"""Optional accelerator: compile the engine's hot core modules with mypyc; pure Python otherwise.

Nothing here is needed to use Abyssal: ``pip install -e .`` installs pure Python and works
without a C compiler. This script compiles the same sources with mypyc (mypy==2.4.1, from the
``test`` extra) when a C compiler is present, and otherwise says so and leaves the pure build.

    python build_mypyc.py                # out of tree: build/mypyc/lib/abyssal (a full copy)
    PYTHONPATH=build/mypyc/lib python …  # ... and use it; without PYTHONPATH you get pure Python
    python build_mypyc.py --inplace      # .so files next to the sources in src/abyssal/core/
    python build_mypyc.py --clean        # remove the in-place .so files (back to pure Python)
    python build_mypyc.py --status       # which build does ``import abyssal`` pick up here?

Out of tree is the default because an in-place ``.so`` shadows its ``.py`` (CPython prefers
extension modules): in a shared working tree, a stale in-place build would silently run old
code under the tests of whoever edits the ``.py`` next. Compiled files are never committed
(``.gitignore`` has ``*.so`` and ``build/``). The compiled code keeps its asserts.
"""

from __future__ import annotations

import argparse
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
# messages.py stays interpreted: its msgspec Structs are already C, and mypyc cannot compile
# subclasses of an extension type it does not know.
COMPILED_MODULES = (
    "instruments",
    "order",
    "book",
    "accounts",
    "state",
    "settlement",
    "matching",
    "fastpath",
    "placement",
    "triggers",
    "funding",
    "schedule",
    "engine",
    "amend",
)
GROUP_NAME = "abyssal_core"  # the shared library is <GROUP_NAME>__mypyc.<ext>
OUT_DEFAULT = ROOT / "build" / "mypyc"
EXT_SUFFIX = str(sysconfig.get_config_var("EXT_SUFFIX"))


def compiler_present() -> str | None:
    """The C compiler setuptools would use, when it exists on PATH."""
    cc = os.environ.get("CC") or str(sysconfig.get_config_var("CC") or "cc")
    return shutil.which(cc.split()[0])


def mypyc_present() -> bool:
    return importlib.util.find_spec("mypyc") is not None


def module_paths(package: Path) -> list[str]:
    return [os.path.relpath(package / "core" / f"{m}.py", ROOT) for m in COMPILED_MODULES]


def compile_into(package: Path, build_lib: Path, build_temp: Path, inplace: bool) -> None:
    """Run mypyc and the C compiler on ``package``'s core; the .so files land in build_lib
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


def build_out_of_tree(out: Path) -> Path:
    """A complete, importable copy of the package with the core compiled, under out/lib.

    The copy is what gets compiled, so the .so files and the .py files beside them are one
    snapshot even while someone edits src/.
    """
    lib = out / "lib"
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    shutil.copytree(PACKAGE, lib / "abyssal", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    compile_into(lib / "abyssal", lib, out / "temp", inplace=False)
    return lib


def clean_inplace() -> list[Path]:
    removed = [*PACKAGE.glob(f"core/*{EXT_SUFFIX}"), *SRC.glob(f"{GROUP_NAME}__mypyc*{EXT_SUFFIX}")]
    for path in removed:
        path.unlink()
    return removed


def status(pythonpath: Path | None) -> str:
    """Ask a fresh interpreter which files the core modules load from."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    code = (
        "import importlib\n"
        f"for m in {COMPILED_MODULES!r}:\n"
        "    f = importlib.import_module('abyssal.core.' + m).__file__\n"
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
    cc = compiler_present()
    if cc is None or not mypyc_present():
        missing = "no C compiler" if cc is None else "no mypyc (pip install mypy==2.4.1)"
        print(f"build_mypyc: {missing}; keeping the pure-Python build (nothing to do)")
        return 0
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
