/** The client's end of the run events: a loopback TCP server taking JSON lines with the run token. */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { createInterface } from 'node:readline';
import type { EventsEndpoint, RunEvent } from '../events/protocol.js';

export class EventServer {
  private constructor(
    private readonly server: net.Server,
    private readonly sockets: Set<net.Socket>,
    readonly endpoint: EventsEndpoint,
  ) {}

  static async start(host: string, onEvent: (e: RunEvent) => void): Promise<EventServer> {
    const token = randomBytes(16).toString('hex');
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      let authed = false;
      createInterface({ input: socket }).on('line', (line) => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        if (!authed) {
          authed = msg.token === token;
          if (!authed) socket.destroy();
          return;
        }
        onEvent(msg as unknown as RunEvent);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    return new EventServer(server, sockets, { host, port, token });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
