// Splits a byte stream into complete top-level JSON values. SPDK's rpc.py writes bare JSON
// objects (pretty-printed, several per write, no delimiter) and so may any client: a value ends
// when its outermost brace or bracket closes. Works on bytes: every structural character is
// ASCII, and UTF-8 continuation bytes are >= 0x80, so multi-byte characters never confuse it.

const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export class JsonSplitError extends Error {
  readonly code: 'JSON_NOT_A_VALUE' | 'JSON_TOO_LARGE' | 'JSON_BAD_UTF8' | 'JSON_TOO_DEEP';
  /** Values completed by the same push() before the bad bytes: still to be served. */
  completed: string[] = [];
  constructor(code: JsonSplitError['code'], message: string) {
    super(message);
    this.name = 'JsonSplitError';
    this.code = code;
  }
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

export class JsonStreamSplitter {
  readonly maxValueBytes: number;
  readonly maxDepth: number;
  #buf: Buffer = Buffer.alloc(0);
  /** Next byte to scan in #buf. */
  #pos = 0;
  /** Start of the value being scanned, or -1 between values. */
  #start = -1;
  #depth = 0;
  #inString = false;
  #escape = false;
  #decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(maxValueBytes = 32 * 1024 * 1024, maxDepth = 512) {
    this.maxValueBytes = maxValueBytes;
    this.maxDepth = maxDepth;
  }

  /** Bytes received but not yet part of a complete value. */
  get pending(): number {
    return this.#buf.length - (this.#start < 0 ? this.#pos : this.#start);
  }

  /**
   * Adds bytes; returns the text of every value completed by them. Throws JsonSplitError when the
   * stream cannot be JSON (a top-level value must be an object or array): no resync is possible.
   */
  push(chunk: Uint8Array): string[] {
    const out: string[] = [];
    try {
      this.#scan(chunk, out);
    } catch (e) {
      if (e instanceof JsonSplitError) e.completed = out;
      throw e;
    }
    return out;
  }

  #scan(chunk: Uint8Array, out: string[]): void {
    this.#buf = this.#buf.length === this.#pos && this.#start < 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk]);
    const buf = this.#buf;
    let i = this.#pos;
    const n = buf.length;
    while (i < n) {
      const b = buf[i];
      if (this.#start < 0) {
        if (isSpace(b)) {
          i++;
          continue;
        }
        if (b !== LBRACE && b !== LBRACKET) {
          throw new JsonSplitError('JSON_NOT_A_VALUE', `expected '{' or '[' at the start of a request, got ${describeByte(b)}`);
        }
        this.#start = i;
        this.#depth = 0;
      }
      if (this.#inString) {
        if (this.#escape) this.#escape = false;
        else if (b === BACKSLASH) this.#escape = true;
        else if (b === QUOTE) this.#inString = false;
      } else if (b === QUOTE) {
        this.#inString = true;
      } else if (b === LBRACE || b === LBRACKET) {
        if (++this.#depth > this.maxDepth) throw new JsonSplitError('JSON_TOO_DEEP', `JSON nested deeper than ${this.maxDepth} levels`);
      } else if (b === RBRACE || b === RBRACKET) {
        if (--this.#depth === 0) {
          out.push(this.#decode(buf.subarray(this.#start, i + 1)));
          this.#start = -1;
        }
      }
      i++;
    }
    // Drop consumed bytes so the buffer only ever holds the value in progress.
    const keep = this.#start < 0 ? n : this.#start;
    if (this.#start >= 0 && n - this.#start > this.maxValueBytes) {
      throw new JsonSplitError('JSON_TOO_LARGE', `request larger than ${this.maxValueBytes} bytes`);
    }
    this.#buf = buf.subarray(keep);
    this.#pos = i - keep;
    if (this.#start >= 0) this.#start = 0;
  }

  #decode(bytes: Uint8Array): string {
    try {
      return this.#decoder.decode(bytes);
    } catch {
      throw new JsonSplitError('JSON_BAD_UTF8', 'request is not valid UTF-8');
    }
  }
}

function describeByte(b: number): string {
  return b >= 0x21 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16).padStart(2, '0')}`;
}
