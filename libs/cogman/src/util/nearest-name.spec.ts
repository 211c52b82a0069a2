import { didYouMean, nearestName } from './nearest-name';

describe('nearestName', () => {
  const taskOptions = ['name', 'payload', 'priority', 'retry', 'backoff', 'timeout', 'delay'];

  it.each([
    ['retires', 'retry'],
    ['retyr', 'retry'],
    ['Priority', 'priority'],
    ['timout', 'timeout'],
    ['paylod', 'payload'],
    ['nmae', 'name'],
  ])('finds %s a typo of %s', (typo, known) => {
    expect(nearestName(typo, taskOptions)).toBe(known);
  });

  it('proposes nothing for a name far from every known one', () => {
    expect(nearestName('queue', taskOptions)).toBeUndefined();
    expect(nearestName('x', taskOptions)).toBeUndefined();
    expect(didYouMean('queue', taskOptions)).toBe('');
    expect(didYouMean('scheduel', ['schedule'])).toBe(' (did you mean "schedule"?)');
  });
});
