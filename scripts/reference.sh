#!/usr/bin/env bash
# Regenerates README.md's command reference (between the reference markers) from the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
generated=$(cargo run --quiet -p xiebao -- reference)
python3 - "$generated" <<'PY'
import sys
generated = sys.argv[1]
path = "README.md"
text = open(path).read()
start = text.index("<!-- reference:start -->\n") + len("<!-- reference:start -->\n")
end = text.index("<!-- reference:end -->")
open(path, "w").write(text[:start] + generated.rstrip("\n") + "\n" + text[end:])
PY
