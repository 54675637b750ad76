/** The worker's side of the event channel: best effort, never blocks training. */
import net from 'node:net';
import { type EventsEndpoint, encodeEvent } from '../events/protocol.js';

export class EventSender {
  private socket: net.Socket | undefined;

  private constructor(private readonly source: string) {}

  static async connect(endpoint: EventsEndpoint | null | undefined, source: string): Promise<EventSender> {
    const sender = new EventSender(source);
    if (!endpoint) return sender;
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: endpoint.host, port: endpoint.port }, () => {
        s.write(encodeEvent({ token: endpoint.token }));
        sender.socket = s;
        resolve();
      });
      s.on('error', (err) => {
        if (!sender.socket) process.stderr.write(`sparkring: events unavailable (${err.message})\n`);
        sender.socket = undefined;
        resolve();
      });
      s.setTimeout(10_000, () => s.destroy());
    });
    sender.socket?.setTimeout(0);
    sender.socket?.unref();
    return sender;
  }

  send(type: string, fields: Record<string, unknown>): void {
    this.socket?.write(encodeEvent({ type, source: this.source, at: Date.now(), ...fields }));
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.end(resolve));
  }
}
