import { mongo } from 'mongoose';
import { MONGO_URI } from './services';

/** `uri` with its database replaced by `database` (options kept). */
export function withDatabase(uri: string, database: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/i.exec(uri);
  if (!match) throw new Error(`not a MongoDB URI: ${uri}`);
  return `${match[1]}/${database}${match[2] ?? ''}`;
}

/** A URI of the shared test server (FerretDB on 27017) for a database of the spec's own. */
export function mongoUri(database: string): string {
  return withDatabase(MONGO_URI, database);
}

/** A plain driver client, for inspecting what Cogman wrote and dropping a spec's database. */
export async function openMongo(uri = MONGO_URI): Promise<mongo.MongoClient> {
  return mongo.MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
}

/** Drops a spec's database on the shared server. */
export async function dropDatabase(database: string): Promise<void> {
  const client = await openMongo();
  try {
    await client.db(database).dropDatabase();
  } finally {
    await client.close();
  }
}
