import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..');

describe('the built package', () => {
  it('is what require("@cogman/nestjs") loads from the repository root, as an installed app would', () => {
    // A separate process, so Jest's mapping of @cogman/nestjs to the sources does not apply.
    const script = `
      const resolved = require.resolve('@cogman/nestjs');
      const api = require('@cogman/nestjs');
      process.stdout.write(JSON.stringify({ resolved, names: Object.keys(api).sort() }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }),
    ) as {
      resolved: string;
      names: string[];
    };
    expect(out.resolved).toBe(join(root, 'libs', 'cogman', 'dist', 'index.js'));
    expect(out.names).toEqual(
      expect.arrayContaining(['CogmanModule', 'CogmanClient', 'CogmanWorker', 'TaskHandler']),
    );
  });

  it('ships the prebuilt dashboard, whose UI libraries are not its dependencies', () => {
    const [pack] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: join(root, 'libs', 'cogman'),
        encoding: 'utf8',
      }),
    ) as { files: { path: string }[] }[];
    const files = pack.files.map((file) => file.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'dist/dashboard/dashboard.controller.js',
        'dist/dashboard/ui/index.html',
        expect.stringMatching(/^dist\/dashboard\/ui\/assets\/index-[\w-]+\.js$/),
        expect.stringMatching(/^dist\/dashboard\/ui\/assets\/chart-[\w-]+\.js$/),
      ]),
    );
    const manifest = JSON.parse(
      readFileSync(join(root, 'libs', 'cogman', 'package.json'), 'utf8'),
    ) as { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
    for (const ui of ['preact', 'vite', 'uplot', 'playwright-core']) {
      expect(manifest.dependencies ?? {}).not.toHaveProperty(ui);
      expect(manifest.peerDependencies ?? {}).not.toHaveProperty(ui);
    }
  });
});
