/**
 * How a worker of `sparkring serve --workers N` knows it is one: node:cluster runs the CLI again,
 * with the options in this environment variable. Kept apart from cluster.ts so that the CLI can
 * tell without loading the server.
 */
import cluster from 'node:cluster';

export const SERVE_OPTIONS_ENV = 'SPARKRING_SERVE_OPTIONS';

export const isServeWorker = (): boolean => cluster.isWorker && process.env[SERVE_OPTIONS_ENV] !== undefined;
