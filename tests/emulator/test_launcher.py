"""The emulator's option list is reusable, so `gemini-embed emulator` cannot drift from it."""

from __future__ import annotations

import argparse

import pytest
from google import genai
from google.genai import errors, types

from llama_index_gemini_embed.emulator.__main__ import (
    add_emulator_arguments,
    build_parser,
    emulator_from_args,
)


def test_add_emulator_arguments_on_a_foreign_parser_launches_the_same_emulator() -> None:
    root = argparse.ArgumentParser(prog="gemini-embed")
    sub = root.add_subparsers(dest="command")
    add_emulator_arguments(sub.add_parser("emulator"))
    argv = ["--port", "0", "--api-key", "k1", "--items-per-minute", "2", "--seed", "7"]
    ns = root.parse_args(["emulator", *argv])
    launch = emulator_from_args(ns)
    assert launch == emulator_from_args(build_parser().parse_args(argv))
    assert launch.api_keys == ("k1",) and launch.quota.items_per_minute == 2 and launch.seed == 7
    with launch.emulator() as emu:
        c = genai.Client(api_key="k1", http_options=types.HttpOptions(base_url=emu.base_url))
        c.models.embed_content(
            model="gemini-embedding-001",
            contents=[types.Content(parts=[types.Part(text=t)]) for t in "ab"],
        )
        with pytest.raises(errors.ClientError) as exc:  # --items-per-minute 2 applies
            c.models.embed_content(model="gemini-embedding-001", contents="c")
        assert exc.value.code == 429
        c.close()


def test_every_option_of_the_standalone_launcher_is_in_the_shared_list() -> None:
    standalone = {a.dest for a in build_parser()._actions}
    shared = {a.dest for a in add_emulator_arguments(argparse.ArgumentParser())._actions}
    assert standalone == shared and {"host", "port", "api_keys", "strict_length"} <= shared
