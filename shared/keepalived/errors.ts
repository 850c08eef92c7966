// The keepalived.conf reader's error and warning types: every problem names the file, the line and the word.

/** Stable codes of {@link KeepalivedError}. */
export const KeepalivedErrorCode = {
  /** The text is not keepalived's configuration language (braces, quotes, directives). */
  SYNTAX: 'EKEEPALIVED_SYNTAX',
  /** A keyword's value is missing or wrong (number, address, name). */
  VALUE: 'EKEEPALIVED_VALUE',
  /** An `include` cannot be read, or loops. */
  INCLUDE: 'EKEEPALIVED_INCLUDE',
  /** Something keepalived accepts that tsvs does not read; rejected rather than misread. */
  UNSUPPORTED: 'EKEEPALIVED_UNSUPPORTED',
} as const;
export type KeepalivedErrorCode = (typeof KeepalivedErrorCode)[keyof typeof KeepalivedErrorCode];

/** Where a word came from: file name as given or resolved, 1-based line. */
export interface SourcePos {
  readonly file: string;
  readonly line: number;
}

/** One problem: `message` is the full text, e.g. `keepalived.conf:12: bad weight "x"`. */
export interface KeepalivedProblem extends SourcePos {
  readonly code: KeepalivedErrorCode;
  /** The offending word, when one is to blame. */
  readonly token: string | null;
  readonly message: string;
}

/** A warning keepalived would log and go on from (unknown keyword, default applied, value adjusted). */
export interface KeepalivedWarning extends SourcePos {
  readonly message: string;
}

/** Every problem of one read; `code` is the first problem's code, `message` all messages, one a line. */
export class KeepalivedError extends Error {
  readonly code: KeepalivedErrorCode;
  readonly problems: readonly KeepalivedProblem[];
  constructor(problems: readonly KeepalivedProblem[]) {
    super(problems.map((p) => p.message).join('\n'));
    this.name = 'KeepalivedError';
    this.code = problems[0]?.code ?? KeepalivedErrorCode.SYNTAX;
    this.problems = problems;
  }
}

/** Builds a problem whose message starts with `file:line:`. */
export function problem(code: KeepalivedErrorCode, at: SourcePos, text: string, token: string | null = null): KeepalivedProblem {
  return { code, file: at.file, line: at.line, token, message: `${at.file}:${at.line}: ${text}` };
}

/** Builds a warning whose message starts with `file:line:`. */
export function warning(at: SourcePos, text: string): KeepalivedWarning {
  return { file: at.file, line: at.line, message: `${at.file}:${at.line}: ${text}` };
}

/** Throws a one-problem {@link KeepalivedError}. */
export function fail(code: KeepalivedErrorCode, at: SourcePos, text: string, token: string | null = null): never {
  throw new KeepalivedError([problem(code, at, text, token)]);
}
