"""`tag` in Python: the same tags, in the same format, as the Rust `tag` link
(options `tags`, default ["iron", "maiden"]; each entry `t` becomes `t:t`)."""

from conserver_link import Link


class Processor(Link):
    defaults = {"tags": ["iron", "maiden"]}

    def run(self, ctx, vcon):
        for tag in ctx.options["tags"]:
            vcon.add_tag(tag, tag)
        return vcon
