import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RESOLVED_OPTIONS } from '../cogman.constants';
import type { ResolvedCogmanOptions } from '../config';
import { COGMAN_REDIS } from '../store/redis-connection';
import {
  BINARY_CONTENT_TYPE,
  decodePayload,
  isTaskStatus,
  JSON_CONTENT_TYPE,
  TASK_STATUS_RANK,
  type TaskEnvelope,
  type TaskPriority,
  type TaskRecord,
} from '../task';
import type { TaskLogStore, TaskStatusChange, TaskStatusResult } from './task-log.store';

const RANKS = Object.entries(TASK_STATUS_RANK)
  .map(([status, rank]) => `${status}=${rank}`)
  .join(', ');

/**
 * Applies one status change in one step, so concurrent writers never lose an update:
 * descriptive fields are only added when missing (HSETNX), the status and its fields only when
 * the status moves forward, and the TTL is set in the same script.
 *
 * KEYS[1] task key; ARGV: status, ttl (ms), updatedAt (ms), n, then n describe pairs, then the
 * status pairs. Returns {applied (0/1), previous status or ''}.
 */
const RECORD_STATUS_SCRIPT = `
local ranks = { ${RANKS} }
local key = KEYS[1]
local previous = redis.call('HGET', key, 'status')
local n = tonumber(ARGV[4])
local first = 5 + 2 * n
for i = 5, first - 1, 2 do
  redis.call('HSETNX', key, ARGV[i], ARGV[i + 1])
end
local applied = 0
if not previous or (ranks[previous] or 0) < ranks[ARGV[1]] then
  local fields = { 'status', ARGV[1], 'updatedAt', ARGV[3] }
  for i = first, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  redis.call('HSET', key, unpack(fields))
  applied = 1
end
redis.call('PEXPIRE', key, ARGV[2])
return { applied, previous or '' }
`;

const COMMAND = 'cogmanRecordStatus';

type RecordStatusCommand = (key: string, ...args: (string | number)[]) => Promise<[number, string]>;

/** The task log in Redis: one hash per attempt, under `cogman:[namespace:]task:<id>`. */
@Injectable()
export class RedisTaskLogStore implements TaskLogStore {
  private readonly prefix: string;
  private readonly recordStatus: RecordStatusCommand;

  constructor(
    @Inject(COGMAN_REDIS) private readonly redis: Redis,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    this.prefix = options.namespace ? `cogman:${options.namespace}:` : 'cogman:';
    if (!(COMMAND in redis))
      redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: RECORD_STATUS_SCRIPT });
    const command = (redis as unknown as Record<string, RecordStatusCommand>)[COMMAND];
    this.recordStatus = command.bind(redis);
  }

  key(taskId: string): string {
    return `${this.prefix}task:${taskId}`;
  }

  async record(change: TaskStatusChange): Promise<TaskStatusResult> {
    const describe = change.task ? describeFields(change.task) : [];
    const fields: string[] = [];
    if (change.failError !== undefined) fields.push('failError', change.failError);
    if (change.duration !== undefined) fields.push('duration', String(change.duration));
    const [applied, previous] = await this.recordStatus(
      this.key(change.taskId),
      change.status,
      this.options.redisTtl,
      change.at.getTime(),
      describe.length / 2,
      ...describe,
      ...fields,
    );
    return { applied: applied === 1, previous: isTaskStatus(previous) ? previous : null };
  }

  async get(taskId: string): Promise<TaskRecord | null> {
    const hash = await this.redis.hgetall(this.key(taskId));
    return isTaskStatus(hash.status) ? toRecord(taskId, hash) : null;
  }
}

function describeFields(task: TaskEnvelope): string[] {
  const binary = task.payload.contentType === BINARY_CONTENT_TYPE;
  const fields = [
    'taskId',
    task.taskId,
    'name',
    task.name,
    'originalTaskId',
    task.originalTaskId,
    'retry',
    String(task.retry),
    'attempt',
    String(task.attempt),
    'priority',
    task.priority,
    'payloadType',
    binary ? 'binary' : 'json',
    'payload',
    task.payload.body.toString(binary ? 'base64' : 'utf8'),
    'headers',
    JSON.stringify(task.headers),
    'createdAt',
    String(task.createdAt.getTime()),
  ];
  if (task.primaryKey !== null) fields.push('primaryKey', task.primaryKey);
  return fields;
}

function toRecord(taskId: string, hash: Record<string, string>): TaskRecord {
  const binary = hash.payloadType === 'binary';
  const body = Buffer.from(hash.payload ?? 'null', binary ? 'base64' : 'utf8');
  const createdAt = new Date(Number(hash.createdAt ?? hash.updatedAt));
  return {
    taskId: hash.taskId ?? taskId,
    name: hash.name ?? '',
    originalTaskId: hash.originalTaskId ?? taskId,
    primaryKey: hash.primaryKey ?? null,
    retry: Number(hash.retry ?? 0),
    attempt: Number(hash.attempt ?? 1),
    priority: (hash.priority as TaskPriority | undefined) ?? 'low',
    headers: hash.headers ? (JSON.parse(hash.headers) as Record<string, string>) : {},
    payload: readPayload(binary, body),
    status: hash.status as TaskRecord['status'],
    failError: hash.failError ?? null,
    duration: hash.duration === undefined ? null : Number(hash.duration),
    createdAt,
    updatedAt: new Date(Number(hash.updatedAt)),
  };
}

/** The payload as sent; bytes that were meant as JSON but do not parse come back as bytes. */
function readPayload(binary: boolean, body: Buffer): unknown {
  try {
    return decodePayload({ contentType: binary ? BINARY_CONTENT_TYPE : JSON_CONTENT_TYPE, body });
  } catch {
    return body;
  }
}
