// npm run lab -- up|down|status|demo|plan|exec: the CLI over ops/lab (a thin shell; the work is in lab.ts).
import { runDemo } from './demo.ts';
import { LabError, currentPlan, down, execIn, status, up } from './lab.ts';
import { LabUsageError, formatOptions, parseLabArgs, plan, planJson } from './plan.ts';
import type { LabPlan } from './plan.ts';
import { LabCommandError } from './sh.ts';
import { fail, heal, parseFaultArgs } from './faults.ts';

const USAGE = `usage: npm run lab -- <command>
  up [--directors N] [--servers N] [--mode nat|dr|tun] [--router] [--nats] [--workers N] [--backend afpacket|nfqueue] [--cpus LIST]
     [--tsvsd-args STR]
                      build the lab (defaults: 1 director, 2 servers, nat); idempotent
  down                remove everything up made; safe to run twice
  status              what is up; exit 0 up, 3 down
  demo                NAT, DR, TUN (1 director, 3 servers each), then a 2-director cluster through kill -9 of d1; each lab down after
  plan [--json] [options]
                      the topology up builds with these options (with no options: the lab that is up, else the default)
  exec <node> -- <cmd...>
                      run cmd in tsvs-<node> with ops/bin on PATH; exits with its status
  fail <node> [--how kill|link|freeze] [--lan LAN[,LAN]]
                      kill -9 every process of the node (default), cut its links (all, or only those LANs), or SIGSTOP it;
                      prints the moment (epoch ms) for failover measurements
  heal <node>         undo fail: restart what was killed (and wait for it), links up, or SIGCONT`;

function printPlan(p: LabPlan): void {
  process.stdout.write(`options: ${formatOptions(p.options)}\nvips: ${p.vips.join(' ')}\n`);
  for (const n of p.nodes) {
    const links = n.links.map((l) => `${l.name}=${l.addresses.join(',')} (${l.lan})`).join('  ');
    const routes = n.routes.map((r) => `${r.dst} via ${r.via.join('|')}`).join('; ');
    process.stdout.write(`  ${n.name.padEnd(7)} ${n.netns.padEnd(12)} ${links}${n.loopbackAddresses.length ? `  lo=${n.loopbackAddresses.join(',')}` : ''}${routes ? `  routes: ${routes}` : ''}\n`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up': {
      await up(parseLabArgs(rest).options);
      return 0;
    }
    case 'down':
      if (rest.length) throw new LabUsageError(`down takes no options, got ${rest.join(' ')}`);
      await down();
      return 0;
    case 'status': {
      const s = status();
      if (!s.up) {
        process.stdout.write('lab: down\n');
        return 3;
      }
      process.stdout.write(`lab: ${s.complete ? 'up' : 'PARTIAL (up did not finish; run down)'} (${formatOptions(s.options!)})\n`);
      for (const n of s.nodes) process.stdout.write(`  ${n.name.padEnd(7)} ${n.netns.padEnd(12)} ${n.present ? n.addresses.join('  ') : 'MISSING'}\n`);
      for (const p of s.processes) process.stdout.write(`  ${p.alive ? 'alive' : 'DEAD '} ${p.name}@${p.node} pid ${p.pid}  log ${p.log}\n`);
      for (const w of s.warnings) process.stdout.write(`  warning: ${w}\n`);
      return s.complete ? 0 : 1;
    }
    case 'plan': {
      const explicit = rest.some((a) => a !== '--json');
      const { options, json } = parseLabArgs(rest);
      const p = explicit ? plan(options) : (currentPlan() ?? plan(options));
      if (json) process.stdout.write(JSON.stringify(planJson(p), null, 2) + '\n');
      else printPlan(p);
      return 0;
    }
    case 'exec': {
      const [node, sep, ...cmd] = rest;
      if (!node || sep !== '--' || cmd.length === 0) throw new LabUsageError('exec needs: exec <node> -- <cmd...>');
      return execIn(node, cmd);
    }
    case 'demo':
      return runDemo();
    case 'fail': {
      const r = fail(parseFaultArgs(rest, 'fail'));
      process.stdout.write(`lab: ${r.node} failed (${r.how}: ${r.detail}) at ${new Date(r.at).toISOString()} (${r.at})\n`);
      return 0;
    }
    case 'heal': {
      const r = await heal(parseFaultArgs(rest, 'heal').node);
      process.stdout.write(`lab: ${r.node} healed (${r.how}) in ${r.ms} ms\n`);
      return 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      throw new LabUsageError(`unknown command "${command}"`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof LabUsageError) {
    process.stderr.write(`lab: ${e.message}\n${USAGE}\n`);
    process.exitCode = 2;
  } else if (e instanceof LabError) {
    process.stderr.write(`${e.message}\n`);
    process.exitCode = e.exitCode;
  } else if (e instanceof LabCommandError || e instanceof Error) {
    process.stderr.write(`${e.message}\n`);
    process.exitCode = 1;
  } else {
    throw e;
  }
}
