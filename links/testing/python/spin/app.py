"""A runaway: loops forever (the fuel budget or the deadline must stop it)."""

from conserver_link import Link


class Processor(Link):
    def run(self, ctx, vcon):
        count = 0
        while True:
            count += 1
