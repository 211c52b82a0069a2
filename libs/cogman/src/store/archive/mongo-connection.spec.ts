import { databaseOf, mongoConnectOptions } from './mongo-connection';

describe('the MongoDB connection', () => {
  it.each([
    ['mongodb://127.0.0.1:27017', undefined],
    ['mongodb://127.0.0.1:27017/', undefined],
    ['mongodb://127.0.0.1:27017/?replicaSet=rs0', undefined],
    ['mongodb://u:p%2Fw@a:1,b:2/tasks?replicaSet=rs0', 'tasks'],
    ['mongodb+srv://cluster.example.net/billing', 'billing'],
    ['mongodb://host/my%20db', 'my db'],
  ])('reads the database of %s', (uri, database) => {
    expect(databaseOf(uri)).toBe(database);
  });

  it('uses the database "cogman" when the URI names none, and fails fast on an unreachable server', () => {
    expect(mongoConnectOptions('mongodb://localhost')).toEqual({
      autoIndex: false,
      autoCreate: false,
      bufferCommands: false,
      dbName: 'cogman',
      serverSelectionTimeoutMS: 5000,
    });
  });

  it('leaves to the URI what it sets', () => {
    const options = mongoConnectOptions('mongodb://localhost/mine?serverSelectionTimeoutMS=100');
    expect(options).not.toHaveProperty('dbName');
    expect(options).not.toHaveProperty('serverSelectionTimeoutMS');
  });
});
