export { createMongoConnection } from './mongo-connection';
export { MongoTaskArchive } from './mongo-task-archive';
