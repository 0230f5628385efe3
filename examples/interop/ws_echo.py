"""A WebSocket echo upstream (Python `websockets`) for pop_gateway tests: listens on
127.0.0.1 on a free port, prints `listening on PORT`, echoes every text message, and exits by
itself after --seconds."""

from __future__ import annotations

import argparse
import asyncio

from websockets.asyncio.server import serve


async def echo(ws) -> None:
    async for message in ws:
        await ws.send(message)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=60)
    args = p.parse_args()
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on {port}", flush=True)
        await asyncio.sleep(args.seconds)


if __name__ == "__main__":
    asyncio.run(main())
