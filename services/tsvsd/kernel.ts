// Applies the kernel-rule spec the reconciler computed (shared/rules) through the iptables runner (shared/sys),
// only when it changed, and undoes everything on exit: chains, jumps, policy routes, and every sysctl it set.
import type { KernelRuleSpec } from '../../shared/rules/kernel-rules.ts';
import { commandRunner, installDirectorRules, installNfqueueRules, removeDirectorRules, removeNfqueueRules, type NfqRulesReport, type Runner, type RulesReport } from '../../shared/sys/iptables.ts';
import { SysctlSet } from '../../shared/sys/sysctl.ts';
import type { Logger } from './log.ts';

/** Keeps the kernel's rules equal to the last spec given. */
export class KernelRules {
  readonly #log: Logger;
  readonly #run: Runner;
  readonly #clientIf: string;
  #key = '';
  #rules?: RulesReport;
  #nfq?: NfqRulesReport;
  /** Sysctls tsvsd set itself, with their previous values (restored by {@link remove}). */
  #sysctls = new SysctlSet();

  constructor(o: { log: Logger; clientIf: string; run?: Runner }) {
    this.#log = o.log;
    this.#clientIf = o.clientIf;
    this.#run = o.run ?? commandRunner();
  }

  /** Installs `spec` unless it equals the one in force; logs and keeps the old rules when installing fails. */
  apply(spec: KernelRuleSpec): void {
    const key = JSON.stringify(spec);
    if (key === this.#key) return;
    try {
      if (spec.backend === 'afpacket') {
        this.#rules = installDirectorRules(spec.spec, this.#run, this.#rules);
        this.#log('kernel rules: applied', { backend: 'afpacket', changes: this.#rules.changes.join('; ') });
      } else {
        // Updated in place (each table in one atomic commit); DR rules of every install are kept for removal.
        const prev = this.#nfq;
        this.#nfq = installNfqueueRules(spec.spec, this.#run);
        if (prev) {
          const seen = new Set(this.#nfq.drRules.map((r) => r.pref));
          this.#nfq.drRules.push(...prev.drRules.filter((r) => !seen.has(r.pref)));
          this.#nfq.sysctlsChanged = { ...this.#nfq.sysctlsChanged, ...prev.sysctlsChanged };
          this.#nfq.localMovedTo ??= prev.localMovedTo;
        }
        // Tunnelled packets leave with the director's own address as outer source: accept them back in.
        this.#setSysctl(`net.ipv4.conf.${this.#clientIf}.accept_local`, '1');
        const s = spec.spec;
        this.#log('kernel rules: applied', { backend: 'nfqueue', queues: s.queues, services: s.services.length, matches: s.matches?.length ?? 0, replies: s.replies?.length ?? 0, dr: s.dr?.length ?? 0 });
      }
      this.#key = key;
    } catch (e) {
      this.#log('kernel rules: failed', { error: (e as Error).message });
    }
  }

  /** Removes every rule installed and restores every sysctl changed. Idempotent; logs what it could not undo. */
  remove(): void {
    const failed: string[] = [];
    if (this.#rules) failed.push(...removeDirectorRules(this.#rules, this.#run));
    if (this.#nfq) failed.push(...removeNfqueueRules(this.#nfq, this.#run));
    failed.push(...this.#sysctls.restore().failed.map((f) => `restore ${f}`));
    this.#rules = undefined;
    this.#nfq = undefined;
    this.#sysctls = new SysctlSet();
    this.#key = '';
    if (failed.length) this.#log('kernel rules: could not undo', { failed: failed.join('; ') });
  }

  /** Sets a sysctl, remembering its previous value for {@link remove}; a failure is logged, not fatal. */
  #setSysctl(key: string, value: string): void {
    try {
      this.#sysctls.set(key, value);
    } catch (e) {
      this.#log('kernel rules: sysctl not set', { key, value, error: (e as Error).message });
    }
  }
}
