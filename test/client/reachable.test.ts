import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { checkEventsReachable, clientAddress, driverHostConf, masterHost } from '../../src/client/submission/reachable.js';
import { describePeer, PeerFailedError } from '../../src/collective/errors.js';

describe('where the executors reach the client', () => {
  it("finds the master's host in each kind of master URL", () => {
    expect(masterHost(undefined)).toBeUndefined();
    expect(masterHost('local-cluster[2,1,1024]')).toBeUndefined();
    expect(masterHost('spark://10.0.0.5:7077')).toBe('10.0.0.5');
    expect(masterHost('spark://m1:7077,m2:7077')).toBe('m1');
    expect(masterHost('k8s://https://api.example:6443')).toBe('api.example');
    expect(masterHost('yarn', {})).toBeUndefined();
  });

  it('is loopback for a local master, and the routed address toward a remote one', async () => {
    expect(await clientAddress({ sparkConf: {} })).toBe('127.0.0.1');
    expect(await clientAddress({ master: 'spark://127.0.0.1:7077', sparkConf: {} })).toBe('127.0.0.1');
  });

  it("takes a Spark Connect server's host where the master names none, and the master's where it does", async () => {
    expect(await clientAddress({ master: 'local-cluster[2,1,1024]', clusterHost: 'localhost', sparkConf: {} })).toBe('127.0.0.1');
    const own = Object.values(networkInterfaces())
      .flat()
      .find((a) => a?.family === 'IPv4' && !a.internal)?.address as string;
    expect(await clientAddress({ master: 'local[2]', clusterHost: own, sparkConf: {} })).toBe(own);
    expect(await clientAddress({ master: 'spark://127.0.0.1:7077', clusterHost: own, sparkConf: {} })).toBe('127.0.0.1');
  });

  it('refuses a private Redis where the driver runs on the cluster, naming --redis', () => {
    expect(() => checkEventsReachable({ livy: 'http://livy:8998', sparkConf: {} })).toThrow(
      /with --livy .*pass --redis redis:\/\/HOST:PORT/,
    );
    expect(() => checkEventsReachable({ master: 'yarn', sparkConf: { 'spark.submit.deployMode': 'cluster' } })).toThrow(
      /in cluster deploy mode the driver runs on the cluster/,
    );
    expect(() => checkEventsReachable({ livy: 'http://livy:8998', redis: 'redis://r:6379', sparkConf: {} })).not.toThrow();
    expect(() => checkEventsReachable({ master: 'spark://m:7077', sparkConf: {} })).not.toThrow();
  });

  it("sets the driver's host for a standalone master only when nobody chose it", () => {
    expect(driverHostConf({ master: 'spark://m:7077', sparkConf: {} }, '10.0.0.1', {})).toEqual({
      'spark.driver.host': '10.0.0.1',
    });
    expect(driverHostConf({ master: 'spark://m:7077', sparkConf: { 'spark.driver.host': 'gw' } }, '10.0.0.1', {})).toEqual({});
    expect(driverHostConf({ master: 'spark://m:7077', sparkConf: {} }, '10.0.0.1', { SPARK_LOCAL_IP: '10.0.0.9' })).toEqual({});
    expect(driverHostConf({ master: 'yarn', sparkConf: {} }, '10.0.0.1', {})).toEqual({});
  });
});

describe('ring errors name the peer by rank, host and address', () => {
  it('names the host only where the address does not already', () => {
    expect(describePeer(1, '10.0.0.2:4000', 'worker-2')).toBe('rank 1 on host worker-2 at 10.0.0.2:4000');
    expect(describePeer(1, '10.0.0.2:4000', '10.0.0.2')).toBe('rank 1 at 10.0.0.2:4000');
    expect(describePeer(1, '10.0.0.2:4000')).toBe('rank 1 at 10.0.0.2:4000');
    expect(new PeerFailedError(2, '127.0.0.1:9', 'stalled', 0, 'quiet', 'h3').message).toBe(
      'ring peer rank 2 on host h3 at 127.0.0.1:9 stalled (seen by rank 0): quiet',
    );
  });
});
