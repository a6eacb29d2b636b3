#!/usr/bin/env python3
"""A small handheld front end for romlib-device, with no dependencies beyond Python 3.

It lists the games of a library served over HTTP (`romlib serve`, or any static server
holding a library folder), optionally of one system, lets you pick one, installs it with
a text progress bar drawn from `--progress json`, and explains a failure by its error code
(docs/handhelds.md, "In a front end: machine-readable output"). Ctrl-C cancels the
install the way a front end should: SIGTERM to romlib-device, which stops cleanly and
keeps what it downloaded, so installing the game again resumes.

    python3 examples/frontend.py --from http://nas.local:8080/ \\
        --install-dir /mnt/SDCARD/Roms [--layout minui] [--system gb] \\
        --trusted-key publisher.pub [--game TITLE]

Without --game it shows a numbered list and reads the number from standard input.
Exit codes: 0 installed, 1 the install failed (the reason is printed), 2 bad usage,
130 cancelled.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys

# The JSON version this front end understands (field "v" of every object).
JSON_VERSION = 1

# What to tell the user for each error code; anything else shows the message alone.
ADVICE = {
    "not_found": "The game is no longer in the library: refresh the list.",
    "untrusted": "The game is not signed by a key you trust: it was not installed.",
    "no_trusted_keys": "No trusted key is set up: add the publisher's .pub key.",
    "damaged": "The library's copy is damaged: ask its owner to run `romlib verify`.",
    "network": "The server could not be reached: try again; the download resumes.",
    "no_space": "The card is full: free some space, then try again.",
    "not_ours": "A folder of that name exists and romlib did not install it: left alone.",
    "usage": "The front end called romlib-device wrongly: please report it.",
    "cancelled": "Cancelled: nothing was installed; install it again to resume the download.",
    "locked": "Another install is running in that folder: try again when it is done.",
    "no_layout_folder": "The layout has no folder for this game's system.",
}


def run_json(cmd):
    """Runs a romlib-device command with --json; returns its one JSON object."""
    p = subprocess.run(cmd + ["--json"], capture_output=True, text=True)
    try:
        obj = json.loads(p.stdout)
    except ValueError:
        raise SystemExit(f"romlib-device printed no JSON (exit {p.returncode}): {p.stderr.strip()}")
    check_version(obj)
    return obj


def check_version(obj):
    if obj.get("v") != JSON_VERSION:
        raise SystemExit(f"romlib-device speaks JSON version {obj.get('v')}, not {JSON_VERSION}")


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def draw(p, width=30):
    """One progress line, redrawn in place."""
    total = p.get("bytes_total") or 0
    done = p["bytes_done"]
    frac = min(done / total, 1.0) if total else 0.0
    bar = "#" * int(frac * width) + "." * (width - int(frac * width))
    eta = p.get("eta")
    eta_text = f" {eta // 60}:{eta % 60:02d} left" if eta is not None else ""
    net = f" ({mib(p['bytes_downloaded'])} downloaded)" if p["bytes_downloaded"] else ""
    sys.stdout.write(f"\r[{bar}] {frac * 100:5.1f}% {mib(done)} of {mib(total)}{net}{eta_text}  ")
    sys.stdout.flush()


def install(device, url, title, install_dir, layout, keys):
    """Installs `title`, drawing progress; returns (result, error) objects, one of them None.
    Ctrl-C sends SIGTERM to romlib-device and waits for it to stop cleanly."""
    cmd = device + ["install", "--from", url, "-g", title, "--install-dir", install_dir,
           "--progress", "json"] + (["--layout", layout] if layout else []) + keys
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        return read_install(proc)
    except KeyboardInterrupt:
        proc.terminate()
        return read_install(proc)


def read_install(proc):
    """Reads the JSON lines of an install until it ends."""
    result = error = None
    drawn = False
    for line in proc.stderr:
        obj = json.loads(line)
        check_version(obj)
        kind = obj["type"]
        if kind == "progress":
            draw(obj)
            drawn = True
        elif kind == "warning":
            print(("\n" if drawn else "") + "note: " + obj["message"])
            drawn = False
        elif kind == "result":
            result = obj
        elif kind == "error":
            error = obj
    code = proc.wait()
    if drawn:
        print()
    if result is None and error is None:
        error = {"code": "io", "message": f"romlib-device ended with exit {code} and said nothing",
                 "exit": code}
    return result, error


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="url", required=True, help="library URL")
    ap.add_argument("--install-dir", required=True)
    ap.add_argument("--trusted-key", action="append", default=[])
    ap.add_argument("--game", help="title id to install (default: ask)")
    ap.add_argument("--system", help="list only games of this system, e.g. gb")
    ap.add_argument("--layout", help="install where this handheld OS looks: muos, knulli, "
                                     "minui, onion, arkos")
    ap.add_argument("--device", default=os.environ.get("ROMLIB_DEVICE", "romlib-device"),
                    help="the romlib-device command, e.g. 'qemu-aarch64 ./romlib-device' "
                         "(default: $ROMLIB_DEVICE, else romlib-device from PATH)")
    a = ap.parse_args()
    device = shlex.split(a.device)
    keys = [arg for k in a.trusted_key for arg in ("--trusted-key", k)]

    system = ["--system", a.system] if a.system else []
    listing = run_json(device + ["list-games", "--from", a.url] + system + keys)
    if listing["type"] == "error":
        print(f"cannot list the library: {listing['message']}")
        print(ADVICE.get(listing["code"], ""))
        return 1
    games = [g for g in listing["games"] if g["trusted"] and not g["damaged"]]
    if not games:
        print("no trusted game in this library")
        return 1
    for i, g in enumerate(games, 1):
        print(f"{i:3}. {g['name']} [{g['system'] or '?'}] ({mib(g['size'])})")
    if a.game:
        title = a.game
    else:
        choice = input("install which? ").strip()
        if not choice.isdigit() or not 1 <= int(choice) <= len(games):
            print(f"pick a number from 1 to {len(games)}")
            return 2
        title = games[int(choice) - 1]["title"]

    result, error = install(device, a.url, title, a.install_dir, a.layout, keys)
    if error:
        print(f"install failed [{error['code']}]: {error['message']}")
        advice = ADVICE.get(error["code"])
        if advice:
            print(advice)
        return 130 if error["code"] == "cancelled" else 1
    print(f"installed {result['game']} in {result['path']}: {mib(result['bytes'])}, "
          f"{mib(result['bytes_downloaded'])} downloaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
