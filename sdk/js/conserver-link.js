// conserver-link: write conserver links in JavaScript.
//
// A link is an ES module exporting `processor`, built with `link()`; the
// ComponentizeJS tool turns it into a WebAssembly component the conserver runs
// in its sandbox:
//
//   import { link } from './conserver-link.js';
//   export const processor = link({
//     defaults: { tags: ['iron', 'maiden'] },
//     run(ctx, vcon) {
//       for (const tag of ctx.options.tags) vcon.addTag(tag, tag);
//       return vcon;
//     },
//   });
//
// `run` answers as a Python conserver link does: the vCon to go on, `null` or
// `undefined` to halt the chain quietly, or a thrown error to send the vCon to
// the dead-letter queue (`LinkError` says whether a retry may help). `unchanged()`
// goes on without rewriting the vCon; `outcome(vcon, {routeTo, expireAfter})`
// adds requests for the host.
//
// JSON is read and written losslessly: numbers keep their source text (so
// `20.0` stays `20.0` and large integers stay exact) and object keys keep their
// order, so a JavaScript link's output matches a Rust or Python link's.
//
// Build: componentize-js app.js --wit wit/link.wit -n link -o link.wasm
//          -d stdio random clocks http fetch-event

import { write as logWrite } from 'vcon:conserver/log@0.1.0';
import { get as secretGet } from 'vcon:conserver/secrets@0.1.0';

// ---------------------------------------------------------------- lossless JSON

/** A JSON number kept as its source text. */
export class JsonNumber {
  constructor(text) {
    this.text = text;
  }
  valueOf() {
    return Number(this.text);
  }
  toString() {
    return this.text;
  }
  toJSON() {
    return MARK + this.text;
  }
}

const ORDER = Symbol('key order');

const WHITESPACE = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** The lossless parser written out in JavaScript: the fallback for documents
 * the fast path cannot take (integer-like object keys, which `JSON.parse` would
 * reorder, or strings holding the number marker). */
function parseByHand(text) {
  handParsed++;
  let i = 0;
  const fail = (what) => {
    throw new LinkError(`the vCon is not valid JSON: ${what} at offset ${i}`);
  };
  const space = () => {
    WHITESPACE.lastIndex = i;
    WHITESPACE.test(text);
    i = WHITESPACE.lastIndex;
  };
  const string = () => {
    const start = i;
    let end = text.indexOf('"', i + 1);
    let escaped = false;
    for (;;) {
      if (end < 0) fail('unterminated string');
      let backslashes = 0;
      while (text.charCodeAt(end - 1 - backslashes) === 92) backslashes++;
      if (backslashes % 2 === 0) break;
      escaped = true;
      end = text.indexOf('"', end + 1);
    }
    i = end + 1;
    const raw = text.slice(start + 1, end);
    if (!escaped && raw.indexOf('\\') < 0) return raw;
    return JSON.parse(text.slice(start, i));
  };
  const value = () => {
    space();
    const c = text.charCodeAt(i);
    if (c === 123) {
      // {
      i++;
      const object = {};
      const keys = [];
      space();
      if (text.charCodeAt(i) === 125) {
        i++;
        return object;
      }
      for (;;) {
        space();
        if (text.charCodeAt(i) !== 34) fail('expected a key');
        const key = string();
        space();
        if (text.charCodeAt(i++) !== 58) fail('expected `:`');
        if (!Object.prototype.hasOwnProperty.call(object, key)) keys.push(key);
        // defineProperty: a key called `__proto__` stays a key.
        Object.defineProperty(object, key, { value: value(), writable: true, enumerable: true, configurable: true });
        space();
        const next = text.charCodeAt(i++);
        if (next === 44) continue;
        if (next !== 125) fail('expected `,` or `}`');
        break;
      }
      if (keys.some((k) => /^(0|[1-9][0-9]*)$/.test(k))) {
        Object.defineProperty(object, ORDER, { value: keys, enumerable: false });
      }
      return object;
    }
    if (c === 91) {
      // [
      i++;
      const array = [];
      space();
      if (text.charCodeAt(i) === 93) {
        i++;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        const next = text.charCodeAt(i++);
        if (next === 44) continue;
        if (next !== 93) fail('expected `,` or `]`');
        return array;
      }
    }
    if (c === 34) return string();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const number = NUMBER.exec(text);
    if (!number) fail('unexpected character');
    i = NUMBER.lastIndex;
    return new JsonNumber(number[0]);
  };
  const result = value();
  space();
  if (i !== text.length) fail('trailing text');
  return result;
}

// The fast path: the engine's own JSON parser does the work. A number that
// would not survive a round trip through a JS number (`1.0`, `2e5`, `-0`, large
// integers) is first turned into a marked string by one native `replace`, then
// back into a `JsonNumber` by one walk over the parsed document. The `replace`
// pattern swallows whole runs of strings, punctuation and numbers that do
// round-trip, so its callback runs only around the others (calls into
// JavaScript are what costs fuel in a component). Writing is `JSON.stringify`,
// with `JsonNumber.toJSON` giving the marked string and one native `replace`
// unmarking it.
const MARK = '\u0000\u0001n';
// A number JavaScript writes back as it was read: an integer of at most 15
// digits (not -0), or a decimal of at most 15 digits, not ending in 0, and not
// below 1e-6 (which JavaScript writes with an exponent).
const ROUND_TRIP = String.raw`(?:-?[1-9]\d{0,14}|0|-?(?:[1-9]\d{0,7}|0)\.(?:[1-9]|\d{0,5}[1-9])|-?[1-9]\d{0,7}\.\d{0,6}[1-9]|-?0\.0{0,5}[1-9](?:\d{0,5}[1-9])?)(?![\d.eE])`;
// Strings in the unrolled form and runs bounded in length, so the regex engine
// never keeps a backtracking entry per character or per token of a large vCon.
const SKIP = String.raw`(?:"[^"\\]*(?:\\.[^"\\]*)*"|[^"\d-]+|${ROUND_TRIP}){1,2000}`;
const OTHER_NUMBER = String.raw`-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?`;
const TOKENS = new RegExp(`${SKIP}|(${OTHER_NUMBER})`, 'g');
const MARKED = /"\\u0000\\u0001n([^"]*)"/g;
const INTEGER_KEY = /"(?:0|[1-9][0-9]*)"\s*:/;

/** Turn marked strings below `root` back into `JsonNumber`s. */
function unmark(root) {
  const stack = [root];
  while (stack.length) {
    const node = stack.pop();
    const keys = Array.isArray(node) ? null : Object.keys(node);
    const count = keys ? keys.length : node.length;
    for (let k = 0; k < count; k++) {
      const key = keys ? keys[k] : k;
      const value = node[key];
      if (typeof value === 'string') {
        if (value.charCodeAt(0) === 0 && value.startsWith(MARK)) node[key] = new JsonNumber(value.slice(MARK.length));
      } else if (value !== null && typeof value === 'object') stack.push(value);
    }
  }
  return root;
}

/** Parse JSON text; numbers become plain numbers when they round-trip
 * exactly and `JsonNumber`s when they do not. */
export function parse(text) {
  if (INTEGER_KEY.test(text) || text.includes('\\u0000')) return parseByHand(text);
  let marked = 0;
  const prepared = text.replace(TOKENS, (token, number) => {
    if (number === undefined || String(Number(number)) === number) return token;
    marked++;
    return `"\\u0000\\u0001n${number}"`;
  });
  let doc;
  try {
    doc = JSON.parse(prepared);
  } catch (error) {
    throw new LinkError(`the vCon is not valid JSON: ${error.message}`);
  }
  return marked > 0 && doc !== null && typeof doc === 'object' ? unmark(doc) : doc;
}

function keysOf(object) {
  const own = Object.keys(object);
  const order = object[ORDER];
  if (!order) return own;
  const known = order.filter((k) => Object.prototype.hasOwnProperty.call(object, k));
  const seen = new Set(known);
  return known.concat(own.filter((k) => !seen.has(k)));
}

/** Write JSON compactly; `JsonNumber`s are written as they were read and keys
 * keep the order they were read in. */
export function stringify(value) {
  if (!hasOrder(value)) return JSON.stringify(value).replace(MARKED, '$1');
  return stringifyByHand(value);
}

/** Whether some object below `value` records a key order `JSON.stringify`
 * would not keep (only documents parsed by hand have one). */
function hasOrder(value) {
  return handParsed > 0 && value !== null && typeof value === 'object';
}

/** Documents parsed by hand: their strings may hold the number marker, and
 * their objects a key order, so they are written by hand too. */
let handParsed = 0;

function stringifyByHand(value) {
  if (value === null || value === undefined) return 'null';
  if (value instanceof JsonNumber) return value.text;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new LinkError('a number in the vCon is not finite');
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stringifyByHand).join(',')}]`;
  const parts = [];
  for (const key of keysOf(value)) {
    if (value[key] === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${stringifyByHand(value[key])}`);
  }
  return `{${parts.join(',')}}`;
}

/** A string as Python's `json.dumps` writes it (ASCII only). */
function pythonString(text) {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (code < 0x20 || code > 0x7e) {
      const units = code > 0xffff ? [0xd800 + ((code - 0x10000) >> 10), 0xdc00 + ((code - 0x10000) & 0x3ff)] : [code];
      for (const unit of units) out += `\\u${unit.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return `${out}"`;
}

/** JSON as Python's `json.dumps` writes it (`, ` and `: `, ASCII only), as the
 * Python conserver encodes tag lists and analysis bodies. */
export function pythonDumps(value) {
  if (value === null || value === undefined) return 'null';
  if (value instanceof JsonNumber) return value.text;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return pythonString(value);
  if (Array.isArray(value)) return `[${value.map(pythonDumps).join(', ')}]`;
  return `{${keysOf(value)
    .filter((k) => value[k] !== undefined)
    .map((k) => `${pythonString(k)}: ${pythonDumps(value[k])}`)
    .join(', ')}}`;
}

// ---------------------------------------------------------------- the vCon

const isTags = (entry) =>
  entry !== null && typeof entry === 'object' && (entry.purpose === 'tags' || entry.type === 'tags');

function tagList(body) {
  let list = body;
  if (typeof body === 'string') {
    if (!body.trimStart().startsWith('[')) return [];
    try {
      list = parse(body);
    } catch {
      return [];
    }
  }
  if (!Array.isArray(list)) return [];
  return list.map((item) => (typeof item === 'string' ? item : stringify(item)));
}

/** A vCon document (`vcon.doc` is the object itself; change it freely). */
export class Vcon {
  constructor(doc) {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new LinkError('a vCon must be a JSON object');
    this.doc = doc;
  }
  static fromJson(text) {
    return new Vcon(parse(text));
  }
  toJson() {
    return stringify(this.doc);
  }
  get uuid() {
    return this.doc.uuid;
  }
  get parties() {
    return this.doc.parties ?? [];
  }
  get dialog() {
    return this.doc.dialog ?? [];
  }
  get analysis() {
    return this.doc.analysis ?? [];
  }
  get attachments() {
    return this.doc.attachments ?? [];
  }
  array(key) {
    if (this.doc[key] === undefined || this.doc[key] === null) this.doc[key] = [];
    if (!Array.isArray(this.doc[key])) throw new LinkError(`\`${key}\` must be an array`);
    return this.doc[key];
  }
  /** Add `name:value` to the tags attachment (created when absent), in the
   * Python conserver's format; tags are appended without de-duplication. */
  addTag(name, value) {
    const attachments = this.array('attachments');
    let entry = attachments.find(isTags);
    if (!entry) {
      entry = { purpose: 'tags', body: '[]', encoding: 'json' };
      attachments.push(entry);
    }
    const tags = tagList(entry.body);
    tags.push(`${name}:${value}`);
    entry.body = pythonDumps(tags);
    entry.encoding = 'json';
  }
  /** Every tag as `[name, value]`. */
  tags() {
    const entry = this.attachments.find(isTags);
    if (!entry) return [];
    return tagList(entry.body).map((tag) => {
      const at = tag.indexOf(':');
      return at < 0 ? [tag, ''] : [tag.slice(0, at), tag.slice(at + 1)];
    });
  }
  getTag(name) {
    const found = this.tags().find(([n]) => n === name);
    return found ? found[1] : undefined;
  }
  /** Append an analysis entry; an object or array body is stored as a JSON
   * string with `encoding: "json"`, as the Python conserver does. */
  addAnalysis({ type, vendor, body, dialog, ...extra }) {
    const entry = { type };
    if (dialog !== undefined) entry.dialog = dialog;
    entry.vendor = vendor;
    if (body !== null && typeof body === 'object' && !(body instanceof JsonNumber)) {
      entry.body = pythonDumps(body);
      entry.encoding = 'json';
    } else entry.body = body;
    Object.assign(entry, extra);
    this.array('analysis').push(entry);
  }
}

// ---------------------------------------------------------------- the link

/** Fail the vCon with `message`; `retryable` says whether a retry may help. */
export class LinkError extends Error {
  constructor(message, retryable = false) {
    super(message);
    this.retryable = retryable;
  }
}

const UNCHANGED = Symbol('unchanged');

/** Answer from `run`: go on without rewriting the vCon. */
export const unchanged = () => UNCHANGED;

/** Answer from `run` with requests: `routeTo` lists, `expireAfter` seconds. */
export const outcome = (vcon, { routeTo = [], expireAfter } = {}) => ({ [OUTCOME]: true, vcon, routeTo, expireAfter });
const OUTCOME = Symbol('outcome');

function action(answer) {
  if (answer === null || answer === undefined) return { tag: 'halt' };
  if (answer === UNCHANGED || typeof answer === 'string') return { tag: 'proceed', val: undefined };
  if (answer instanceof Vcon) return { tag: 'proceed', val: answer.toJson() };
  if (typeof answer === 'object') return { tag: 'proceed', val: stringify(answer) };
  throw new LinkError(`run() answered ${typeof answer}: return the vCon, null, unchanged() or outcome()`);
}

function verdict(answer) {
  const directives = [];
  if (answer !== null && typeof answer === 'object' && answer[OUTCOME]) {
    if (answer.routeTo.length) directives.push({ tag: 'route-to', val: answer.routeTo });
    if (answer.expireAfter !== undefined) directives.push({ tag: 'expire-after-secs', val: BigInt(answer.expireAfter) });
    answer = answer.vcon;
  }
  return { action: action(answer), directives };
}

/** The `processor` export for a link `{defaults, run(ctx, vcon)}`. */
export function link({ defaults = {}, run }) {
  return {
    process(context, vconJson) {
      try {
        const given = parse(context.options || '{}');
        const options = { ...defaults };
        for (const [key, value] of Object.entries(given ?? {})) options[key] = plain(value);
        const ctx = {
          linkName: context.linkName,
          chainName: context.chainName,
          vconUuid: context.vconUuid,
          ingressList: context.ingressList,
          options,
        };
        return verdict(run(ctx, Vcon.fromJson(vconJson)));
      } catch (error) {
        const message = error instanceof LinkError ? error.message : `${error?.name ?? 'Error'}: ${error?.message ?? error}`;
        throw { message, retryable: error instanceof LinkError ? error.retryable : false };
      }
    },
  };
}

/** Options as plain JS values (numbers as numbers). */
function plain(value) {
  if (value instanceof JsonNumber) return Number(value.text);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const key of keysOf(value)) out[key] = plain(value[key]);
    return out;
  }
  return value;
}

// ---------------------------------------------------------------- the host

export const log = {
  debug: (message) => logWrite('debug', String(message)),
  info: (message) => logWrite('info', String(message)),
  warn: (message) => logWrite('warn', String(message)),
  error: (message) => logWrite('error', String(message)),
};

/** The value of a granted secret, or `undefined`. */
export function secret(name) {
  try {
    return secretGet(name);
  } catch {
    return undefined;
  }
}
