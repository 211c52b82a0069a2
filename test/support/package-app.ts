import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

export const ROOT = join(__dirname, '..', '..');
const PACKAGE_DIR = join(ROOT, 'libs', 'cogman');
const run = promisify(execFile);

interface LockEntry {
  version?: string;
  link?: boolean;
  hasInstallScript?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [field: string]: unknown;
}

interface PackageJson {
  name: string;
  version: string;
  license?: string;
  scripts?: Record<string, string>;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** What `npm pack` made: the tarball and the paths it holds. */
export interface Packed {
  tarball: string;
  files: string[];
}

/** Packs libs/cogman (built) as `npm publish` would, into a temporary directory. */
export async function packPackage(): Promise<Packed> {
  const destination = await mkdtemp(join(tmpdir(), 'cogman-pack-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', destination], {
    cwd: PACKAGE_DIR,
    encoding: 'utf8',
  });
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  return { tarball: join(destination, packed.filename), files: packed.files.map((f) => f.path) };
}

/**
 * The packages a default install of @cogman/nestjs brings (its dependencies and required peers,
 * with theirs), as the repository's package-lock.json resolves them: lock path → entry.
 */
export async function installClosure(
  extra: Record<string, string> = {},
): Promise<Map<string, LockEntry>> {
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const own = await ownPackage();
  const packages = lock.packages;
  const closure = new Map<string, LockEntry>();
  const locate = (from: string, name: string): string | undefined => {
    for (let dir = from; ;) {
      const at = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (packages[at] && !packages[at].link) return at;
      if (!dir) return undefined;
      const nested = dir.lastIndexOf('/node_modules/');
      dir = nested >= 0 ? dir.slice(0, nested) : '';
    }
  };
  const visit = (from: string, requires: Record<string, string>) => {
    for (const name of Object.keys(requires)) {
      const at = locate(from, name);
      if (!at) throw new Error(`${name} (required from ${from || 'the app'}) is not in the lock`);
      if (closure.has(at)) continue;
      const entry = packages[at];
      closure.set(at, entry);
      const optionalPresent = Object.keys(entry.optionalDependencies ?? {}).filter((dep) =>
        locate(at, dep),
      );
      visit(at, {
        ...entry.dependencies,
        ...requiredPeers(entry),
        ...Object.fromEntries(optionalPresent.map((dep) => [dep, '*'])),
      });
    }
  };
  visit('', extra);
  visit('libs/cogman', { ...own.dependencies, ...requiredPeers(own) });
  return closure;
}

/**
 * A new application in a temporary directory that installs the packed tarball (and `extra`) with
 * `npm ci --offline`: from npm's cache, at the versions of the repository's lock, as a user's
 * install would resolve them today. Resolves with its directory.
 */
export async function freshApp(
  tarball: string,
  extra: Record<string, string>,
  files: Record<string, string>,
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cogman-fresh-app-'));
  const own = await ownPackage();
  const closure = await installClosure(extra);
  const integrity = `sha512-${createHash('sha512')
    .update(await readFile(tarball))
    .digest('base64')}`;
  const dependencies = { '@cogman/nestjs': `file:${tarball}`, ...extra };
  const packages: Record<string, unknown> = {
    '': { name: 'fresh-app', version: '0.0.0', dependencies },
    'node_modules/@cogman/nestjs': {
      version: own.version,
      resolved: `file:${tarball}`,
      integrity,
      license: own.license,
      dependencies: own.dependencies,
      peerDependencies: own.peerDependencies,
      peerDependenciesMeta: own.peerDependenciesMeta,
      engines: own.engines,
    },
  };
  for (const [at, entry] of closure) {
    const { dev: _d, peer: _p, devOptional: _o, ...kept } = entry;
    packages[at] = kept;
  }
  const app = { name: 'fresh-app', version: '0.0.0', private: true, dependencies };
  await writeFile(join(dir, 'package.json'), JSON.stringify(app, null, 2));
  const lock = {
    name: 'fresh-app',
    version: '0.0.0',
    lockfileVersion: 3,
    requires: true,
    packages,
  };
  await writeFile(join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
    cwd: dir,
    encoding: 'utf8',
  });
  return dir;
}

async function ownPackage(): Promise<PackageJson> {
  return JSON.parse(await readFile(join(PACKAGE_DIR, 'package.json'), 'utf8')) as PackageJson;
}

function requiredPeers(entry: Pick<LockEntry, 'peerDependencies' | 'peerDependenciesMeta'>) {
  return Object.fromEntries(
    Object.entries(entry.peerDependencies ?? {}).filter(
      ([name]) => !entry.peerDependenciesMeta?.[name]?.optional,
    ),
  );
}
