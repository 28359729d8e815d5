"""The README stays true: its tagged code blocks run and print what it says.

A block runs when the line before its fence is a comment such as
`<!-- test: expect="Done: resnet_sgd mode=eval" -->` (optionally with
`exit=2`); the blocks run in order, sharing one folder that stands in for the
README's `/tmp/ec_demo`, so a later block can use what an earlier one wrote.
"""

import glob
import os
import re
import subprocess
import sys

import pytest

from tests.testutil import MULTI_PROCESS_TIMEOUT_SECS, REPO_ROOT, seconds, subprocess_env

README = os.path.join(REPO_ROOT, "README.md")
DOCS = [README] + [os.path.join(REPO_ROOT, "docs", f) for f in
                   ("guide.md", "performance.md", "results.md")]
DEMO_DIR = "/tmp/ec_demo"
_TAG = re.compile(r"<!-- test:(?P<opts>.*?)-->\s*\n```(?P<lang>\w+)\n(?P<body>.*?)\n```",
                  re.S)
_OPT = re.compile(r'(\w+)=(?:"([^"]*)"|(\S+))')


def tagged_blocks(text: str) -> list[dict]:
  """[{lang, body, expect, exit}] of the tagged blocks, in README order."""
  blocks = []
  for match in _TAG.finditer(text):
    opts = {k: a or b for k, a, b in _OPT.findall(match.group("opts"))}
    blocks.append({"lang": match.group("lang"), "body": match.group("body"),
                   "expect": opts.get("expect", ""),
                   "exit": int(opts.get("exit", 0))})
  return blocks


def test_tags_are_found():
  blocks = tagged_blocks(open(README).read())
  assert len(blocks) >= 5
  assert {b["lang"] for b in blocks} == {"sh", "python"}
  assert all(b["expect"] for b in blocks)


def test_documents_need_nothing_outside_the_repository():
  for path in DOCS:
    text = open(path).read()
    assert "../shared" not in text, path
    # They speak about the package, not about how it was made.
    found = re.findall(r"\b(issues?|branch(?:es)?|lent)\b", text, re.I)
    assert not found, (path, found)


def test_each_high_figure_has_one_home():
  # A result and the table that lists it: at most two files name a figure.
  sources = [README] + glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")) + glob.glob(
      os.path.join(REPO_ROOT, "experiments", "*.py")) + glob.glob(
      os.path.join(REPO_ROOT, "estimator_cifar", "**", "*.py"), recursive=True)
  homes: dict[str, set[str]] = {}
  for path in sources:
    for figure in set(re.findall(r"\b[5-9]\d\.\d\d%", open(path).read())):
      homes.setdefault(figure, set()).add(os.path.relpath(path, REPO_ROOT))
  assert {f: h for f, h in homes.items() if len(h) > 2} == {}


@pytest.mark.slow
@pytest.mark.timeout(MULTI_PROCESS_TIMEOUT_SECS)
def test_readme_blocks_run(tmp_path):
  demo = str(tmp_path / "ec_demo")
  # The README runs `.venv/bin/python` as a user in a checkout would.
  venv_python = tmp_path / ".venv" / "bin" / "python"
  venv_python.parent.mkdir(parents=True)
  venv_python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
  venv_python.chmod(0o755)
  env = subprocess_env(PATH=os.path.dirname(sys.executable) + os.pathsep +
                       os.environ.get("PATH", ""))
  for block in tagged_blocks(open(README).read()):
    body = block["body"].replace(DEMO_DIR, demo)
    command = (["bash", "-e", "-c", body] if block["lang"] == "sh" else
               [sys.executable, "-c", body])
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=seconds(300))
    output = proc.stdout + proc.stderr
    assert proc.returncode == block["exit"], (block["body"], output[-3000:])
    assert block["expect"].replace(DEMO_DIR, demo) in output, (
        block["body"], block["expect"], output[-3000:])
