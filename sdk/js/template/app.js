// my_link: a starter link. It adds one tag (option `tag`, default "reviewed")
// and an analysis entry counting the dialogs. Replace the body of `run`.

import { link, log } from './conserver-link.js';

export const processor = link({
  defaults: { tag: 'reviewed' },
  run(ctx, vcon) {
    const tag = ctx.options.tag;
    vcon.addTag(tag, tag);
    vcon.addAnalysis({ type: 'dialog_count', vendor: 'my_link', body: { dialogs: vcon.dialog.length } });
    log.info(`tagged ${ctx.vconUuid}`);
    return vcon;
  },
});
