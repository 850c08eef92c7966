// Running host commands for the lab: synchronous, argv only (no shell parsing), errors that name the command.
import { spawnSync } from 'node:child_process';

/** A command failed; `message` names it, its exit status and its stderr. */
export class LabCommandError extends Error {
  override name = 'LabCommandError';
  readonly argv: readonly string[];
  readonly status: number | null;
  readonly stderr: string;
  constructor(argv: readonly string[], status: number | null, stderr: string) {
    super(`lab: \`${argv.join(' ')}\` failed (${status === null ? 'killed or not started' : `exit ${status}`})${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
    this.argv = argv;
    this.status = status;
    this.stderr = stderr;
  }
}

/** Outcome of {@link run}. */
export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Written to the command's stdin. */
  input?: string;
  /** Return a failed result instead of throwing. */
  allowFail?: boolean;
  /** Kill the command after this many ms (default 30 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Runs argv[0] with the rest as arguments, captures output; throws {@link LabCommandError} on failure unless `allowFail`. */
export function run(argv: readonly string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(argv[0], argv.slice(1), {
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
    env: opts.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const res: RunResult = { status: r.status, stdout: r.stdout ?? '', stderr: r.error ? `${r.error.message}\n${r.stderr ?? ''}` : (r.stderr ?? '') };
  if (res.status !== 0 && !opts.allowFail) throw new LabCommandError(argv, res.status, res.stderr);
  return res;
}

/** True when `name` is an executable on PATH. */
export function haveCommand(name: string): boolean {
  return run(['sh', '-c', `command -v ${name}`], { allowFail: true }).status === 0;
}
