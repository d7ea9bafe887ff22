"""``croupier-devcluster``: build, start and stop the local control plane.

croupier-devcluster build                         # build (or find cached) binaries, print their directory
croupier-devcluster up --dir .demo/cluster         # foreground until SIGTERM/SIGINT
croupier-devcluster up --dir .demo/cluster --detach   # background; returns when ready, prints the kubeconfig path
croupier-devcluster status --dir .demo/cluster
croupier-devcluster env --dir .demo/cluster        # eval "$(croupier-devcluster env --dir ...)"
croupier-devcluster down --dir .demo/cluster
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from . import daemon
from .binaries import Binaries, BinariesNotFoundError, locate_binaries

DEFAULT_DIR = Path(".demo/cluster")


def _binaries(bin_dir: Path | None) -> Binaries:
    if bin_dir is None:
        return locate_binaries()
    binaries = Binaries(bin_dir.resolve())
    if missing := binaries.missing():
        raise BinariesNotFoundError(f"{bin_dir} lacks executables: {', '.join(missing)}")
    return binaries


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="croupier-devcluster", description="A local Kubernetes control plane: etcd, apiserver, controllers, kwok."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("build", help="build or locate the binaries and print their directory")

    def with_dir(command: argparse.ArgumentParser) -> None:
        command.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"cluster directory (default {DEFAULT_DIR})")

    up = commands.add_parser("up", help="start a control plane (foreground unless --detach)")
    with_dir(up)
    up.add_argument("--detach", action="store_true", help="run in the background; return once ready")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness (default 180)")
    up.add_argument(
        "--bin-dir",
        type=Path,
        help="directory with the binaries (default: $CROUPIER_CONTROLPLANE_BIN "
        "or the cached build of hack/controlplane)",
    )

    down = commands.add_parser("down", help="stop the control plane running in --dir")
    with_dir(down)
    down.add_argument("--timeout", type=float, default=60.0, help="seconds before SIGKILL (default 60)")

    with_dir(commands.add_parser("status", help="exit 0 when ready, 1 while starting, 3 when not running"))
    with_dir(commands.add_parser("env", help="print shell exports of KUBECONFIG and PATH (with kubectl)"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:  # one line per readiness poll is noise
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "build":
            print(locate_binaries().directory)
            return 0
        if args.command == "up":
            binaries = _binaries(args.bin_dir)
            if args.detach:
                return daemon.start_detached(args.dir, binaries, args.timeout)
            return daemon.serve(args.dir, binaries, args.timeout)
        if args.command == "down":
            return daemon.stop(args.dir, args.timeout)
        if args.command == "status":
            return daemon.status(args.dir)
        if args.command == "env":
            return _print_env(args.dir)
    except BinariesNotFoundError as error:
        logging.getLogger("croupier.devcluster").error("%s", error)
        return 2
    raise AssertionError(f"unhandled command {args.command}")


def _print_env(directory: Path) -> int:
    info = daemon.ClusterDir(directory.resolve()).ready_info()
    if info is None:
        print(f"# no ready control plane in {directory}", file=sys.stderr)
        return 3
    print(f"export KUBECONFIG={shlex.quote(str(info['kubeconfig']))}")
    print(f'export PATH={shlex.quote(str(info["binDir"]))}:"$PATH"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
