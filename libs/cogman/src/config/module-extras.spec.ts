import { OptionsInvalidError } from '../errors';
import { DEFAULT_MODULE_EXTRAS, resolveModuleExtras } from './module-extras';

describe('resolveModuleExtras: the dashboard', () => {
  it('is off by default, and the REST API with it', () => {
    const shape = resolveModuleExtras(DEFAULT_MODULE_EXTRAS);
    expect(shape.dashboard).toEqual({ mounted: false, readOnly: false });
    expect(shape.rest.mounted).toBe(false);
  });

  it('turns the REST API on, which it needs', () => {
    const shape = resolveModuleExtras({ ...DEFAULT_MODULE_EXTRAS, startDashboard: true });
    expect(shape.dashboard.mounted).toBe(true);
    expect(shape.rest.mounted).toBe(true);
  });

  it('is read-only when asked', () => {
    const shape = resolveModuleExtras({
      ...DEFAULT_MODULE_EXTRAS,
      startDashboard: true,
      dashboard: { readOnly: true },
    });
    expect(shape.dashboard.readOnly).toBe(true);
  });

  it.each([
    ['startDashboard', { startDashboard: 'yes' }],
    ['dashboard', { dashboard: null }],
    ['dashboard.readOnly', { dashboard: { readOnly: 1 } }],
  ])('refuses a bad %s, naming it', (field, extras) => {
    const resolve = () => resolveModuleExtras({ ...DEFAULT_MODULE_EXTRAS, ...(extras as object) });
    expect(resolve).toThrow(OptionsInvalidError);
    expect(resolve).toThrow(`"${field}"`);
  });
});
