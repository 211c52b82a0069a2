import { execFileSync } from 'node:child_process';
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
});
