// The layering rules of the tree as a pure check over (path, source) pairs, so that a test can feed it bad files
// and see it fail: shared/ is pure except shared/sys; services never import each other; nothing imports test/.

/** One source file: its path relative to the repository root ("shared/net/parse.ts") and its text. */
export interface SourceFile {
  path: string;
  src: string;
}

/** A violation: "file -> what" with the rule it breaks. */
export interface Violation {
  file: string;
  rule: 'shared-relative' | 'shared-impure' | 'shared-process-state' | 'service-imports-service' | 'imports-test';
  detail: string;
}

/**
 * Node built-ins that stay inside the process (pure computation): allowed anywhere in shared/. Every other
 * built-in (fs, net, dgram, child_process, os, worker_threads, timers, process, cluster, http, dns, …) is the
 * platform's, and only shared/sys may import it.
 */
export const PURE_BUILTINS: ReadonlySet<string> = new Set([
  'path', 'path/posix', 'crypto', 'util', 'buffer', 'assert', 'assert/strict', 'string_decoder', 'events', 'url', 'querystring',
]);

/** Packages that reach outside the process (FFI, network clients, exporters): platform or service code only. */
const IMPURE_PACKAGES = [/^koffi$/, /^@nats-io\//, /^@opentelemetry\/exporter-/, /^@opentelemetry\/sdk-/, /^playwright/];

/** Globals that are process state or timers (forbidden in pure shared/ code), as they are used in code. */
const PROCESS_STATE = /(?<![.\w$])(?:process\s*\.\s*[A-Za-z_]+|set(?:Timeout|Interval|Immediate)\s*\(|clear(?:Timeout|Interval|Immediate)\s*\()/g;
/** A class method of the same name being defined ("setTimeout(t: Timeouts): R {"), not a timer being called. */
const METHOD_DEF = /^\s*(?:(?:public|private|protected|static|async|override)\s+)*[A-Za-z_$][\w$]*\s*\([^()]*\)\s*(?::[^=;]*)?\{\s*$/;

const BUILTINS = new Set([
  ...PURE_BUILTINS, 'fs', 'fs/promises', 'net', 'dgram', 'child_process', 'os', 'worker_threads', 'timers', 'timers/promises', 'process',
  'cluster', 'http', 'https', 'http2', 'tls', 'dns', 'dns/promises', 'inspector', 'v8', 'vm', 'perf_hooks', 'readline', 'repl', 'tty',
  'module', 'stream', 'stream/promises', 'zlib', 'async_hooks', 'diagnostics_channel', 'trace_events', 'wasi', 'sqlite', 'test',
]);

/**
 * Shared files allowed to break the purity rule for now, with why. Keep this list short and owned:
 * shared/keepalived/index.ts reads keepalived.conf and its includes from disk (belongs to the health-check work,
 * which is to move the file reading to a service or to shared/sys).
 */
export const KNOWN_IMPURE: ReadonlyMap<string, string> = new Map([
  ['shared/keepalived/index.ts', 'reads configuration files (node:fs); to move out of shared/ with the health-check work'],
]);

/** Strips line and block comments (string contents stay), so that prose mentioning process.exit is not code. */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** Every module specifier of a file: static imports/exports (including `import 'x'`) and dynamic import('x'). */
export function specifiers(src: string): string[] {
  const code = stripComments(src);
  const out: string[] = [];
  for (const m of code.matchAll(/(?:^|[;\s}])(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]/g)) out.push(m[1]);
  for (const m of code.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]);
  return out;
}

function resolveRel(from: string, spec: string): string {
  const parts = from.split('/').slice(0, -1);
  for (const seg of spec.split('/')) {
    if (seg === '..') parts.pop();
    else if (seg !== '.' && seg !== '') parts.push(seg);
  }
  return parts.join('/');
}

function builtinName(spec: string): string | null {
  if (spec.startsWith('node:')) return spec.slice(5);
  return BUILTINS.has(spec) ? spec : null;
}

/** Checks every file against the layering rules; returns the violations (empty when the tree is clean). */
export function layeringViolations(files: readonly SourceFile[], knownImpure: ReadonlyMap<string, string> = KNOWN_IMPURE): Violation[] {
  const out: Violation[] = [];
  for (const f of files) {
    const top = f.path.split('/')[0];
    const inShared = top === 'shared';
    const inSys = f.path.startsWith('shared/sys/');
    const service = top === 'services' ? f.path.split('/').slice(0, 2).join('/') : null;
    for (const spec of specifiers(f.src)) {
      if (spec.startsWith('.')) {
        const target = resolveRel(f.path, spec);
        if (target.startsWith('test/') && top !== 'test') out.push({ file: f.path, rule: 'imports-test', detail: target });
        if (inShared && !target.startsWith('shared/')) out.push({ file: f.path, rule: 'shared-relative', detail: target });
        if (service !== null && !target.startsWith('shared/') && !target.startsWith(`${service}/`) && !target.startsWith('test/')) {
          out.push({ file: f.path, rule: 'service-imports-service', detail: target });
        }
        continue;
      }
      if (!inShared || inSys || knownImpure.has(f.path)) continue;
      const b = builtinName(spec);
      if (b !== null ? !PURE_BUILTINS.has(b) : IMPURE_PACKAGES.some((re) => re.test(spec))) {
        out.push({ file: f.path, rule: 'shared-impure', detail: spec });
      }
    }
    if (inShared && !inSys && !knownImpure.has(f.path)) {
      for (const line of stripComments(f.src).split('\n')) {
        if (METHOD_DEF.test(line)) continue;
        for (const m of line.matchAll(PROCESS_STATE)) out.push({ file: f.path, rule: 'shared-process-state', detail: m[0].replace(/\s+/g, '') });
      }
    }
  }
  return out;
}
