"""my_link: a starter link. It adds one tag (option `tag`, default "reviewed")
and an analysis entry counting the dialogs. Replace the body of `run`."""

from conserver_link import Link, host


class Processor(Link):
    defaults = {"tag": "reviewed"}

    def run(self, ctx, vcon):
        tag = ctx.options["tag"]
        vcon.add_tag(tag, tag)
        vcon.add_analysis(type="dialog_count", vendor="my_link", body={"dialogs": len(vcon.dialog)})
        host.info(f"tagged {ctx.vcon_uuid}")
        return vcon
