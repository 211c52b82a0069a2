import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { ROOT } from './child';

/** The parts of a V8 .cpuprofile this summary reads. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  /** Sampled time, idle excluded, in ms. */
  busyMs: number;
  idleMs: number;
  /** Self time per function. */
  functions: ProfileEntry[];
  /** Self time per package (node_modules/<pkg>), Cogman file, Node internals, GC. */
  packages: ProfileEntry[];
  /** Inclusive time of Cogman's own functions (synchronous parts only, as sampled). */
  cogman: ProfileEntry[];
  /** Inclusive time per package: samples with any of its frames on the stack. */
  packagesInclusive: ProfileEntry[];
  /** For the top self-time functions: who calls them (the nearest library frames). */
  callers: { name: string; paths: ProfileEntry[] }[];
}

/** How many library frames above a function a call path shows. */
const PATH_DEPTH = 4;

/** Where a frame's code lives, coarsely. */
function owner(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + 'node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (url.startsWith('node:')) return 'node internals';
  const file = relative(ROOT, url.replace(/^file:\/\//, ''));
  return file.startsWith('libs/cogman/src/') ? `cogman ${file.slice(16)}` : file;
}

function label(frame: CpuProfile['nodes'][number]['callFrame']): string {
  const where = frame.url ? `${owner(frame.url, frame.functionName)}:${frame.lineNumber + 1}` : '';
  return `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

function top(map: Map<string, number>, total: number, limit: number): ProfileEntry[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => ({ name, ms: us / 1000, percent: (100 * us) / total }));
}

/**
 * Self and inclusive times of a profile written by `node --cpu-prof`, over the samples taken
 * within `window` (µs on the monotonic clock; the whole profile without it).
 */
export function summariseProfile(
  file: string,
  window?: { from: number; to: number },
  limit = 25,
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<number, number>();
  let clock = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    clock += delta;
    if (window && (clock < window.from || clock > window.to)) return;
    self.set(id, (self.get(id) ?? 0) + delta);
  });

  const functions = new Map<string, number>();
  const packages = new Map<string, number>();
  const cogman = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const paths = new Map<string, Map<string, number>>();
  let busy = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const name = label(frame);
    functions.set(name, (functions.get(name) ?? 0) + us);
    const path: string[] = [];
    for (
      let at = parent.get(id);
      at !== undefined && path.length < PATH_DEPTH;
      at = parent.get(at)
    ) {
      const f = byId.get(at)!.callFrame;
      if (f.url && !f.url.startsWith('node:')) path.push(label(f));
    }
    const callers = paths.get(name) ?? new Map<string, number>();
    paths.set(name, callers);
    const key = path.join(' < ') || '(no library frame)';
    callers.set(key, (callers.get(key) ?? 0) + us);
    const pkg = owner(frame.url, frame.functionName);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
    // Inclusive: each package and each Cogman function on the stack once.
    const seen = new Set<string>();
    const seenPackages = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      const p = f.url ? owner(f.url, f.functionName).replace(/^cogman .*/, 'cogman') : '';
      if (p && !seenPackages.has(p)) {
        seenPackages.add(p);
        inclusive.set(p, (inclusive.get(p) ?? 0) + us);
      }
      if (!f.url.includes('libs/cogman/src/')) continue;
      const fn = label(f);
      if (seen.has(fn)) continue;
      seen.add(fn);
      cogman.set(fn, (cogman.get(fn) ?? 0) + us);
    }
  }
  return {
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    functions: top(functions, busy, limit),
    packages: top(packages, busy, limit),
    cogman: top(cogman, busy, limit),
    packagesInclusive: top(inclusive, busy, limit),
    callers: top(functions, busy, 8).map(({ name }) => ({
      name,
      paths: top(paths.get(name)!, busy, 4),
    })),
  };
}

export function formatProfile(title: string, summary: ProfileSummary): string {
  const rows = (entries: ProfileEntry[]) =>
    entries
      .map(
        (e) =>
          `  ${e.percent.toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(6)} ms  ${e.name}`,
      )
      .join('\n');
  return [
    `${title}: ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle`,
    'Self time by package / file:',
    rows(summary.packages),
    'Inclusive time by package (any of its frames on the stack):',
    rows(summary.packagesInclusive),
    'Self time by function:',
    rows(summary.functions),
    'Inclusive time of Cogman functions (synchronous parts):',
    rows(summary.cogman),
    'Call paths of the top functions (nearest library frames first):',
    ...summary.callers.map(({ name, paths }) => `  ${name}\n${rows(paths)}`),
  ].join('\n');
}
