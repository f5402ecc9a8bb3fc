"""The ``bnadapt`` command line: info, train, predict, adapt, report, fingerprint, export,
gui, demo, strokes.

Expected problems (bad files, wrong shapes, unknown devices, bad option values) print one
line that says what to do and exit with code 2; nothing half-written is left at an output
path. The commands call the same core functions as the napari widgets.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import BnAdaptError
from ..memory import memory_limit, parse_size
from .guards import check_paths
from .parser import make_parser

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The ``bnadapt`` parser; ``args.command`` names the command to run."""
    return make_parser()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bnadapt`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    quiet_library_logs()
    try:
        check_paths(args)
        limit = parse_size(args.max_memory) if getattr(args, "max_memory", None) else None
        with memory_limit(limit):
            # The commands (and torch with them) load only once the arguments are read:
            # --help and usage errors answer at once.
            from .commands import HANDLERS

            return int(HANDLERS[args.command](args) or 0)
    except BnAdaptError as exc:
        # One line, whatever a message quotes from a library.
        print(f"bnadapt: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(
            "bnadapt: error: out of memory: use smaller pieces (--tile, --batch-size, "
            "--block, --patches) or write the result block by block (--out mask.zarr); "
            "nothing was written",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "bnadapt: interrupted; no output was finished (blocks already written to a "
            ".zarr.partial store stay there: --resume continues from them)",
            file=sys.stderr,
        )
        return 130


def quiet_library_logs() -> None:
    """Keep bioimage.io's validation chatter (loguru, on stderr) out of the command's
    output: its problems reach the user as this package's one-line errors."""
    try:
        from loguru import logger
    except ImportError:  # bioimage.io (and loguru with it) is optional at run time
        return
    logger.disable("bioimageio")


if __name__ == "__main__":
    raise SystemExit(main())
