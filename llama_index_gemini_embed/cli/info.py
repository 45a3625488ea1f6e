"""``gemini-embed info``: a collection's embedding fingerprint, distance space and counts.

gemini-embed info --collection docs [--json]
"""

from __future__ import annotations

import argparse
import json

from ._common import EXIT_OK, Commands, add_command, add_store_options, open_store


def register(commands: Commands) -> None:
    """Add ``info`` and its options."""
    info = add_command(
        commands,
        "info",
        run=run,
        help="show a collection's embedding fingerprint and counts",
        description="Show a collection's embedding fingerprint, distance space and counts.",
    )
    add_store_options(info)
    info.add_argument("--json", action="store_true", help="print as JSON")


def run(args: argparse.Namespace) -> int:
    store = open_store(args, must_exist=True)
    try:
        index = store.get_index()
        data = {
            "collection": args.collection,
            "location": args.server or args.path or "./chroma",
            "fingerprint": store.fingerprint,
            "space": store.distance_space,
            "chunks": store.count(),
            "documents": len([doc for doc in index if doc]),
        }
    finally:
        store.close()
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    fingerprint = data["fingerprint"] or {}
    print(f"collection:  {data['collection']} ({data['location']})")
    print(f"model:       {fingerprint.get('model', '?')}")
    print(f"dimension:   {fingerprint.get('dimension', '?')}")
    for name, value in sorted(fingerprint.items()):
        if name not in ("model", "dimension"):
            print(f"{name + ':':<13}{value}")
    print(f"space:       {data['space']}")
    print(f"documents:   {data['documents']}")
    print(f"chunks:      {data['chunks']}")
    return EXIT_OK
