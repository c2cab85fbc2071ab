"""The schemathesis CLI, with one work-around for a CPython 3.11 bug.

Debian 12's CPython 3.11 sometimes raises "AST constructor recursion depth mismatch" from `ast.parse` when it runs
deep in a call stack (CPython gh-106905). Hypothesis parses a lambda's source only to *describe* a strategy built
with `.filter(lambda ...)`, and schemathesis then reports the whole operation as a "Runtime Error" without testing it.
Here a description that cannot be made falls back to a generic one; nothing that is generated or checked changes.
"""

import sys

import hypothesis.internal.lambda_sources as lambda_sources

_describe = lambda_sources._lambda_description


def _lambda_description(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except (SystemError, RuntimeError, RecursionError) as error:
        if "recursion depth mismatch" not in str(error):
            raise
        return "lambda: <source not parsed>"


lambda_sources._lambda_description = _lambda_description

from schemathesis.cli import schemathesis  # noqa: E402  (after the patch, so every later import sees it)

if __name__ == "__main__":
    sys.argv[0] = "schemathesis"
    sys.exit(schemathesis())
