// `tag` in JavaScript: the same tags, in the same format, as the Rust `tag` link
// (options `tags`, default ["iron", "maiden"]; each entry `t` becomes `t:t`).

import { link } from './conserver-link.js';

export const processor = link({
  defaults: { tags: ['iron', 'maiden'] },
  run(ctx, vcon) {
    for (const tag of ctx.options.tags) vcon.addTag(tag, tag);
    return vcon;
  },
});
