import { DependencyMissingError } from '../errors';
import { loadOptional } from './optional-dependency';

describe('loadOptional', () => {
  it('loads the feature when its packages resolve', () => {
    expect(loadOptional('Metrics (metrics: true)', ['ioredis'], () => 42)).toBe(42);
  });

  it('names the feature and every missing package, with the command that installs them', () => {
    let loaded = false;
    const load = () =>
      loadOptional(
        'The MongoDB archive (mongoUri)',
        ['ioredis', 'cogman-no-such-package-a', 'cogman-no-such-package-b'],
        () => (loaded = true),
      );
    expect(load).toThrow(DependencyMissingError);
    expect(load).toThrow(
      'The MongoDB archive (mongoUri) needs cogman-no-such-package-a, cogman-no-such-package-b, which are not installed: npm install cogman-no-such-package-a cogman-no-such-package-b',
    );
    expect(loaded).toBe(false);
  });
});
