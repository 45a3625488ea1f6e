"""``python -m llama_index_gemini_embed.cli``: the same as the ``gemini-embed`` command."""

import sys

from .app import main

if __name__ == "__main__":
    sys.exit(main())
