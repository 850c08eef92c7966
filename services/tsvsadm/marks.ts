// `tsvsadm marks [FILE | -]`: shows (no argument) or replaces (a file, or - for stdin) the mark rules that feed
// fwmark services, in iptables MARK syntax (docs/fwmark.md). tsvs's own command, like `status`: ipvsadm rejects
// a first argument that is not an option, so no valid ipvsadm command line changes meaning.
import { readFileSync } from 'node:fs';
import type { AdminClient } from './client.ts';

/** Runs `marks`; returns the exit code: 0, 1 when tsvsd refuses or does not answer, 2 on usage. */
export async function runMarks(args: readonly string[], connect: () => Promise<AdminClient>, readStdin: () => Promise<string>, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  if (args.length > 1) {
    err('usage: tsvsadm marks [FILE | -]\n');
    return 2;
  }
  let text: string | undefined;
  if (args.length === 1) {
    try {
      text = args[0] === '-' ? await readStdin() : readFileSync(args[0], 'utf8');
    } catch (e) {
      err(`tsvsadm marks: ${(e as Error).message}\n`);
      return 1;
    }
  }
  let client: AdminClient;
  try {
    client = await connect();
  } catch (e) {
    err(`tsvsadm marks: tsvsd does not answer: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const r = await client.request(text === undefined ? { op: 'get-marks' } : { op: 'set-marks', text });
    if (!r.ok) {
      err(`tsvsadm marks: ${r.detail ?? r.errno}\n`);
      return 1;
    }
    if (text === undefined) out(r.marks ?? '');
    return 0;
  } finally {
    client.close();
  }
}
