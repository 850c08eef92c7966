// keepalived's configuration language read into a keyword tree: comments, braces, quotes, include (with globs),
// $VAR definitions and expansion, @id / @^id conditional lines. What the words mean is model.ts's business.
import { posix } from 'node:path';
import type { KeepalivedWarning, SourcePos } from './errors.ts';
import { KeepalivedErrorCode as Code, fail, warning } from './errors.ts';

/**
 * One statement: a keyword, its arguments, and its `{ }` block when it has one. `block` is null for a plain
 * statement and an array (perhaps empty) when a block followed.
 */
export interface KaNode extends SourcePos {
  readonly keyword: string;
  readonly args: readonly string[];
  readonly block: readonly KaNode[] | null;
}

/** Read-only file access for the reader: how includes are found. Paths are POSIX paths. */
export interface KeepalivedFs {
  /** The file's text, or undefined when it cannot be read. */
  readFile(path: string): string | undefined;
  /** Names of the entries of a directory (not paths), or undefined when it cannot be listed. */
  listDir(dir: string): readonly string[] | undefined;
}

/** Options of {@link parseKeepalivedTree}. */
export interface ParseTreeOptions {
  /**
   * keepalived's config id (`keepalived -i ID`; keepalived defaults it to the host name up to the first dot).
   * Lines `@ID ...` are read only when ID equals it, lines `@^ID ...` only when it does not. Undefined: no
   * `@ID` line is read and every `@^ID` line is.
   */
  configId?: string;
  /** Longest include nesting (default 32); deeper is an error, as is a file that includes itself. */
  maxIncludeDepth?: number;
}

/** The tree of one configuration, with what keepalived would have warned about while reading it. */
export interface KeepalivedTree {
  readonly nodes: readonly KaNode[];
  readonly warnings: readonly KeepalivedWarning[];
  /** Every file read, in reading order (the main file first). */
  readonly files: readonly string[];
}

interface Word {
  readonly text: string;
  readonly quoted: boolean;
}

interface Line extends SourcePos {
  readonly words: readonly Word[];
}

const NAME = '[A-Za-z_][A-Za-z0-9_]*';
const DEFINITION = new RegExp(`^\\$(${NAME})\\s*=(.*)$`);
const REFERENCE = new RegExp(`\\$\\{(${NAME})\\}|\\$(${NAME})`, 'g');
const MAX_EXPANSIONS = 32;

/** Splits one line into words: quoted strings are one word, `{` and `}` are words, `!`/`#` at a word start end the line. */
function splitWords(text: string, at: SourcePos): Word[] {
  const out: Word[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\v' || c === '\f') {
      i++;
      continue;
    }
    if (c === '!' || c === '#') break;
    if (c === '{' || c === '}') {
      out.push({ text: c, quoted: false });
      i++;
      continue;
    }
    if (c === '"') {
      let w = '';
      i++;
      while (i < n && text[i] !== '"') {
        if (text[i] === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) i++;
        w += text[i++];
      }
      if (i >= n) fail(Code.SYNTAX, at, `unterminated quoted string "${w}`, `"${w}`);
      i++;
      out.push({ text: w, quoted: true });
      continue;
    }
    let w = '';
    while (i < n && !' \t\r\v\f"{}'.includes(text[i])) w += text[i++];
    out.push({ text: w, quoted: false });
  }
  return out;
}

/** Glob segment → RegExp (`*`, `?`, `[...]`); a leading dot is matched only literally, as glob(3) does. */
function segmentRegExp(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = seg.slice(i + 1, end);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += '[' + body.replace(/\\/g, '\\\\') + ']';
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const GLOB_CHARS = /[*?[]/;

/** glob(3) over a {@link KeepalivedFs}: matches sorted, directories that cannot be listed give no match. */
export function globFiles(fs: KeepalivedFs, pattern: string): string[] {
  const abs = pattern.startsWith('/');
  let found = [abs ? '/' : ''];
  const segs = pattern.split('/').filter((s) => s !== '');
  let globbed = false;
  for (const seg of segs) {
    const next: string[] = [];
    for (const base of found) {
      if (!GLOB_CHARS.test(seg)) {
        if (!globbed || fs.listDir(base === '' ? '.' : base)?.includes(seg)) next.push(base === '' ? seg : posix.join(base, seg));
        continue;
      }
      const re = segmentRegExp(seg);
      for (const name of fs.listDir(base === '' ? '.' : base) ?? []) {
        if (name.startsWith('.') && !seg.startsWith('.')) continue;
        if (re.test(name)) next.push(base === '' ? name : posix.join(base, name));
      }
    }
    found = next;
    globbed ||= GLOB_CHARS.test(seg);
  }
  return found.filter((p) => p !== '' && p !== '/').sort();
}

/** Reads files into logical lines: conditionals, variables and includes resolved. */
class LineReader {
  readonly warnings: KeepalivedWarning[] = [];
  readonly files: string[] = [];
  readonly #fs: KeepalivedFs;
  readonly #opts: ParseTreeOptions;
  readonly #vars = new Map<string, string>();
  readonly #stack: string[] = [];

  constructor(fs: KeepalivedFs, opts: ParseTreeOptions) {
    this.#fs = fs;
    this.#opts = opts;
  }

  *read(path: string, text: string | undefined, from: SourcePos | null): Generator<Line> {
    const norm = posix.normalize(path);
    if (this.#stack.includes(norm)) fail(Code.INCLUDE, from ?? { file: path, line: 0 }, `include loop: ${[...this.#stack, norm].join(' -> ')}`, path);
    if (this.#stack.length >= (this.#opts.maxIncludeDepth ?? 32)) fail(Code.INCLUDE, from ?? { file: path, line: 0 }, `includes nested deeper than ${this.#opts.maxIncludeDepth ?? 32}`, path);
    const body = text ?? this.#fs.readFile(path);
    if (body === undefined) fail(Code.INCLUDE, from ?? { file: path, line: 0 }, `cannot read ${path}`, path);
    this.#stack.push(norm);
    this.files.push(path);
    const raw = body.split('\n');
    for (let i = 0; i < raw.length; i++) {
      const at = { file: path, line: i + 1 };
      let text = raw[i].replace(/\r$/, '');
      const cond = this.#condition(text, at);
      if (cond === null) continue;
      text = cond;
      const trimmed = text.trimStart();
      if (trimmed.startsWith('$')) {
        const def = DEFINITION.exec(trimmed.trimEnd());
        if (def) {
          if (def[2].trimEnd().endsWith('\\')) fail(Code.UNSUPPORTED, at, `multi-line definition of $${def[1]} is not supported`, `$${def[1]}`);
          this.#vars.set(def[1], def[2].trim());
          continue;
        }
      }
      if (/~SEQ\(/.test(text)) fail(Code.UNSUPPORTED, at, '~SEQ(...) line repetition is not supported', '~SEQ');
      text = this.#expand(text, at);
      const words = splitWords(text, at);
      if (words.length === 0) continue;
      if (!words[0].quoted && words[0].text === 'include') {
        if (words.length !== 2) fail(Code.SYNTAX, at, 'include needs exactly one file name or pattern', words[2]?.text ?? 'include');
        yield* this.#include(words[1].text, at);
        continue;
      }
      yield { ...at, words };
    }
    this.#stack.pop();
  }

  *#include(pattern: string, at: SourcePos): Generator<Line> {
    const full = pattern.startsWith('/') ? pattern : posix.join(posix.dirname(at.file), pattern);
    const matches = GLOB_CHARS.test(full) ? globFiles(this.#fs, full) : [full];
    if (matches.length === 0) {
      this.warnings.push(warning(at, `include ${pattern}: no file matches`));
      return;
    }
    for (const m of matches) yield* this.read(m, undefined, at);
  }

  /** The line without its @id / @^id prefix, or null when the prefix says to skip it. */
  #condition(text: string, at: SourcePos): string | null {
    const m = /^\s*@(\^?)(\S*)(.*)$/.exec(text);
    if (!m) return text;
    if (m[2] === '') fail(Code.SYNTAX, at, 'missing config id after @', '@' + m[1]);
    const id = this.#opts.configId;
    const match = id !== undefined && m[2] === id;
    return (m[1] === '^' ? !match : match) ? m[3] : null;
  }

  /** Replaces $NAME and ${NAME} by their definitions, repeatedly (definitions may use others); unknown names stay. */
  #expand(text: string, at: SourcePos): string {
    let out = text;
    for (let round = 0; out.includes('$'); round++) {
      if (round >= MAX_EXPANSIONS) fail(Code.SYNTAX, at, 'variable definitions refer to each other without end', text.trim());
      let changed = false;
      out = out.replace(REFERENCE, (all, braced: string | undefined, bare: string | undefined) => {
        const v = this.#vars.get(braced ?? bare ?? '');
        if (v === undefined) return all;
        changed = true;
        return v;
      });
      if (!changed) break;
    }
    return out;
  }
}

/**
 * Reads a keepalived configuration into a keyword tree. `text` is the main file's content (read through `fs`
 * when undefined); `include` patterns are relative to the including file's directory.
 * A block opens with `{` at the end of the keyword's line or alone at the start of the next statement.
 *
 * @throws KeepalivedError (SYNTAX, INCLUDE, UNSUPPORTED) at the first problem, naming file:line and the word.
 */
export function parseKeepalivedTree(path: string, text: string | undefined, fs: KeepalivedFs, opts: ParseTreeOptions = {}): KeepalivedTree {
  const reader = new LineReader(fs, opts);
  interface Open {
    nodes: { keyword: string; args: string[]; block: unknown[] | null; file: string; line: number }[];
    opener: SourcePos | null;
  }
  const root: Open = { nodes: [], opener: null };
  const stack: Open[] = [root];
  /** The last statement of the current block, while a `{` may still attach to it. */
  let pending: Open['nodes'][number] | null = null;
  for (const line of reader.read(path, text, null)) {
    let cur: Word[] = [];
    const flush = (): void => {
      if (cur.length === 0) return;
      const node = { keyword: cur[0].text, args: cur.slice(1).map((w) => w.text), block: null, file: line.file, line: line.line };
      stack[stack.length - 1].nodes.push(node);
      pending = node;
      cur = [];
    };
    for (const w of line.words) {
      if (w.quoted || (w.text !== '{' && w.text !== '}')) {
        if (cur.length === 0) pending = null;
        cur.push(w);
      } else if (w.text === '{') {
        flush();
        const owner = pending as Open['nodes'][number] | null;
        if (owner === null || owner.block !== null) fail(Code.SYNTAX, line, "'{' without a keyword before it", '{');
        const open: Open = { nodes: [], opener: owner };
        owner.block = open.nodes;
        stack.push(open);
        pending = null;
      } else {
        flush();
        if (stack.length === 1) fail(Code.SYNTAX, line, "unbalanced '}'", '}');
        stack.pop();
        pending = null;
      }
    }
    flush();
  }
  if (stack.length > 1) {
    const open = stack[stack.length - 1].opener as Open['nodes'][number];
    fail(Code.SYNTAX, open, `missing '}' for the block of ${open.keyword}`, open.keyword);
  }
  return { nodes: root.nodes as KaNode[], warnings: reader.warnings, files: reader.files };
}
