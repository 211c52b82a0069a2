/** AMQP connection that publishes tasks. */
export const PUBLISHER_CONNECTION = Symbol('cogman:publisher-connection');
/** AMQP connection that consumes tasks; null in a producer-only process. */
export const CONSUMER_CONNECTION = Symbol('cogman:consumer-connection');
