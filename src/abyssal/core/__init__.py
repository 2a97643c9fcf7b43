"""The pure core: instruments, messages, order books and the deterministic engine (no I/O)."""


def engine_build() -> str:
    """``compiled`` when the engine runs from mypyc's extension modules (``build_mypyc.py``),
    ``pure`` when from its ``.py`` sources: the same code either way, at different speeds."""
    from abyssal.core import engine

    return "compiled" if not str(engine.__file__).endswith(".py") else "pure"
