import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** One file of the built dashboard, held in memory with its gzipped form. */
export interface DashboardAsset {
  body: Buffer;
  gzipped: Buffer | null;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Where the build puts the dashboard: beside this file once compiled, else in dist/. */
export function dashboardDirectory(): string | null {
  const candidates = [
    join(__dirname, 'ui'),
    join(__dirname, '..', '..', 'dist', 'dashboard', 'ui'),
  ];
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? null;
}

/**
 * The built single-page app: `index.html` and the hashed files of `assets/`, read once at boot.
 * Only these names are ever served, so no request path reaches the file system.
 */
export class DashboardAssets {
  readonly index: string;
  private readonly files = new Map<string, DashboardAsset>();

  constructor(readonly directory: string) {
    this.index = readFileSync(join(directory, 'index.html'), 'utf8');
    const assets = join(directory, 'assets');
    if (!existsSync(assets)) return;
    for (const name of readdirSync(assets)) {
      const path = join(assets, name);
      if (!statSync(path).isFile() || name.endsWith('.map')) continue;
      const body = readFileSync(path);
      const type = TYPES[extname(name)] ?? 'application/octet-stream';
      const compressible = /^(text\/|application\/json|image\/svg)/.test(type) && body.length > 512;
      this.files.set(name, { body, type, gzipped: compressible ? gzipSync(body) : null });
    }
  }

  /** The asset of that name (a file of `assets/`), or undefined. */
  asset(name: string): DashboardAsset | undefined {
    return this.files.get(name);
  }
}
