"""A runaway: allocates without bound (the memory cap must stop it)."""

from conserver_link import Link


class Processor(Link):
    def run(self, ctx, vcon):
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
