export { AmqpConnections, connectionClosed } from './amqp';
export { ChaosServices } from './chaos-services';
export { IsolatedFerretDB, ferretdbBinary } from './isolated-ferretdb';
export { IsolatedRabbitMQ, type IsolatedRabbitMQOptions } from './isolated-rabbitmq';
export { IsolatedRedis, type IsolatedRedisOptions } from './isolated-redis';
export {
  RabbitMQCluster,
  type RabbitMQClusterNode,
  type RabbitMQClusterOptions,
} from './rabbitmq-cluster';
export { orphansOfKilledProcess, type Orphans } from './orphans';
export { freePort, isListening, listensOn } from './ports';
export { isRunning, pidAlive, processesMentioning, type ProcessIdentity } from './process-identity';
export { CHAOS_DIR_PREFIX, reaper } from './reaper';
export {
  CLUSTER_SLOTS,
  RedisCluster,
  type RedisClusterNode,
  type RedisClusterOptions,
} from './redis-cluster';
export { queryRedis, type RedisEndpoint, type RedisRole } from './redis-query';
export {
  RedisSentinelGroup,
  type RedisSentinelNode,
  type RedisSentinelOptions,
} from './redis-sentinel';
export { ServiceProcess } from './service-process';
export { TcpProxy, type CutMode, type ProxyStats } from './tcp-proxy';
export { Timings } from './timings';
export {
  CountStreamRuns,
  describeStream,
  runStream,
  streamRuns,
  type Fault,
  type StreamReport,
} from './stream';
