/**
 * What a host puts in front of several meshgrad processes (docs/scale-out.md), in miniature: one
 * public URL for the volunteer page. Plain HTTP requests go to the first process that answers;
 * websocket upgrades (the volunteers' socket.io connections) are spread round-robin, and a
 * process that refuses the connection is skipped, so when one dies its volunteers' reconnects
 * land on another. socket.io over websocket alone needs no sticky sessions.
 */
import {
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export class FrontProxy {
  /** Upgrades sent to each backend port, in order. */
  readonly upgrades: number[] = [];
  private next = 0;
  private readonly sockets = new Set<Duplex>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly backends: readonly number[],
  ) {}

  get url(): string {
    return `http://localhost:${this.port}`;
  }

  static async start(backends: readonly number[]): Promise<FrontProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const proxy = new FrontProxy(server, port, backends);
    server.on('request', (req, res) => proxy.forward(req, res));
    server.on('upgrade', (req, socket, head) => proxy.upgrade(req, socket, head));
    return proxy;
  }

  /** Connects to the first backend, from `start`, that accepts a TCP connection. */
  private async open(start: number): Promise<{ socket: Socket; port: number }> {
    for (let i = 0; i < this.backends.length; i++) {
      const port = this.backends[(start + i) % this.backends.length]!;
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        });
        return { socket, port };
      } catch {
        // refused: that process is down, try the next
      }
    }
    throw new Error('no backend accepts connections');
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    void this.open(0).then(
      ({ socket, port }) => {
        socket.destroy();
        const upstream = request(
          { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      },
      () => {
        res.writeHead(502);
        res.end();
      },
    );
  }

  private upgrade(req: IncomingMessage, client: Duplex, head: Buffer): void {
    const start = this.next++;
    void this.open(start % this.backends.length).then(
      ({ socket, port }) => {
        this.upgrades.push(port);
        this.sockets.add(client);
        this.sockets.add(socket);
        const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) {
          lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        }
        socket.write(lines.join('\r\n') + '\r\n\r\n');
        if (head.length) socket.write(head);
        socket.pipe(client);
        client.pipe(socket);
        const close = () => {
          client.destroy();
          socket.destroy();
          this.sockets.delete(client);
          this.sockets.delete(socket);
        };
        socket.on('error', close);
        client.on('error', close);
        socket.on('close', close);
        client.on('close', close);
      },
      () => client.destroy(),
    );
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
