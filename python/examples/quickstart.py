"""The README's example: run code, stream it, clean up."""

from sluice import Sluice

with Sluice() as client:  # SLUICE_URL (default http://127.0.0.1:8080) and SLUICE_API_KEY
    session = client.sessions.create(language="python")
    session.run("import statistics\ndata = [3, 1, 4, 1, 5, 9, 2, 6]")
    result = session.run("statistics.median(data)")
    print(result.results[0]["text/plain"])  # 3.5

    for ev in session.stream("for i in range(3):\n    progress(i * 50, 'working')\n    print(i)"):
        if ev.type == "stdout":
            print(ev.content, end="")
        elif ev.type == "progress":
            print(f"{ev.percent}% {ev.message}")
    session.delete()
