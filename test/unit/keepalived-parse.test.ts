// keepalived.conf language: comments, braces, quotes, include (globs, loops), $VAR, @id conditionals, errors with file:line.
import { describe, expect, it } from 'vitest';
import type { KaNode } from '../../shared/keepalived/parse.ts';
import { globFiles, parseKeepalivedTree } from '../../shared/keepalived/parse.ts';
import { KeepalivedError, KeepalivedErrorCode } from '../../shared/keepalived/errors.ts';
import { emptyKeepalivedFs } from '../../shared/keepalived/index.ts';
import { memoryFs } from '../support/keepalived-files.ts';

/** keyword args... [ { children } ] as one compact string, to compare trees. */
function show(nodes: readonly KaNode[]): string {
  return nodes.map((n) => [n.keyword, ...n.args].join(' ') + (n.block ? ` { ${show(n.block)} }` : '')).join('; ');
}

function tree(text: string, opts = {}): readonly KaNode[] {
  return parseKeepalivedTree('k.conf', text, emptyKeepalivedFs, opts).nodes;
}

function error(fn: () => unknown): KeepalivedError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KeepalivedError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('keepalived parse', () => {
  it('parse: ! and # comments at a word start, blank lines, blocks on the keyword line or the next', () => {
    const t = tree('! top\n# also\nglobal_defs\n{\n  router_id a#b ! comment\n}\n\nvs 1 {  # c\n x 1 }\n');
    expect(show(t)).toBe('global_defs { router_id a#b }; vs 1 { x 1 }');
    expect(t[0].line).toBe(3);
    expect(t[0].block?.[0]).toMatchObject({ file: 'k.conf', line: 5 });
  });
  it('parse: quoted strings are one word and may hold braces, ! and #', () => {
    expect(show(tree('a "x { y } ! #" "q\\"z" {\n}\n'))).toBe('a x { y } ! # q"z {  }');
  });
  it('parse: several statements and nested blocks on one line', () => {
    expect(show(tree('a { b { c 1 } d }'))).toBe('a { b { c 1 }; d }');
  });
  it('parse: unbalanced braces and a lone { are errors naming file:line and the word', () => {
    let e = error(() => tree('a {\n b 1\n'));
    expect(e.code).toBe(KeepalivedErrorCode.SYNTAX);
    expect(e.message).toBe("k.conf:1: missing '}' for the block of a");
    e = error(() => tree('a 1\n}\n'));
    expect(e.problems[0]).toMatchObject({ file: 'k.conf', line: 2, token: '}' });
    e = error(() => tree('a {\n}\n{\n}\n'));
    expect(e.message).toBe("k.conf:3: '{' without a keyword before it");
    e = error(() => tree('a "open\n'));
    expect(e.message).toMatch(/^k\.conf:1: unterminated quoted string/);
  });
  it('parse: $VAR definitions expand as $NAME and ${NAME}, nested, after their definition', () => {
    const t = tree('$PORT=80\n$VIP = 10.0.0.1\n$BOTH=$VIP ${PORT}\nvirtual_server $BOTH {\n x ${PORT}0 $UNDEF\n}\n');
    expect(show(t)).toBe('virtual_server 10.0.0.1 80 { x 800 $UNDEF }');
  });
  it('parse: multi-line definitions, self-referencing definitions and ~SEQ are rejected, not misread', () => {
    expect(error(() => tree('$A=1 \\\n 2\n')).message).toBe('k.conf:1: multi-line definition of $A is not supported');
    expect(error(() => tree('$A=1 \\\n 2\n')).code).toBe(KeepalivedErrorCode.UNSUPPORTED);
    expect(error(() => tree('$A=x$A\na $A\n')).message).toMatch(/^k\.conf:2: variable definitions refer to each other/);
    expect(error(() => tree('~SEQ(i,1,3) a $i\n')).problems[0]).toMatchObject({ line: 1, token: '~SEQ', code: KeepalivedErrorCode.UNSUPPORTED });
  });
  it('parse: @id lines only for that config id, @^id lines for every other', () => {
    const text = '@lb1 priority 150\n@lb2 priority 100\n@^lb1 state BACKUP\n  @lb1 x 1\n';
    expect(show(tree(text, { configId: 'lb1' }))).toBe('priority 150; x 1');
    expect(show(tree(text, { configId: 'lb2' }))).toBe('priority 100; state BACKUP');
    expect(show(tree(text))).toBe('state BACKUP');
    expect(error(() => tree('@ x\n')).message).toBe('k.conf:1: missing config id after @');
  });
  it('include: relative to the including file, globbed and sorted, inside blocks, with positions of the included file', () => {
    const fs = memoryFs({
      '/etc/keepalived/keepalived.conf': 'global_defs {\n include defs/*.conf\n}\ninclude conf.d/vs-?.conf\n',
      '/etc/keepalived/defs/b.conf': 'router_id B\n',
      '/etc/keepalived/defs/a.conf': 'notification_email_from a@b\n',
      '/etc/keepalived/defs/.hidden.conf': 'hidden 1\n',
      '/etc/keepalived/conf.d/vs-2.conf': 'vs 2\n',
      '/etc/keepalived/conf.d/vs-1.conf': 'include ../more/x.conf\nvs 1\n',
      '/etc/keepalived/conf.d/vs-10.conf': 'vs 10\n',
      '/etc/keepalived/more/x.conf': 'x 1\n',
    });
    const t = parseKeepalivedTree('/etc/keepalived/keepalived.conf', undefined, fs);
    expect(show(t.nodes)).toBe('global_defs { notification_email_from a@b; router_id B }; x 1; vs 1; vs 2');
    expect(t.nodes[1]).toMatchObject({ file: '/etc/keepalived/more/x.conf', line: 1 });
    expect(t.nodes[3]).toMatchObject({ file: '/etc/keepalived/conf.d/vs-2.conf', line: 1 });
    expect(t.files).toHaveLength(6);
  });
  it('include: a pattern matching nothing warns; a missing plain file, a loop and too deep nesting are errors', () => {
    const fs = memoryFs({ '/k/a.conf': 'include b.conf\n', '/k/b.conf': '\ninclude a.conf\n', '/k/m.conf': 'include none/*.conf\nx 1\n', '/k/n.conf': 'include nofile.conf\n' });
    const t = parseKeepalivedTree('/k/m.conf', undefined, fs);
    expect(t.warnings.map((w) => w.message)).toEqual(['/k/m.conf:1: include none/*.conf: no file matches']);
    let e = error(() => parseKeepalivedTree('/k/a.conf', undefined, fs));
    expect(e.code).toBe(KeepalivedErrorCode.INCLUDE);
    expect(e.message).toBe('/k/b.conf:2: include loop: /k/a.conf -> /k/b.conf -> /k/a.conf');
    e = error(() => parseKeepalivedTree('/k/n.conf', undefined, fs));
    expect(e.message).toBe('/k/n.conf:1: cannot read /k/nofile.conf');
    const deep: Record<string, string> = {};
    for (let i = 0; i < 40; i++) deep[`/d/${i}.conf`] = `include ${i + 1}.conf\n`;
    expect(error(() => parseKeepalivedTree('/d/0.conf', undefined, memoryFs(deep), { maxIncludeDepth: 8 })).message).toMatch(/nested deeper than 8/);
    expect(error(() => tree('include a b\n')).problems[0]).toMatchObject({ line: 1, token: 'b' });
  });
  it('glob: *, ? and [..] per path segment over the fs, dot files only when asked', () => {
    const fs = memoryFs({ '/a/x1.conf': '', '/a/x2.conf': '', '/a/y.conf': '', '/a/.z.conf': '', '/b/c/x1.conf': '' });
    expect(globFiles(fs, '/a/x[12].conf')).toEqual(['/a/x1.conf', '/a/x2.conf']);
    expect(globFiles(fs, '/a/*.conf')).toEqual(['/a/x1.conf', '/a/x2.conf', '/a/y.conf']);
    expect(globFiles(fs, '/a/.*')).toEqual(['/a/.z.conf']);
    expect(globFiles(fs, '/*/x?.conf')).toEqual(['/a/x1.conf', '/a/x2.conf']);
    expect(globFiles(fs, '/*/*/x1.conf')).toEqual(['/b/c/x1.conf']);
    expect(globFiles(fs, '/a/[!x]*.conf')).toEqual(['/a/y.conf']);
  });
});
