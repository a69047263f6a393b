"""The `hark` command line (filled in below)."""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="hark")
    sub = parser.add_subparsers(dest="command", required=True)
    model = sub.add_parser("model", help="the bundled Whisper model")
    model.add_argument("action", choices=["install", "path"])
    args = parser.parse_args(argv)
    if args.command == "model":
        from hark import models
        print(models.install())
    return 0


if __name__ == "__main__":
    sys.exit(main())
