/**
 * What importing Cogman costs an application: the cold `require` time and the number of modules
 * loaded, for the core (what every application loads) and with every optional feature (the REST
 * API, the MongoDB archive, metrics), each measured in fresh Node processes (medians).
 *
 *   npm run bench:require                       # the built library (npm run build first)
 *   npm run bench:require -- --lib <dir>        # also another build, e.g. an older checkout's libs/cogman
 *   npm run bench:require -- --runs 20
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { formatTable, median } from './support/stats';

interface Options {
  runs: number;
  libs: string[];
}

function parse(argv: string[]): Options {
  const options: Options = { runs: 10, libs: [resolve(__dirname, '../libs/cogman')] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') options.runs = Number(argv[++i]);
    else if (argv[i] === '--lib') options.libs.push(resolve(argv[++i]));
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error('--runs takes a count');
  return options;
}

/** One fresh process: requires `files` in order, prints its time (ms) and module count. */
function measureOnce(files: string[]): { ms: number; modules: number } {
  const script = `
    const began = process.hrtime.bigint();
    for (const file of ${JSON.stringify(files)}) require(file);
    const ms = Number(process.hrtime.bigint() - began) / 1e6;
    process.stdout.write(JSON.stringify({ ms, modules: Object.keys(require.cache).length }));
  `;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as {
    ms: number;
    modules: number;
  };
}

function measure(files: string[], runs: number) {
  const samples = Array.from({ length: runs }, () => measureOnce(files));
  return {
    ms: median(samples.map((sample) => sample.ms)),
    modules: samples[0].modules,
  };
}

/** The entry points of one build, as an application that uses nothing optional, and everything. */
function entries(lib: string) {
  const dist = join(lib, 'dist');
  if (!existsSync(join(dist, 'index.js'))) throw new Error(`${dist} is not built (npm run build)`);
  const core = [join(dist, 'index.js')];
  // What each optional feature loads once configured (older builds loaded them from index.js).
  const optional = [
    join(dist, 'rest/index.js'),
    join(dist, 'store/archive/index.js'),
    'mongoose',
    'prom-client',
  ].filter((file) => !file.startsWith('/') || existsSync(file));
  return { core, all: [...core, ...optional] };
}

function main(): void {
  const options = parse(process.argv.slice(2));
  const header = ['library', 'entry', 'require (ms, median)', 'modules'];
  const rows: string[][] = [];
  const cores: number[] = [];
  for (const lib of options.libs) {
    const { core, all } = entries(lib);
    const measured = { core: measure(core, options.runs), all: measure(all, options.runs) };
    cores.push(measured.core.ms);
    rows.push([lib, 'core', measured.core.ms.toFixed(0), String(measured.core.modules)]);
    rows.push([
      lib,
      'with REST, MongoDB, metrics',
      measured.all.ms.toFixed(0),
      String(measured.all.modules),
    ]);
    rows.push([
      lib,
      'core / with everything',
      (measured.core.ms / measured.all.ms).toFixed(2),
      (measured.core.modules / measured.all.modules).toFixed(2),
    ]);
  }
  console.log(formatTable(header, rows));
  if (cores.length > 1) {
    console.log(
      `core require time of this build / of ${options.libs[1]}: ${(cores[0] / cores[1]).toFixed(2)}`,
    );
  }
}

main();
