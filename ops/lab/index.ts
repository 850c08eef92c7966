// The lab as a library: what tests, benchmarks and the CLI import (`import { up, down, execCapture } from '../../ops/lab/index.ts'`).
export {
  DEFAULT_OPTIONS, LAB_MODES, LAN_NETNS, LANS, NETNS_PREFIX, VIP, LabUsageError,
  directorDip, directorFrontIp, directorMgmtIp, formatOptions, natsIp, netnsOf, nodeOf, parseLabArgs, plan, planJson, realServerIp, sameOptions, validateOptions,
} from './plan.ts';
export type { LabLink, LabMode, LabNode, LabOptions, LabPlan, LabRoute, LanName, NodeRole, PlanJson } from './plan.ts';
export { LAB_NETNS_NAME, LabError, checkPrerequisites, currentPlan, down, execCapture, execIn, foreignNamespaces, spawnIn, status, up } from './lab.ts';
export type { ExecOptions, LabLog, LabStatus, UpResult } from './lab.ts';
export { LAB_GUE_PORT, REPO_ROOT, adminSocketOf, haveService, labEnv } from './services.ts';
export { labDir, readState, statePath } from './state.ts';
export type { LabFault, LabProcess, LabState } from './state.ts';
export { runDemo } from './demo.ts';
export { FAULT_KINDS, fail, heal, parseFaultArgs } from './faults.ts';
export type { FailResult, FaultArgs, FaultKind } from './faults.ts';
