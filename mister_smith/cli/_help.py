"""Texts of the subcommands' ``--help``: what they do and examples to copy.

Kept apart from the parser so that ``__init__`` stays the wiring of the commands.
"""

from __future__ import annotations

from typing import Final

RUN_DESCRIPTION: Final = """\
Run your own task with a team composed for it: the task's wording picks the roles
(coordinator, researcher, surveyor, writer, ...) and how they work together (pipeline,
parallel fan-out, or a lead with delegates), under a supervisor of its own.

With the embedded scripted model (--model scripted, the default: no API key, no
network) the team can do one thing: survey a source tree. It lists the --workspace
directory, reads its Python files, counts files, lines and public names per package and
writes a report; the task must ask for a survey ("survey the source tree and write a
report"). Any other task needs a real model: --model openai or --model anthropic.
"""

RUN_EXAMPLES: Final = """\
examples:
  mister-smith run "survey the source tree and write a report" --workspace src/
  OPENAI_API_KEY=... mister-smith run "summarise the README" --model openai
  mister-smith run "survey the source tree" --config production.toml --timeout 120
  mister-smith run "index the docs" --durable   # recorded in the store until done
  mister-smith run --resume                     # take up tasks whose process died
"""

DEMO_EXAMPLES: Final = """\
examples:
  mister-smith demo                          # this package, with injected faults
  mister-smith demo --no-faults --plain      # no faults, plain lines (for logs)
  mister-smith demo --workspace ~/src/myproject
  mister-smith demo --nodes 3                # three node processes, one killed midway
  mister-smith demo --durable                # its process ends midway; a second one finishes
"""

CONFIG_EXAMPLES: Final = """\
examples:
  mister-smith config > mister_smith.toml                # every setting, with defaults
  mister-smith config --config production.toml           # what that file amounts to
  MISTER_SMITH__MONITORING__HTTP_PORT=9100 mister-smith config
"""
