import type { mongo } from 'mongoose';
import { CogmanClient, TaskHandler, type CogmanTaskHandler } from '@cogman/nestjs';
import { call, startHttpApp, type HttpApp } from './support/http';
import { dropDatabase, mongoUri, openMongo } from './support/mongo';
import { cleanUp, openRedis, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

const namespace = uniqueNamespace('results-archive');
const database = namespace;

/** Returns `payload.value`, or a Buffer of `payload.bytes`. */
@TaskHandler('compute')
class ComputeHandler implements CogmanTaskHandler<{ value?: unknown; bytes?: string }> {
  handle(payload: { value?: unknown; bytes?: string }) {
    return payload.bytes !== undefined ? Buffer.from(payload.bytes) : payload.value;
  }
}

describe('Task results in the MongoDB archive and the REST API', () => {
  let http: HttpApp;
  let client: CogmanClient;
  let mongoClient: mongo.MongoClient;
  let tasks: mongo.Collection;

  beforeAll(async () => {
    http = await startHttpApp(
      { namespace, mongoUri: mongoUri(database), resultMaxSize: 100 },
      { providers: [ComputeHandler] },
    );
    client = http.app.get(CogmanClient);
    mongoClient = await openMongo();
    tasks = mongoClient.db(database).collection('tasks');
  });

  afterAll(async () => {
    await http?.app.close();
    await mongoClient?.close();
    await cleanUp(namespace);
    await dropDatabase(database);
  });

  const archived = (taskId: string) =>
    waitFor(`${taskId} archived with its success`, async () => {
      const doc = await tasks.findOne({ _id: taskId as never });
      return doc?.status === 'success' ? doc : null;
    });

  it('archives a JSON result, a Buffer result and a too-big note, and answers from the archive', async () => {
    const json = await client.sendAndWait({ name: 'compute', payload: { value: { n: [1, 2] } } });
    const bytes = await client.sendAndWait({ name: 'compute', payload: { bytes: 'b\u0001' } });
    const big = await client.sendAndWait({ name: 'compute', payload: { value: 'x'.repeat(200) } });
    expect(await archived(json.taskId)).toMatchObject({ result_type: 'json' });
    expect(await archived(bytes.taskId)).toMatchObject({ result_type: 'binary' });
    expect((await archived(big.taskId)).result_error).toMatch(/larger than resultMaxSize/);

    // Once the Redis records are gone, getTask reads the archive.
    const redis = openRedis();
    try {
      for (const task of [json, bytes, big]) {
        await redis.del(`cogman:{${namespace}}:task:${task.taskId}`);
      }
    } finally {
      redis.disconnect();
    }
    expect((await client.getTask(json.taskId))?.result).toEqual({ n: [1, 2] });
    const fromArchive = (await client.getTask(bytes.taskId))?.result;
    expect(Buffer.isBuffer(fromArchive) && fromArchive.equals(Buffer.from('b\u0001'))).toBe(true);
    expect(await client.getTask(big.taskId)).toMatchObject({
      status: 'success',
      resultError: expect.stringMatching(/larger than resultMaxSize \(100 bytes\)/),
    });
    expect((await client.getTask(big.taskId))?.result).toBeUndefined();
  });

  it('shows the result in GET /tasks/:id (a Buffer in base64)', async () => {
    const json = await client.sendAndWait({ name: 'compute', payload: { value: [true, 'r'] } });
    const bytes = await client.sendAndWait({ name: 'compute', payload: { bytes: 'raw' } });
    const none = await client.sendAndWait({ name: 'compute', payload: {} });
    expect((await call(`${http.api}/tasks/${json.taskId}`)).body.task).toMatchObject({
      status: 'success',
      result: [true, 'r'],
      resultEncoding: 'json',
    });
    expect((await call(`${http.api}/tasks/${bytes.taskId}`)).body.task).toMatchObject({
      result: Buffer.from('raw').toString('base64'),
      resultEncoding: 'base64',
    });
    const shown = (await call(`${http.api}/tasks/${none.taskId}`)).body.task;
    expect(shown.status).toBe('success');
    expect('result' in shown).toBe(false);
  });
});
