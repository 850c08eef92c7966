// keepalived → IPVS: the table keepalived programs at startup, printed as ipvsadm -S -n, for every compat file.
import { describe, expect, it } from 'vitest';
import { readKeepalivedConfig } from '../../shared/keepalived/index.ts';
import { ipvsSnapshot, keepalivedToIpvs } from '../../shared/keepalived/ipvs.ts';
import { formatSave } from '../../shared/ipvsadm/format.ts';
import type { ListFormat } from '../../shared/ipvsadm/parse.ts';
import { numericResolver } from '../../shared/ipvsadm/names.ts';
import { keepalivedCompatFiles, keepalivedCompatText } from '../support/keepalived-files.ts';

const SAVE_N: ListFormat = { numeric: true, stats: false, rate: false, thresholds: false, persistentConn: false, nosort: false, exact: false, tunInfo: false };

function save(name: string, text: string): string {
  return formatSave(ipvsSnapshot(keepalivedToIpvs(readKeepalivedConfig(name, text))), SAVE_N, numericResolver);
}

const RS_06 = (svc: string): string => `-a ${svc} -r 192.168.200.1:1358 -m -w 1\n-a ${svc} -r 192.168.200.2:1358 -m -w 1\n`;

/**
 * `ipvsadm -S -n` after keepalived has started on each compat file, written by hand from the reference (§1 defaults,
 * §2 initial state: without alpha every real server is up, §6 mapping). Service order is ipvsadm's sort (libipvs
 * compares addresses as int differences, so 192.168.x sorts before 10.x, and fwmark services come last).
 */
const EXPECTED: Record<string, string> = {
  // lb_algo rr, lb_kind NAT, persistence_timeout 50; one RS up, quorum 1 reached so the sorry server is not added.
  '01-acassen-keepalived.conf.sample': '-A -t 10.10.10.2:1358 -s rr -p 50\n-a -t 10.10.10.2:1358 -r 192.168.200.2:1358 -m -w 1\n',
  // inhibit_on_failure changes nothing at startup: no alpha, so the RS starts up at its weight.
  '02-acassen-keepalived.conf.inhibit': '-A -t 10.10.10.2:1358 -s rr -p 50\n-a -t 10.10.10.2:1358 -r 192.168.200.2:1358 -m -w 1\n',
  // alpha: every RS starts down and is not added until its TCP_CHECK succeeds; no sorry_server.
  '03-acassen-keepalived.conf.quorum': '-A -t 10.0.1.1:80 -s wrr -p 900\n',
  '04-acassen-keepalived.conf.misc_check': '-A -t 10.10.10.2:1358 -s rr -p 50\n-a -t 10.10.10.2:1358 -r 192.168.200.6:1358 -m -w 1\n',
  // fwmark service; real servers without a port are port 0.
  '05-acassen-keepalived.conf.fwmark': '-A -f 1 -s rr -p 900\n-a -f 1 -r 192.168.201.100:0 -m -w 1\n-a -f 1 -r 192.168.201.101:0 -m -w 1\n',
  // one service per group address, per address of the range 192.168.200.3-10 and per fwmark, all with the same RS.
  '06-acassen-keepalived.conf.virtual_server_group':
    '-A -t 192.168.200.1:1358 -s rr -p 50\n' + RS_06('-t 192.168.200.1:1358') +
    [3, 4, 5, 6, 7, 8, 9, 10].map((i) => `-A -t 192.168.200.${i}:80 -s rr -p 50\n` + RS_06(`-t 192.168.200.${i}:80`)).join('') +
    '-A -t 10.0.0.1:8080 -s rr -p 50\n' + RS_06('-t 10.0.0.1:8080') +
    '-A -t 10.0.0.2:80 -s rr -p 50\n' + RS_06('-t 10.0.0.2:80') +
    '-A -f 1 -s rr -p 50\n' + RS_06('-f 1') +
    '-A -f 2 -s rr -p 50\n' + RS_06('-f 2'),
  '07-acassen-keepalived.conf.vrrp.lvs_syncd': '-A -t 192.168.200.19:80 -s rr -p 50\n-a -t 192.168.200.19:80 -r 192.168.201.100:80 -m -w 1\n',
  // the group is defined but the virtual_server uses the single address; IPv6 persistence mask 128 is not printed.
  '08-acassen-keepalived.conf.IPv6': '-A -t [ae00::1]:80 -s rr -p 50\n-a -t [ae00::1]:80 -r [ae00::10]:25 -m -w 1\n',
  '09-acassen-keepalived.conf':
    '-A -t 192.168.200.100:443 -s rr -p 50\n-a -t 192.168.200.100:443 -r 192.168.201.100:443 -m -w 1\n' +
    '-A -t 10.10.10.2:1358 -s rr -p 50\n-a -t 10.10.10.2:1358 -r 192.168.200.2:1358 -m -w 1\n-a -t 10.10.10.2:1358 -r 192.168.200.3:1358 -m -w 1\n' +
    '-A -t 10.10.10.3:1358 -s rr -p 50\n-a -t 10.10.10.3:1358 -r 192.168.200.4:1358 -m -w 1\n-a -t 10.10.10.3:1358 -r 192.168.200.5:1358 -m -w 1\n',
};

function vsText(body: string): string {
  return `virtual_server 10.0.0.1 80 {\nlb_algo wlc\nlb_kind NAT\nprotocol TCP\n${body}\n}\n`;
}

describe('keepalived ipvs', () => {
  it('ipvs: every compat file gives the ipvsadm -S -n keepalived would leave after startup', () => {
    expect(keepalivedCompatFiles()).toEqual(Object.keys(EXPECTED));
    for (const [f, want] of Object.entries(EXPECTED)) expect(save(f, keepalivedCompatText(f)), f).toBe(want);
  });

  it('ipvs: alpha RS not added, alpha + inhibit_on_failure added at weight 0, RS without checker always added', () => {
    const out = save('k', vsText(`alpha
real_server 10.0.0.2 80 {\n weight 5\n TCP_CHECK {\n }\n}
real_server 10.0.0.3 80 {\n weight 5\n inhibit_on_failure\n TCP_CHECK {\n }\n}
real_server 10.0.0.4 80 {\n weight 7\n}
real_server 10.0.0.5 80 {\n weight 2\n TCP_CHECK {\n }\n HTTP_GET {\n  alpha\n }\n}`));
    expect(out).toBe('-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0\n-a -t 10.0.0.1:80 -r 10.0.0.4:80 -m -w 7\n');
  });

  it('ipvs: quorum not reached at startup with a sorry_server: the sorry server stands in, inhibited RS stay at weight 0', () => {
    const body = `quorum 3\nsorry_server 10.9.9.9 8080\nsorry_server_lvs_method DR
real_server 10.0.0.2 80 {\n weight 2\n}
real_server 10.0.0.3 80 {\n weight 2\n inhibit_on_failure\n TCP_CHECK {\n  alpha\n }\n}`;
    expect(save('k', vsText(body))).toBe('-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0\n-a -t 10.0.0.1:80 -r 10.9.9.9:80 -g -w 1\n');
    expect(save('k', vsText(body.replace('quorum 3', 'quorum 2')))).toBe('-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 2\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0\n');
    // sorry_server_inhibit: not in use, the sorry server is listed at weight 0
    expect(save('k', vsText(body.replace('quorum 3', 'quorum 2').replace('sorry_server_lvs_method DR', 'sorry_server_lvs_method DR\nsorry_server_inhibit')))).toBe(
      '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 2\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0\n-a -t 10.0.0.1:80 -r 10.9.9.9:80 -g -w 0\n',
    );
  });

  it('ipvs: service options (-p, -M, --pe, -o, -b) and DR/TUN dests take the service port, thresholds kept in the model', () => {
    const text = `virtual_server 10.0.0.1 5060 {\nlvs_sched sh\nlvs_method DR\nprotocol UDP\npersistence_timeout 600\npersistence_granularity 255.255.255.0\npersistence_engine sip\nops\nsh-port
real_server 10.0.0.2 5070 {\n uthreshold 100\n lthreshold 10\n}
real_server 10.0.0.3 5070 {\n lvs_method TUN\n weight 3\n}\n}\n`;
    expect(save('k', text)).toBe('-A -u 10.0.0.1:5060 -s sh -p 600 -M 255.255.255.0 --pe sip -o -b sh-port\n-a -u 10.0.0.1:5060 -r 10.0.0.2:5060 -g -w 1\n-a -u 10.0.0.1:5060 -r 10.0.0.3:5060 -i -w 3 --tun-type ipip\n');
    const [svc] = keepalivedToIpvs(readKeepalivedConfig('k', text));
    expect(svc.dests[0]).toMatchObject({ uThreshold: 100, lThreshold: 10 });
  });

  it('ipvs: an IPv6 group range expands in its last group; group fwmarks take the real servers\' family', () => {
    const text = `virtual_server_group G6 {\n 2001:db8::fe-101 443\n fwmark 7\n}\nvirtual_server group G6 {\nlb_algo rr\nlb_kind NAT\nreal_server 2001:db8:1::1 443 {\n}\n}\n`;
    const svcs = keepalivedToIpvs(readKeepalivedConfig('k', text)).map((s) => (s.svc.fwmark ? `fwm ${s.svc.fwmark} v${s.svc.af}` : `${s.svc.addr} ${s.svc.port}`));
    expect(svcs).toEqual(['2001:db8::fe 443', '2001:db8::ff 443', '2001:db8::100 443', '2001:db8::101 443', 'fwm 7 v6']);
  });
});
