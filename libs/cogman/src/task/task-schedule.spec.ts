import { TaskInvalidError } from '../errors';
import { nextTick, normaliseSchedule, tickTaskId } from './task-schedule';

const at = (iso: string) => new Date(iso).getTime();
const iso = (ms: number) => new Date(ms).toISOString();

/** The next `count` ticks after `from`. */
function ticks(timing: Parameters<typeof nextTick>[0], from: string, count: number): string[] {
  const out: string[] = [];
  for (let t = at(from); out.length < count;) out.push(iso((t = nextTick(timing, t))));
  return out;
}

describe('schedule timing', () => {
  it('reads a cron expression in its time zone across the spring DST change (Europe/Berlin)', () => {
    // Weekdays at 06:00 Berlin time: 05:00 UTC before 29 March 2026, 04:00 UTC after.
    expect(
      ticks({ cron: '0 6 * * 1-5', timezone: 'Europe/Berlin' }, '2026-03-26T12:00:00Z', 3),
    ).toEqual(['2026-03-27T05:00:00.000Z', '2026-03-30T04:00:00.000Z', '2026-03-31T04:00:00.000Z']);
    // 02:30 does not exist on 29 March (clocks jump from 02:00 to 03:00): it runs at 03:30 CEST.
    expect(
      ticks({ cron: '30 2 * * *', timezone: 'Europe/Berlin' }, '2026-03-28T12:00:00Z', 2),
    ).toEqual(['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z']);
  });

  it('runs a time that happens twice in autumn once (Europe/Berlin, 25 October 2026)', () => {
    expect(
      ticks({ cron: '30 2 * * *', timezone: 'Europe/Berlin' }, '2026-10-24T12:00:00Z', 2),
    ).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    // Hourly across the change: 01:00, 02:00 CEST, 02:00 CET, 03:00 CET are four hours in a row.
    expect(
      ticks({ cron: '0 * * * *', timezone: 'Europe/Berlin' }, '2026-10-24T22:30:00Z', 4),
    ).toEqual([
      '2026-10-24T23:00:00.000Z',
      '2026-10-25T00:00:00.000Z',
      '2026-10-25T01:00:00.000Z',
      '2026-10-25T02:00:00.000Z',
    ]);
  });

  it('takes 6 fields (seconds first) and defaults to UTC', () => {
    expect(ticks({ cron: '*/15 * * * * *' }, '2026-01-01T00:00:07Z', 3)).toEqual([
      '2026-01-01T00:00:15.000Z',
      '2026-01-01T00:00:30.000Z',
      '2026-01-01T00:00:45.000Z',
    ]);
    expect(ticks({ cron: '0 6 * * *' }, '2026-06-01T07:00:00Z', 1)).toEqual([
      '2026-06-02T06:00:00.000Z',
    ]);
  });

  it('ticks a fixed interval at its multiples since the epoch, strictly after the time given', () => {
    expect(ticks({ every: 60_000 }, '2026-01-01T00:00:30Z', 2)).toEqual([
      '2026-01-01T00:01:00.000Z',
      '2026-01-01T00:02:00.000Z',
    ]);
    expect(nextTick({ every: 1000 }, 5000)).toBe(6000);
  });

  it('derives one task id per schedule and tick', () => {
    expect(tickTaskId('a', 1000)).toBe(tickTaskId('a', 1000));
    expect(tickTaskId('a', 1000)).not.toBe(tickTaskId('a', 2000));
    expect(tickTaskId('a', 1000)).not.toBe(tickTaskId('b', 1000));
    expect(tickTaskId('a', 1000)).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});

describe('normaliseSchedule', () => {
  const valid = { id: 'report', name: 'report', cron: ' 0 6 * * 1-5 ', timezone: 'Europe/Berlin' };

  it('keeps the fields of a valid schedule in a stable order', () => {
    expect(JSON.stringify(normaliseSchedule({ ...valid, missed: 'skip', priority: 'high' }))).toBe(
      JSON.stringify({
        id: 'report',
        name: 'report',
        cron: '0 6 * * 1-5',
        timezone: 'Europe/Berlin',
        missed: 'skip',
        priority: 'high',
      }),
    );
  });

  it.each([
    [{ ...valid, id: 'a b' }, 'id'],
    [{ ...valid, cron: undefined }, 'cron'],
    [{ ...valid, every: 5000 }, 'cron'],
    [{ ...valid, cron: '61 * * * *' }, 'cron'],
    [{ ...valid, cron: '* * * * * * *' }, 'cron'],
    [{ ...valid, timezone: 'Mars/Olympus' }, 'timezone'],
    [{ id: 'x', name: 'x', every: 500 }, 'every'],
    [{ id: 'x', name: 'x', every: 5000, timezone: 'UTC' }, 'timezone'],
    [{ ...valid, missed: 'twice' }, 'missed'],
    [{ ...valid, retry: -1 }, 'retry'],
    [{ ...valid, color: 'red' }, 'color'],
  ])('refuses %j (field %s)', (input, field) => {
    expect(() => normaliseSchedule(input as never)).toThrow(TaskInvalidError);
    try {
      normaliseSchedule(input as never);
    } catch (error) {
      expect((error as TaskInvalidError).field).toBe(field);
    }
  });
});
