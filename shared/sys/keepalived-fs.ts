// The keepalived reader's file access over the real file system (read only): how includes are found on disk.
import { readdirSync, readFileSync } from 'node:fs';
import type { KeepalivedFs } from '../keepalived/parse.ts';

/** A {@link KeepalivedFs} over the real file system; unreadable files and directories are undefined. */
export const nodeKeepalivedFs: KeepalivedFs = {
  readFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  },
  listDir(dir) {
    try {
      return readdirSync(dir);
    } catch {
      return undefined;
    }
  },
};
