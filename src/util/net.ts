import dgram from 'node:dgram';
import net from 'node:net';

/** A TCP port on `host` (default loopback) that was free a moment ago. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * The address of this machine that packets to `host` leave from: the one a process there can
 * reach this machine at. A UDP socket's connect only consults the routing table; nothing is sent.
 */
export async function localAddressToward(host: string): Promise<string> {
  const family = net.isIPv6(host) ? 'udp6' : 'udp4';
  const socket = dgram.createSocket(family);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(9, host, () => resolve());
    });
    return socket.address().address;
  } finally {
    socket.close();
  }
}
