// HTTP_GET/SSL_GET's wire format as keepalived speaks it: an HTTP/1.0 request, and the reply's status and body.

/** The request keepalived sends (check_http.c REQUEST_TEMPLATE): HTTP/1.0, so the body ends at close, unchunked. */
export function httpRequest(path: string, host: string, port: number, tls: boolean): string {
  const defaultPort = tls ? 443 : 80;
  const hostHeader = port === defaultPort ? host : `${host}:${port}`;
  return `GET ${path} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: ${hostHeader}\r\n\r\n`;
}

/** A reply split at the end of its headers; null while the headers are not complete. */
export function splitReply(buf: Uint8Array): { status: number; body: Uint8Array } | null {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
      const head = new TextDecoder('latin1').decode(buf.subarray(0, i));
      const m = /^HTTP\/\d(?:\.\d)?\s+(\d{3})/.exec(head);
      return { status: m ? Number(m[1]) : -1, body: buf.subarray(i + 4) };
    }
  }
  return null;
}

/** Whether `status` is in one of the ranges. */
export function statusAccepted(status: number, ranges: readonly { readonly from: number; readonly to: number }[]): boolean {
  return ranges.some((r) => status >= r.from && status <= r.to);
}
