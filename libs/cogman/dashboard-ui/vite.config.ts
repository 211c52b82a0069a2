import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

/** Most JavaScript the page may load before it shows anything, gzipped. */
const INITIAL_JS_BUDGET = 100 * 1024;

/** Prints the gzipped size of the initial JavaScript (the entry and its static imports); fails over budget. */
function initialJsBudget(): Plugin {
  return {
    name: 'cogman-initial-js-budget',
    apply: 'build',
    generateBundle(_options, bundle) {
      const chunks = new Map(
        Object.values(bundle).flatMap((file) =>
          file.type === 'chunk' ? [[file.fileName, file]] : [],
        ),
      );
      const initial = new Set<string>();
      const visit = (name: string) => {
        if (initial.has(name)) return;
        initial.add(name);
        for (const imported of chunks.get(name)?.imports ?? []) visit(imported);
      };
      for (const chunk of chunks.values()) if (chunk.isEntry) visit(chunk.fileName);
      let total = 0;
      for (const name of initial) total += gzipSync(chunks.get(name)!.code).length;
      const lazy = [...chunks.keys()].filter((name) => !initial.has(name));
      const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
      console.log(
        `\nDashboard initial JavaScript: ${kb(total)} gzipped (budget ${kb(INITIAL_JS_BUDGET)}; ${initial.size} file(s); loaded when needed: ${lazy.map((name) => `${name} ${kb(gzipSync(chunks.get(name)!.code).length)}`).join(', ') || 'none'})`,
      );
      if (total > INITIAL_JS_BUDGET) {
        this.error(
          `The dashboard's initial JavaScript is ${kb(total)} gzipped, over its budget of ${kb(INITIAL_JS_BUDGET)}`,
        );
      }
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Every URL relative to the page: the base path is whatever the browser asked for.
  base: './',
  publicDir: false,
  logLevel: 'warn',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: fileURLToPath(new URL('../dist/dashboard/ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    assetsDir: 'assets',
    // No inline script or style anywhere (Content-Security-Policy: default-src 'self').
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
  plugins: [initialJsBudget()],
});
