// lab fail/heal: the command line (which node, how, which LANs) and its errors.
import { describe, expect, it } from 'vitest';
import { LabUsageError, parseFaultArgs } from '../../ops/lab/index.ts';

describe('lab faults: parseFaultArgs', () => {
  it('lab faults: kill is the default; --how picks link or freeze; --lan narrows a link cut', () => {
    expect(parseFaultArgs(['d1'], 'fail')).toEqual({ node: 'd1', how: 'kill', lans: undefined });
    expect(parseFaultArgs(['nats2', '--how', 'freeze'], 'fail')).toEqual({ node: 'nats2', how: 'freeze', lans: undefined });
    expect(parseFaultArgs(['d2', '--how', 'link', '--lan', 'mgmt,front'], 'fail')).toEqual({ node: 'd2', how: 'link', lans: ['mgmt', 'front'] });
    expect(parseFaultArgs(['rs1'], 'heal').node).toBe('rs1');
  });

  it('lab faults: bad arguments are usage errors that say what is wrong', () => {
    expect(() => parseFaultArgs([], 'fail')).toThrow(/needs a node name/);
    expect(() => parseFaultArgs(['d1', '--how', 'melt'], 'fail')).toThrow(/--how must be one of kill, link, freeze, got melt/);
    expect(() => parseFaultArgs(['d1', '--how', 'link', '--lan', 'nowhere'], 'fail')).toThrow(/--lan takes LAN names/);
    expect(() => parseFaultArgs(['d1', '--lan', 'mgmt'], 'fail')).toThrow(/--lan goes with --how link/);
    expect(() => parseFaultArgs(['d1', '--how', 'kill'], 'heal')).toThrow(/heal takes only a node name/);
    expect(() => parseFaultArgs(['d1', '--fast'], 'fail')).toThrow(LabUsageError);
  });
});
