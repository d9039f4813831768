"""A3S Code's loop: stream an agent run's events and react by type."""

from sluice import Sluice

with Sluice() as client:
    session = client.sessions.create()
    for event in session.agent.stream("What is 6 * 7? Check it with Python."):
        if event.type == "text_delta":
            print(event.text, end="", flush=True)
        elif event.type == "tool_start":
            print(f"\n[{event.tool_name} running]")
        elif event.type == "tool_output_delta":
            print(event.text, end="")
        elif event.type == "tool_end":
            print(f"[{event.tool_name} exit {event.exit_code}]")
        elif event.type == "end":
            print(f"\n[complete: {event.total_tokens} tokens]")
    session.delete()
