// The ipvsadm -R stream tokenizer (config_stream.c): one argv per input line, `ipvsadm` tokens dropped.

/**
 * Splits a -R stream into argvs as config_stream_read does: each line is cut on space, tab, CR and LF; tokens equal to
 * `ipvsadm` are dropped; the program name is put first. Lines without tokens are omitted (ipvsadm skips them).
 * '#' is not special: a comment line becomes an argv whose first option is not a command.
 * A last line without a trailing newline is still returned.
 */
export function tokenizeRestoreStream(text: string, program = 'ipvsadm'): string[][] {
  const out: string[][] = [];
  for (const line of text.split('\n')) {
    const words = line.split(/[ \t\r]+/).filter((w) => w !== '' && w !== 'ipvsadm');
    if (words.length > 0) out.push([program, ...words]);
  }
  return out;
}
