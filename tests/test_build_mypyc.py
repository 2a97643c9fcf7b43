"""build_mypyc's staleness rule: a compiled build is used only while it matches the sources."""

from __future__ import annotations

from pathlib import Path

import build_mypyc


def _package(root: Path) -> Path:
    pkg = root / "abyssal"
    (pkg / "core").mkdir(parents=True)
    (pkg / "core" / "engine.py").write_text("x = 1\n")
    (pkg / "default_config.toml").write_text("[server]\n")
    return pkg


def test_the_digest_follows_every_source_file_and_ignores_build_products(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    first = build_mypyc.source_digest(pkg)
    assert build_mypyc.source_digest(pkg) == first
    (pkg / "core" / "__pycache__").mkdir()
    (pkg / "core" / "__pycache__" / "engine.cpython-311.pyc").write_bytes(b"\0")
    (pkg / "core" / f"engine{build_mypyc.EXT_SUFFIX}").write_bytes(b"\0")
    assert build_mypyc.source_digest(pkg) == first, "compiled and cached files are not sources"
    (pkg / "core" / "engine.py").write_text("x = 2\n")
    edited = build_mypyc.source_digest(pkg)
    assert edited != first
    (pkg / "gateway.py").write_text("")
    assert build_mypyc.source_digest(pkg) != edited, "a new module changes the digest"
    (pkg / "gateway.py").unlink()
    (pkg / "core" / "engine.py").rename(pkg / "engine.py")
    assert build_mypyc.source_digest(pkg) != edited, "a moved module changes the digest"


def test_a_build_is_current_only_while_its_digest_matches(tmp_path: Path) -> None:
    pkg = _package(tmp_path / "src")
    out = tmp_path / "build"
    assert not build_mypyc.is_current(out, pkg), "no build at all"
    (out / "lib" / "abyssal").mkdir(parents=True)
    assert not build_mypyc.is_current(out, pkg), "a build without a digest (interrupted) is not used"
    build_mypyc.digest_path(out).write_text(build_mypyc.source_digest(pkg) + "\n")
    assert build_mypyc.is_current(out, pkg)
    (pkg / "core" / "engine.py").write_text("x = 3\n")
    assert not build_mypyc.is_current(out, pkg), "an edit after the build makes it stale"
