"""HopX's shape: stream a shell command's lines as it prints them, then the async twin."""

import asyncio

from sluice import AsyncSluice, Sluice

script = "import time\nfor i in range(3):\n    print(f'processed batch {i}')\n    time.sleep(0.1)\n"

with Sluice() as client:
    sandbox = client.sessions.create()
    sandbox.files.write("/workspace/app/process.py", script)
    for line in sandbox.commands.stream("cd /workspace/app && python3 -u process.py"):
        print(f"{line.stream}: {line}")
    sandbox.delete()


async def main() -> None:
    async with AsyncSluice() as client:
        sandbox = await client.sessions.create()
        await sandbox.files.write("app/process.py", script)
        async for line in sandbox.commands.stream("cd app && python3 process.py && echo done >&2"):
            print(f"async {line.stream}: {line}")
        await sandbox.delete()


asyncio.run(main())
