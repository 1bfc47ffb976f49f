"""A link shaped like an inapt UBS's, for make bench-fleet: a TCP proxy on the controller's loopback that delays
every byte by a one-way latency and lets it through at a line rate, in both directions.

The lab kernel has tbf but no netem (no delay qdisc), so the delay is made here, in user space: each chunk read
from one side is sent to the other when it would have arrived over the link - ``delay`` after it was read, and no
sooner than the line (``rate``) is free of the chunks before it. Defaults: 4 Mbit/s, 50 ms each way (100 ms round
trip), what a UBS under the 16 Mb of the technical note sees on a busy WAN.

Usage: slowlink.py --ports-file FILE [--rate-kbit 4000] [--delay-ms 50] TARGET_HOST:PORT...
Listens on 127.0.0.1 on one free port per target and writes ``<port> <target>`` lines to FILE once listening.
Lab only: never installed on a server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time


async def _pipe(reader, writer, delay, rate, line):
    """Copy reader to writer as the link would deliver it: each chunk leaves when the line (``line[0]``: when it
    is free, shared by every connection to the same UBS in this direction) is free of the ones before it (``rate``
    bytes per second) and arrives ``delay`` seconds later."""
    queue = asyncio.Queue()

    async def receive():
        while True:
            data = await reader.read(65536)
            line[0] = max(line[0], time.monotonic()) + len(data) / rate
            await queue.put((line[0] + delay, data))
            if not data:
                return

    async def deliver():
        while True:
            arrival, data = await queue.get()
            wait = arrival - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    try:
        await asyncio.gather(receive(), deliver())
    except (ConnectionError, OSError):
        pass


def _handler(target, delay, rate):
    host, port = target.rsplit(":", 1)
    up, down = [0.0], [0.0]  # one line per direction per UBS, whatever the number of connections

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pipe(client_reader, server_writer, delay, rate, up), _pipe(server_reader, client_writer, delay, rate, down)
        )
        for writer in (client_writer, server_writer):
            writer.close()

    return handle


async def main(args):
    delay, rate = args.delay_ms / 1000.0, args.rate_kbit * 1000 / 8
    lines, servers = [], []
    for target in args.targets:
        server = await asyncio.start_server(_handler(target, delay, rate), "127.0.0.1", 0)
        servers.append(server)
        lines.append(f"{server.sockets[0].getsockname()[1]} {target}\n")
    tmp = args.ports_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    os.replace(tmp, args.ports_file)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports-file", required=True)
    parser.add_argument("--rate-kbit", type=float, default=4000.0)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("targets", nargs="+")
    asyncio.run(main(parser.parse_args()))
