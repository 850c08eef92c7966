// Where a cluster director holds its VIPs: on a TUN device of its own, `tvip-IFACE` (services/tsvsd/cluster-vips.ts),
// so that the addresses die with its processes. The name, and a reader of `ip -4 -o addr show` for tests and tools
// that ask whether a director holds an address "on" an interface (on it, or on its holding device).

/** The TUN device that holds the VIPs announced on `iface`: `tvip-` and the interface name, within IFNAMSIZ (15). */
export function vipHolderName(iface: string): string {
  return `tvip-${iface}`.slice(0, 15);
}

/**
 * Whether `ip -4 -o addr show` output `text` has `addr`/32 on `dev` or on `dev`'s holding device. Lines look like
 * `7: tvip-front    inet 10.200.0.10/32 scope global dynamic tvip-front\       valid_lft 2sec …`.
 */
export function holdsAddr(text: string, addr: string, dev: string): boolean {
  return addrsHeld(text, dev).includes(addr);
}

/** The /32 addresses on `dev` or its holding device in `ip -4 -o addr show` output, sorted. */
export function addrsHeld(text: string, dev: string): string[] {
  const out: string[] = [];
  for (const l of text.split('\n')) {
    const m = /^\d+: (\S+)\s+inet (\S+)\/32\s/.exec(l);
    if (m !== null && (m[1] === dev || m[1] === vipHolderName(dev))) out.push(m[2]);
  }
  return out.sort();
}
