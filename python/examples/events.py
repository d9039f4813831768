"""Stream a run's events and react by type: compare `ev.type`, or narrow with `isinstance`."""

from sluice import DoneEvent, Sluice

code = "for i in range(3):\n    print(f'line {i}')\n"

with Sluice() as client:
    session = client.sessions.create()
    for ev in session.stream(code, "python"):
        if ev.type == "stdout":
            print(ev.content, end="")
        if isinstance(ev, DoneEvent):
            print(f"{ev.reason} {ev.exit_code}")
    session.delete()
