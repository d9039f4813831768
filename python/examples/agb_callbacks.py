"""AGB's quickstart shape: run code with callbacks that fire as the output arrives."""

import sys

from sluice import ErrorEvent, Sluice

code = """
import sys, time
for i in range(3):
    print(f"step {i}")
    time.sleep(0.1)
print("almost done", file=sys.stderr)
"""


def on_stdout(text: str) -> None:
    print(f"[stdout] {text}", end="")


def on_stderr(text: str) -> None:
    print(f"[stderr] {text}", end="", file=sys.stderr)


def on_error(error: ErrorEvent) -> None:
    print(f"[error] {error.code}: {error.error}", file=sys.stderr)


with Sluice() as client:
    session = client.sessions.create()
    result = session.run(code, "python", on_stdout=on_stdout, on_stderr=on_stderr, on_error=on_error)
    print(f"success={result.success} exit_code={result.exit_code} in {result.execution_time:.2f} s")
    session.delete()
