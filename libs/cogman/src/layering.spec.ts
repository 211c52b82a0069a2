import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { preProcessFile } from 'typescript';

/**
 * The library's layers, from the ground up: a folder imports only folders of lower layers (and
 * files of its own folder). The files at the root (the module, its definition, its lifecycle,
 * `index.ts`) wire the layers together and sit on top. See DEVELOPERS.md, Layout.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors'],
  ['util'],
  ['task'],
  ['config'],
  ['decorators', 'metrics'],
  ['broker', 'store'],
  ['dispatch'],
  ['scheduler'],
  ['worker'],
  ['explorer', 'inspector'],
  ['client'],
  ['rest', 'testing'],
  ['dashboard'],
  ['.'],
];

const SRC = __dirname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [path] : [];
  });
}

/** The folder (first path segment under src/) a file belongs to; `.` for the root files. */
function folderOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes('/') ? rel.split('/')[0] : '.';
}

function layerOf(folder: string): number {
  const layer = LAYERS.findIndex((folders) => folders.includes(folder));
  if (layer < 0) throw new Error(`src/${folder}/ has no layer: add it to LAYERS`);
  return layer;
}

/** The library files a file imports (static imports, re-exports and lazy `require`s). */
function importsOf(file: string, files: ReadonlySet<string>): string[] {
  const text = readFileSync(file, 'utf8');
  const { importedFiles } = preProcessFile(text, true, true);
  return importedFiles
    .map((ref) => ref.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => {
      const base = resolve(dirname(file), name);
      const found = [`${base}.ts`, join(base, 'index.ts')].find((path) => files.has(path));
      if (!found) throw new Error(`${relative(SRC, file)} imports ${name}, which is not a source`);
      return found;
    });
}

describe('the layout of the library', () => {
  const files = sources(SRC);
  const fileSet = new Set(files);
  const graph = new Map(files.map((file) => [file, importsOf(file, fileSet)]));

  it('has every folder in a layer', () => {
    for (const file of files) expect(() => layerOf(folderOf(file))).not.toThrow();
  });

  it('has no import from a layer to one above it, or across folders of one layer', () => {
    const wrong: string[] = [];
    for (const [file, imports] of graph) {
      const from = folderOf(file);
      for (const target of imports) {
        const to = folderOf(target);
        if (from !== to && layerOf(to) >= layerOf(from)) {
          wrong.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no import cycle', () => {
    // Tarjan's strongly connected components: any component of more than one file is a cycle.
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    let next = 0;
    const visit = (file: string) => {
      index.set(file, next);
      low.set(file, next++);
      stack.push(file);
      onStack.add(file);
      for (const target of graph.get(file) ?? []) {
        if (!index.has(target)) {
          visit(target);
          low.set(file, Math.min(low.get(file)!, low.get(target)!));
        } else if (onStack.has(target)) {
          low.set(file, Math.min(low.get(file)!, index.get(target)!));
        }
      }
      if (low.get(file) === index.get(file)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(relative(SRC, member));
        } while (member !== file);
        if (component.length > 1 || graph.get(file)?.includes(file)) cycles.push(component);
      }
    };
    for (const file of files) if (!index.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  it('sees the imports it checks (a check of the check)', () => {
    const executor = graph.get(join(SRC, 'worker/task.executor.ts'))!;
    expect(executor.map((file) => relative(SRC, file))).toContain('task/index.ts');
    const shape = graph.get(join(SRC, 'cogman.module-shape.ts'))!;
    // A lazy require counts as an import.
    expect(shape.map((file) => relative(SRC, file))).toContain('rest/rest.mount.ts');
  });
});
